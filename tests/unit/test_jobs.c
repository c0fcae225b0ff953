/* test_jobs: the job queue against a real PostgreSQL that this test starts
 * in a temporary directory (servers.h), with only sql/002_jobs.sql applied
 * (read from the repository root, where tests run). A server that cannot be
 * started fails the test: the queue's guarantees (SKIP LOCKED, partial
 * unique index, NOTIFY on commit) exist only in the real thing. */
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/db.h"
#include "kiln/jobs.h"
#include "servers.h"

#define SCHEMA_FILE  "sql/002_jobs.sql"
#define RESCUE_ERROR "rescued: executor stopped heartbeating"

static struct {
	struct kiln_db *q; /* for the tests' own checks */
} E;

static PGconn *raw_conn(void)
{
	return PQconnectdb(SRV.pg_conninfo);
}

static int group_teardown(void **state)
{
	(void)state;
	kiln_db_free(E.q);
	E.q = NULL;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	int64_t t0 = kiln_now_ms();

	(void)state;
	if (srv_init("test_jobs") < 0 || srv_start(SRV_PG) < 0 || srv_pg_apply(SCHEMA_FILE) < 0) {
		group_teardown(NULL);
		return -1;
	}
	E.q = srv_db_new();
	fprintf(stderr, "test_jobs: postgres up in %lld ms\n", (long long)(kiln_now_ms() - t0));
	return 0;
}

/* ---- helpers ---- */

static void exec_ok(struct kiln_db *db, const char *sql)
{
	char err[256] = "";
	PGresult *res = kiln_db_exec(db, sql, 0, NULL, 0, err, sizeof(err));

	if (res == NULL)
		fail_msg("%s: %s", sql, err);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

static int reset(void **state)
{
	(void)state;
	exec_ok(E.q, "TRUNCATE jobs RESTART IDENTITY");
	return 0;
}

/* The first value of sql run with the job id as $1 (the test frees it). */
static char *jv(const char *sql, int64_t id)
{
	char ids[24], err[256] = "", *out;
	const char *v[1] = {ids};
	PGresult *res;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = kiln_db_exec(E.q, sql, strstr(sql, "$1") ? 1 : 0, v, 0, err, sizeof(err));
	if (res == NULL)
		fail_msg("%s: %s", sql, err);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

static void assert_jv(const char *sql, int64_t id, const char *want)
{
	char *got = jv(sql, id);

	if (strcmp(got, want) != 0)
		fail_msg("%s [$1=%lld]: got '%s', want '%s'", sql, (long long)id, got, want);
	free(got);
}

static int64_t enqueue(struct kiln_db *db, const char *kind, const char *args,
                       const struct kiln_job_opts *o)
{
	char err[256] = "";
	int64_t id = kiln_jobs_enqueue(db, kind, args, o, err, sizeof(err));

	if (id < 0)
		fail_msg("enqueue %s: %s", kind, err);
	return id;
}

static int fetch(struct kiln_db *db, const char *queue, struct kiln_job *jobs, int n)
{
	char err[256] = "";
	int got = kiln_jobs_fetch(db, queue, "test-worker", jobs, n, err, sizeof(err));

	if (got < 0)
		fail_msg("fetch %s: %s", queue, err);
	return got;
}

static void free_jobs(struct kiln_job *jobs, int n)
{
	int i;

	for (i = 0; i < n; i++)
		kiln_job_free(&jobs[i]);
}

/* Make a job due now (skips the backoff wait) or its heartbeat stale. */
static void make_due(int64_t id)
{
	free(jv("UPDATE jobs SET scheduled_at = now() WHERE id = $1 RETURNING id", id));
}

static void make_stale(int64_t id)
{
	free(jv("UPDATE jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1 "
	        "RETURNING id",
	        id));
}

/* Milliseconds from now until the job's scheduled_at. */
static int64_t due_in_ms(int64_t id)
{
	char *ms = jv("SELECT round(extract(epoch FROM scheduled_at - now()) * 1000) FROM jobs "
	              "WHERE id = $1",
	              id);
	int64_t v = strtoll(ms, NULL, 10);

	free(ms);
	return v;
}

/* The next notification on c within ms, or NULL (the test frees it). */
static PGnotify *wait_notify(PGconn *c, int64_t ms)
{
	int64_t deadline = kiln_now_ms() + ms, left;
	struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
	PGnotify *n;

	for (;;) {
		assert_int_equal(PQconsumeInput(c), 1);
		n = PQnotifies(c);
		left = deadline - kiln_now_ms();
		if (n || left <= 0)
			return n;
		poll(&p, 1, (int)left);
	}
}

/* ---- backoff ---- */

static void test_backoff_values(void **state)
{
	int64_t base, b, prev = 0;
	int a, i;

	(void)state;
	assert_int_equal(kiln_jobs_backoff_ms(1, 0.5), 1000);
	assert_int_equal(kiln_jobs_backoff_ms(2, 0.5), 16000);
	assert_int_equal(kiln_jobs_backoff_ms(3, 0.5), 81000);
	assert_int_equal(kiln_jobs_backoff_ms(10, 0.5), 10000000);
	assert_int_equal(kiln_jobs_backoff_ms(20, 0.0), 86400000);
	assert_int_equal(kiln_jobs_backoff_ms(20, 0.999), 86400000);
	assert_int_equal(kiln_jobs_backoff_ms(100, 0.5), 86400000);
	assert_int_equal(kiln_jobs_backoff_ms(INT_MAX, 0.5), 86400000);
	/* Attempt 17: 83521 s is under the cap, 1.1 times it is over. */
	assert_int_equal(kiln_jobs_backoff_ms(17, 0.0), 75168900);
	assert_int_equal(kiln_jobs_backoff_ms(17, 0.99), 86400000);
	/* Attempt < 1 counts as 1; jitter outside [0,1) is clamped. */
	assert_int_equal(kiln_jobs_backoff_ms(0, 0.5), 1000);
	assert_int_equal(kiln_jobs_backoff_ms(-7, 0.5), 1000);
	assert_int_equal(kiln_jobs_backoff_ms(1, 0.0), 900);
	assert_int_equal(kiln_jobs_backoff_ms(1, 0.9999999), 1100);
	assert_int_equal(kiln_jobs_backoff_ms(1, -1.0), 900);
	assert_int_equal(kiln_jobs_backoff_ms(1, 5.0), 1100);
	assert_int_equal(kiln_jobs_backoff_ms(1, NAN), 900);
	srand48(42);
	for (i = 0; i < 1000; i++) {
		a = 1 + i % 16;
		base = (int64_t)a * a * a * a * 1000;
		b = kiln_jobs_backoff_ms(a, drand48());
		assert_true(b >= base * 9 / 10 && b <= base * 11 / 10);
	}
	for (a = 1; a < 200; a++, prev = b) {
		b = kiln_jobs_backoff_ms(a, 0.5);
		assert_true(b >= prev && b <= 86400000);
	}
}

/* ---- enqueue ---- */

static void test_enqueue_follows_caller_transaction(void **state)
{
	const struct kiln_job_opts o = {.queue = "mail", .request_id = "req-1"};
	struct kiln_db *db = srv_db_new();
	PGconn *l = raw_conn();
	PGnotify *n;
	int64_t id;

	(void)state;
	assert_int_equal(PQstatus(l), CONNECTION_OK);
	PQclear(PQexec(l, "LISTEN " KILN_JOBS_CHANNEL));
	exec_ok(db, "BEGIN");
	assert_true(enqueue(db, "send_mail", "{\"to\": 1}", &o) > 0);
	exec_ok(db, "ROLLBACK");
	assert_jv("SELECT count(*) FROM jobs", 0, "0");
	assert_null(wait_notify(l, 200));

	exec_ok(db, "BEGIN");
	id = enqueue(db, "send_mail", "{\"to\": 1}", &o);
	assert_true(id > 0);
	assert_null(wait_notify(l, 100)); /* NOTIFY is delivered on commit */
	exec_ok(db, "COMMIT");
	n = wait_notify(l, 2000);
	assert_non_null(n);
	assert_string_equal(n->relname, KILN_JOBS_CHANNEL);
	assert_string_equal(n->extra, "mail");
	PQfreemem(n);
	assert_jv("SELECT count(*) FROM jobs", 0, "1");
	assert_jv(
	    "SELECT concat_ws(' ', state, queue, kind, args, priority, attempt, max_attempts, "
	    "request_id, errors = '{}', finalized_at IS NULL) FROM jobs WHERE id = $1",
	    id, "available mail send_mail {\"to\": 1} 1 0 20 req-1 t t");

	/* No options: the default queue, notified under its name. */
	id = enqueue(db, "tick", NULL, NULL);
	n = wait_notify(l, 2000);
	assert_non_null(n);
	assert_string_equal(n->extra, "default");
	PQfreemem(n);
	assert_jv("SELECT queue || ' ' || args FROM jobs WHERE id = $1", id, "default {}");
	PQfinish(l);
	kiln_db_free(db);
}

static void test_enqueue_rejects_bad_input(void **state)
{
	static const char long_name[] =
	    "a123456789b123456789c123456789d123456789e123456789f123456789abcd"; /* 64 */
	static const char rid65[] =
	    "r123456789r123456789r123456789r123456789r123456789r123456789rrrrr";
	static const struct {
		const char *kind, *args;
		struct kiln_job_opts o;
	} bad[] = {
	    {"", "{}", {0}},
	    {NULL, "{}", {0}},
	    {"Send", "{}", {0}},
	    {"send-mail", "{}", {0}},
	    {long_name, "{}", {0}},
	    {"k", "{}", {.queue = "Mail"}},
	    {"k", "{}", {.queue = ""}},
	    {"k", "[1]", {0}},
	    {"k", "\"secret-arg\"", {0}},
	    {"k", "null", {0}},
	    {"k", "{\"a\": \"secret-arg\"", {0}},
	    {"k", "{secret-arg}", {0}},
	    {"k", "{\"a\": 1} {\"secret-arg\": 2}", {0}},
	    {"k", "{}", {.priority = 5}},
	    {"k", "{}", {.priority = -1}},
	    {"k", "{}", {.max_attempts = -1}},
	    {"k", "{}", {.max_attempts = 1001}},
	    {"k", "{}", {.delay_ms = -1}},
	    {"k", "{}", {.unique_key = ""}},
	    {"k", "{}", {.request_id = rid65}},
	};
	const struct kiln_job_opts edge = {.priority = 4, .max_attempts = 1000, .request_id = "r"};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		if (kiln_jobs_enqueue(E.q, bad[i].kind, bad[i].args, &bad[i].o, err, sizeof(err)) !=
		    -1)
			fail_msg("case %zu was accepted", i);
		assert_true(strncmp(err, "jobs: enqueue: ", 15) == 0 && strlen(err) > 15);
		if (strstr(err, "secret-arg"))
			fail_msg("case %zu: the error quotes args: %s", i, err);
	}
	assert_jv("SELECT count(*) FROM jobs", 0, "0");
	/* The bounds themselves are accepted. */
	assert_true(enqueue(E.q, long_name + 1, " \n{\"a\": [1]}", &edge) > 0);
	assert_jv("SELECT kind || priority || max_attempts FROM jobs", 0,
	          "123456789b123456789c123456789d123456789e123456789f123456789abcd41000");
}

static void test_unique_key_dedups_until_final(void **state)
{
	const struct kiln_job_opts o = {.queue = "digest", .unique_key = "digest:42"};
	const struct kiln_job_opts other = {.queue = "digest", .unique_key = "digest:43"};
	struct kiln_job jobs[4];
	char err[256] = "";
	int64_t id, id2;
	int n, i;

	(void)state;
	id = enqueue(E.q, "digest", "{}", &o);
	assert_true(id > 0);
	assert_int_equal(enqueue(E.q, "digest", "{}", &o), 0);
	id2 = enqueue(E.q, "digest", "{}", &other);
	assert_true(id2 > id);
	n = fetch(E.q, "digest", jobs, 4);
	assert_int_equal(n, 2);
	assert_int_equal(enqueue(E.q, "digest", "{}", &o), 0); /* running is not final */
	for (i = 0; i < n; i++)
		if (jobs[i].id == id)
			assert_int_equal(kiln_jobs_complete(E.q, id, err, sizeof(err)), 0);
	free_jobs(jobs, n);
	id2 = enqueue(E.q, "digest", "{}", &o);
	assert_true(id2 > 0 && id2 != id);
	assert_jv("SELECT count(*) FROM jobs WHERE unique_key = 'digest:42'", 0, "2");
}

static void test_delay_schedules_until_due(void **state)
{
	const struct kiln_job_opts o = {.queue = "later", .delay_ms = 400};
	struct kiln_job job;
	int64_t id, t0 = kiln_now_ms();

	(void)state;
	id = enqueue(E.q, "remind", "{}", &o);
	assert_jv("SELECT state FROM jobs WHERE id = $1", id, "scheduled");
	assert_true(due_in_ms(id) > 300 && due_in_ms(id) <= 400);
	assert_int_equal(fetch(E.q, "later", &job, 1), 0);
	srv_msleep(400 - (kiln_now_ms() - t0) + 50);
	assert_int_equal(fetch(E.q, "later", &job, 1), 1);
	assert_int_equal(job.id, id);
	assert_int_equal(job.attempt, 1);
	kiln_job_free(&job);
}

/* ---- fetch ---- */

#define BULK_JOBS 100

struct racer {
	struct kiln_db *db;
	int64_t ids[BULK_JOBS];
	int n, failed;
};

/* One executor: fetch in small batches until the queue is empty. */
static void *race_fetch(void *arg)
{
	struct racer *r = arg;
	struct kiln_job jobs[7];
	char err[256];
	int got, i;

	do {
		got = kiln_jobs_fetch(r->db, "bulk", "racer", jobs, 7, err, sizeof(err));
		if (got < 0 || r->n + got > BULK_JOBS) {
			r->failed = 1;
			break;
		}
		for (i = 0; i < got; i++) {
			r->ids[r->n++] = jobs[i].id;
			kiln_job_free(&jobs[i]);
		}
	} while (got > 0);
	return NULL;
}

/* Count a claim of id; a second claim of any job fails the test. */
static void mark_seen(int *seen, int64_t id)
{
	assert_true(id >= 1 && id <= BULK_JOBS);
	if (seen[id]++)
		fail_msg("job %lld claimed twice", (long long)id);
}

static void test_fetch_skip_locked_never_claims_twice(void **state)
{
	const struct kiln_job_opts o = {.queue = "bulk"};
	struct racer r[2] = {{.db = srv_db_new()}, {.db = srv_db_new()}};
	struct kiln_job a[30], b[30];
	int seen[BULK_JOBS + 1] = {0}, i, j;
	pthread_t t[2];

	(void)state;
	for (i = 0; i < BULK_JOBS; i++)
		enqueue(E.q, "bulk", "{}", &o);
	/* db 0 holds its 30 rows locked in an open transaction: db 1 skips
	 * them instead of waiting or claiming them too. */
	exec_ok(r[0].db, "BEGIN");
	assert_int_equal(fetch(r[0].db, "bulk", a, 30), 30);
	assert_int_equal(fetch(r[1].db, "bulk", b, 30), 30);
	exec_ok(r[0].db, "COMMIT");
	for (i = 0; i < 30; i++) {
		mark_seen(seen, a[i].id);
		mark_seen(seen, b[i].id);
	}
	free_jobs(a, 30);
	free_jobs(b, 30);
	/* Then both race for the other 40 at once. */
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_fetch, &r[i]), 0);
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_false(r[i].failed);
		for (j = 0; j < r[i].n; j++)
			mark_seen(seen, r[i].ids[j]);
	}
	assert_int_equal(r[0].n + r[1].n, BULK_JOBS - 60);
	for (i = 1; i <= BULK_JOBS; i++)
		assert_int_equal(seen[i], 1);
	assert_jv("SELECT count(*) FROM jobs WHERE state = 'running' AND attempt = 1", 0, "100");
	kiln_db_free(r[0].db);
	kiln_db_free(r[1].db);
}

static void test_fetch_priority_order_and_fields(void **state)
{
	static const int prio[] = {4, 2, 1, 3, 1};
	struct kiln_job_opts o = {.queue = "prio", .max_attempts = 5, .request_id = "rq-9"};
	struct kiln_job jobs[8];
	char kind[16];
	int i, n;

	(void)state;
	for (i = 0; i < 5; i++) {
		o.priority = prio[i];
		snprintf(kind, sizeof(kind), "job_%d", i);
		enqueue(E.q, kind, "{\"n\": [1, \"é\"]}", &o);
	}
	enqueue(E.q, "elsewhere", "{}", NULL); /* another queue is not fetched */
	assert_int_equal(fetch(E.q, "prio", jobs, 1), 1);
	assert_string_equal(jobs[0].kind, "job_2");
	kiln_job_free(&jobs[0]);
	n = fetch(E.q, "prio", jobs, 8);
	assert_int_equal(n, 4);
	assert_string_equal(jobs[0].kind, "job_4"); /* priority 1, enqueued later */
	assert_string_equal(jobs[1].kind, "job_1");
	assert_string_equal(jobs[2].kind, "job_3");
	assert_string_equal(jobs[3].kind, "job_0");
	assert_int_equal(jobs[0].id, 5);
	assert_string_equal(jobs[0].queue, "prio");
	assert_string_equal(jobs[0].args, "{\"n\": [1, \"é\"]}");
	assert_int_equal(jobs[0].attempt, 1);
	assert_int_equal(jobs[0].max_attempts, 5);
	assert_string_equal(jobs[0].request_id, "rq-9");
	free_jobs(jobs, n);
	assert_jv("SELECT concat_ws(' ', state, attempted_by, attempted_at IS NOT NULL, "
	          "heartbeat_at IS NOT NULL) FROM jobs WHERE id = $1",
	          5, "running test-worker t t");
	assert_int_equal(fetch(E.q, "prio", jobs, 8), 0);
	assert_int_equal(fetch(E.q, "default", jobs, 8), 1);
	assert_string_equal(jobs[0].request_id, "");
	kiln_job_free(&jobs[0]);
}

/* ---- fail, complete ---- */

static void test_fail_backs_off_then_discards_keeping_errors(void **state)
{
	const struct kiln_job_opts o = {.queue = "flaky", .max_attempts = 3};
	struct kiln_job job, stale;
	char msg[32], err[256] = "";
	int64_t id, due, base;
	int a;

	(void)state;
	id = enqueue(E.q, "flaky", "{}", &o);
	for (a = 1; a <= 3; a++) {
		assert_int_equal(fetch(E.q, "flaky", &job, 1), 1);
		assert_int_equal(job.attempt, a);
		snprintf(msg, sizeof(msg), "boom %d", a);
		assert_int_equal(kiln_jobs_fail(E.q, &job, msg, err, sizeof(err)), 0);
		assert_jv("SELECT array_length(errors, 1) FROM jobs WHERE id = $1", id,
		          a == 1   ? "1"
		          : a == 2 ? "2"
		                   : "3");
		if (a < 3) {
			assert_jv("SELECT concat_ws(' ', state, finalized_at IS NULL, "
			          "heartbeat_at IS NULL) FROM jobs WHERE id = $1",
			          id, "retryable t t");
			assert_int_equal(fetch(E.q, "flaky", &stale, 1), 0); /* not yet due */
			base = (int64_t)a * a * a * a * 1000;
			due = due_in_ms(id);
			assert_true(due > base * 9 / 10 - 200 && due <= base * 11 / 10);
			make_due(id);
		}
		if (a == 2)
			stale = job;
		else
			kiln_job_free(&job);
	}
	assert_jv("SELECT concat_ws(' ', state, finalized_at IS NOT NULL, attempt) FROM jobs "
	          "WHERE id = $1",
	          id, "discarded t 3");
	assert_jv("SELECT string_agg((e->>'attempt') || ':' || (e->>'error') || ':' || "
	          "((e->>'at')::timestamptz <= now()), ',') FROM jobs, unnest(errors) e "
	          "WHERE id = $1",
	          id, "1:boom 1:true,2:boom 2:true,3:boom 3:true");
	assert_int_equal(fetch(E.q, "flaky", &job, 1), 0);
	/* A stale executor cannot record a failure any more. */
	assert_int_equal(kiln_jobs_fail(E.q, &stale, "late", err, sizeof(err)), KILN_JOBS_GONE);
	assert_non_null(strstr(err, "not running"));
	kiln_job_free(&stale);
}

static void test_fail_bounds_error_text_as_utf8(void **state)
{
	char text[1300], err[256] = "";
	struct kiln_job job;
	int64_t id;
	int i;

	(void)state;
	id = enqueue(E.q, "bad_text", "{}", NULL);
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	/* An invalid byte, then 600 two-byte characters: 1203 bytes. */
	text[0] = '\xff';
	for (i = 0; i < 600; i++)
		memcpy(text + 1 + 2 * i, "\xc3\xa9", 2);
	text[1201] = '\0';
	assert_int_equal(kiln_jobs_fail(E.q, &job, text, err, sizeof(err)), 0);
	/* U+FFFD (3 bytes) and 498 whole characters: the 499th would pass 1000. */
	assert_jv("SELECT octet_length(errors[1]->>'error') FROM jobs WHERE id = $1", id, "999");
	assert_jv("SELECT left(errors[1]->>'error', 3) FROM jobs WHERE id = $1", id,
	          "\xef\xbf\xbd\xc3\xa9\xc3\xa9");
	make_due(id);
	kiln_job_free(&job);
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	assert_int_equal(kiln_jobs_fail(E.q, &job, NULL, err, sizeof(err)), 0);
	assert_jv("SELECT errors[2]->>'error' FROM jobs WHERE id = $1", id, "");
	kiln_job_free(&job);
}

/* A shutdown between fetch and run puts the claimed jobs back unspent, and
 * only the claimer's own: another worker's id releases nothing. */
static void test_release_returns_unstarted_jobs(void **state)
{
	struct kiln_job jobs[2];
	int64_t ids[2];
	char err[256];

	(void)state;
	enqueue(E.q, "noop", "{}", NULL);
	enqueue(E.q, "noop", "{}", NULL);
	assert_int_equal(fetch(E.q, "default", jobs, 2), 2);
	ids[0] = jobs[0].id;
	ids[1] = jobs[1].id;
	kiln_job_free(&jobs[0]);
	kiln_job_free(&jobs[1]);
	assert_int_equal(kiln_jobs_release(E.q, ids, 2, "another-worker", err, sizeof(err)), 0);
	assert_jv("SELECT state FROM jobs WHERE id = $1", ids[0], "running");
	assert_int_equal(kiln_jobs_release(E.q, ids, 2, "test-worker", err, sizeof(err)), 2);
	assert_jv("SELECT state || ',' || attempt || ',' || (attempted_by IS NULL) FROM jobs "
	          "WHERE id = $1",
	          ids[1], "available,0,true");
	assert_int_equal(kiln_jobs_release(E.q, ids, 0, "test-worker", err, sizeof(err)), 0);
	assert_int_equal(fetch(E.q, "default", jobs, 2), 2);
	assert_int_equal(jobs[0].attempt, 1);
	kiln_job_free(&jobs[0]);
	kiln_job_free(&jobs[1]);
}

static void test_complete_finalizes(void **state)
{
	struct kiln_job job;
	char err[256] = "";
	int64_t id;

	(void)state;
	id = enqueue(E.q, "once", "{}", NULL);
	assert_int_equal(kiln_jobs_complete(E.q, id, err, sizeof(err)),
	                 KILN_JOBS_GONE); /* not running */
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	assert_int_equal(kiln_jobs_complete(E.q, job.id, err, sizeof(err)), 0);
	assert_jv("SELECT concat_ws(' ', state, finalized_at IS NOT NULL, heartbeat_at IS NULL, "
	          "errors = '{}') FROM jobs WHERE id = $1",
	          id, "completed t t t");
	assert_int_equal(kiln_jobs_complete(E.q, job.id, err, sizeof(err)), KILN_JOBS_GONE);
	assert_non_null(strstr(err, "not running"));
	assert_int_equal(kiln_jobs_complete(E.q, 999999, err, sizeof(err)), KILN_JOBS_GONE);
	assert_int_equal(fetch(E.q, "default", &job, 1), 0);
	kiln_job_free(&job);
}

/* ---- heartbeat, rescue ---- */

static void test_heartbeat_keeps_job_from_rescue(void **state)
{
	struct kiln_job jobs[2];
	char err[256] = "";
	int64_t a, b, due;

	(void)state;
	enqueue(E.q, "long", "{}", NULL);
	enqueue(E.q, "long", "{}", NULL);
	assert_int_equal(fetch(E.q, "default", jobs, 2), 2);
	a = jobs[0].id, b = jobs[1].id;
	make_stale(a);
	make_stale(b);
	assert_int_equal(kiln_jobs_heartbeat(E.q, &a, 1, err, sizeof(err)), 0);
	assert_int_equal(kiln_jobs_rescue(E.q, 60000, err, sizeof(err)), 1);
	assert_jv("SELECT state FROM jobs WHERE id = $1", a, "running");
	assert_jv(
	    "SELECT concat_ws(' ', state, attempt, heartbeat_at IS NULL, errors[1]->>'attempt', "
	    "errors[1]->>'error') FROM jobs WHERE id = $1",
	    b, "retryable 1 t 1 " RESCUE_ERROR);
	due = due_in_ms(b); /* attempt 1: 1 s with jitter */
	assert_true(due > 700 && due <= 1100);
	assert_int_equal(kiln_jobs_rescue(E.q, 60000, err, sizeof(err)), 0);
	/* In real time: a beat 300 ms ago is stale for 200 ms, fresh after a
	 * new beat. */
	srv_msleep(300);
	assert_int_equal(kiln_jobs_heartbeat(E.q, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(kiln_jobs_heartbeat(E.q, &a, -1, err, sizeof(err)), -1);
	assert_int_equal(kiln_jobs_heartbeat(E.q, (int64_t[]){b, a, 424242}, 3, err, sizeof(err)),
	                 0);
	assert_int_equal(kiln_jobs_rescue(E.q, 200, err, sizeof(err)), 0);
	srv_msleep(300);
	assert_int_equal(kiln_jobs_rescue(E.q, 200, err, sizeof(err)), 1);
	assert_jv("SELECT state FROM jobs WHERE id = $1", a, "retryable");
	assert_int_equal(kiln_jobs_rescue(E.q, -1, err, sizeof(err)), -1);
	free_jobs(jobs, 2);
}

static void test_rescue_discards_after_max_attempts(void **state)
{
	const struct kiln_job_opts o = {.max_attempts = 2};
	struct kiln_job job;
	char err[256] = "";
	int64_t id;
	int a;

	(void)state;
	id = enqueue(E.q, "crasher", "{}", &o);
	for (a = 1; a <= 2; a++) {
		assert_int_equal(fetch(E.q, "default", &job, 1), 1);
		assert_int_equal(job.attempt, a);
		kiln_job_free(&job);
		make_stale(id);
		assert_int_equal(kiln_jobs_rescue(E.q, 1000, err, sizeof(err)), 1);
		if (a == 1) {
			assert_jv("SELECT state FROM jobs WHERE id = $1", id, "retryable");
			make_due(id);
		}
	}
	assert_jv("SELECT concat_ws(' ', state, attempt, finalized_at IS NOT NULL, "
	          "array_length(errors, 1), errors[2]->>'attempt') FROM jobs WHERE id = $1",
	          id, "discarded 2 t 2 2");
	assert_int_equal(fetch(E.q, "default", &job, 1), 0);
}

/* ---- operators' moves and counts ---- */

static void test_retry_discard_cancel_tell_missing_from_wrong_state(void **state)
{
	struct kiln_job_opts later = {.delay_ms = 3600000};
	char st[KILN_JOB_STATE_MAX] = "", err[256] = "";
	int64_t id = enqueue(E.q, "noop", "{}", &later);

	(void)state;
	assert_int_equal(kiln_jobs_retry(E.q, 999999, 0, st, err, sizeof(err)),
	                 KILN_JOBS_NOT_FOUND);
	assert_int_equal(kiln_jobs_retry(E.q, id, 0, st, err, sizeof(err)), KILN_JOBS_WRONG_STATE);
	assert_string_equal(st, "scheduled");
	assert_jv("SELECT state FROM jobs WHERE id = $1", id, "scheduled");
	assert_int_equal(kiln_jobs_discard(E.q, id, 0, st, err, sizeof(err)), 0);
	assert_jv("SELECT state || ' ' || (finalized_at IS NOT NULL) FROM jobs WHERE id = $1", id,
	          "discarded true");
	assert_int_equal(kiln_jobs_cancel(E.q, id, 0, st, err, sizeof(err)), KILN_JOBS_WRONG_STATE);
	assert_string_equal(st, "discarded");
	assert_int_equal(kiln_jobs_retry(E.q, id, 0, st, err, sizeof(err)), 0);
	assert_jv("SELECT state || ' ' || (finalized_at IS NULL) || ' '"
	          " || (scheduled_at <= now()) FROM jobs WHERE id = $1",
	          id, "available true true");
	assert_int_equal(kiln_jobs_cancel(E.q, id, 0, st, err, sizeof(err)), 0);
	assert_jv("SELECT state FROM jobs WHERE id = $1", id, "cancelled");
}

/* kiln-admin refuses to discard a running job; kilnctl may. */
static void test_moves_start_only_from_the_given_states(void **state)
{
	unsigned not_running = KILN_JOBS_STOP_FROM & ~KILN_JOB_MASK(KILN_JOB_RUNNING);
	char st[KILN_JOB_STATE_MAX] = "", err[256] = "";
	struct kiln_job job;
	int64_t id = enqueue(E.q, "noop", "{}", NULL);

	(void)state;
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	free_jobs(&job, 1);
	assert_int_equal(kiln_jobs_discard(E.q, id, not_running, st, err, sizeof(err)),
	                 KILN_JOBS_WRONG_STATE);
	assert_string_equal(st, "running");
	/* A set beyond what the move allows is cut to it. */
	assert_int_equal(
	    kiln_jobs_retry(E.q, id, KILN_JOB_MASK(KILN_JOB_RUNNING), st, err, sizeof(err)),
	    KILN_JOBS_WRONG_STATE);
	assert_int_equal(kiln_jobs_discard(E.q, id, 0, st, err, sizeof(err)), 0);
	assert_jv("SELECT state || ' ' || (heartbeat_at IS NULL) FROM jobs WHERE id = $1", id,
	          "discarded true");
	/* The run's own outcome is then ignored. */
	assert_int_equal(kiln_jobs_complete(E.q, id, err, sizeof(err)), KILN_JOBS_GONE);
}

static void test_retry_of_exhausted_job_allows_one_more_attempt_and_notifies(void **state)
{
	struct kiln_job_opts once = {.max_attempts = 1};
	char st[KILN_JOB_STATE_MAX] = "", err[256] = "";
	PGconn *listener = raw_conn();
	struct kiln_job job;
	PGnotify *n;
	int64_t id = enqueue(E.q, "noop", "{}", &once);

	(void)state;
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	assert_int_equal(kiln_jobs_fail(E.q, &job, "boom", err, sizeof(err)), 0);
	free_jobs(&job, 1);
	assert_jv("SELECT state FROM jobs WHERE id = $1", id, "discarded");
	PQclear(PQexec(listener, "LISTEN " KILN_JOBS_CHANNEL));
	assert_int_equal(kiln_jobs_retry(E.q, id, 0, st, err, sizeof(err)), 0);
	assert_jv("SELECT state || ' ' || attempt || '/' || max_attempts FROM jobs WHERE id = $1",
	          id, "available 1/2");
	n = wait_notify(listener, 2000);
	assert_non_null(n);
	assert_string_equal(n->extra, "default");
	PQfreemem(n);
	PQfinish(listener);
}

static void test_states_text_and_names(void **state)
{
	char t[96];

	(void)state;
	assert_string_equal(kiln_jobs_states_text(KILN_JOBS_STOP_FROM, t, sizeof(t)),
	                    "available, scheduled, running or retryable");
	assert_string_equal(kiln_jobs_states_text(KILN_JOB_MASK(KILN_JOB_RUNNING), t, sizeof(t)),
	                    "running");
	assert_string_equal(kiln_jobs_states_text(KILN_JOB_MASK(KILN_JOB_AVAILABLE) |
	                                              KILN_JOB_MASK(KILN_JOB_CANCELLED),
	                                          t, sizeof(t)),
	                    "available or cancelled");
	assert_int_equal(kiln_job_state_parse("retryable"), KILN_JOB_RETRYABLE);
	assert_int_equal(kiln_job_state_parse("Retryable"), -1);
	assert_string_equal(kiln_job_state_name(KILN_JOB_CANCELLED), "cancelled");
	assert_null(kiln_job_state_name(KILN_JOB_STATES));
}

static void test_count_by_state_and_pending_only(void **state)
{
	struct kiln_job_opts later = {.delay_ms = 3600000};
	struct kiln_jobs_counts c;
	char err[256] = "";
	struct kiln_job job;
	int64_t done;

	(void)state;
	enqueue(E.q, "noop", "{}", &later);
	done = enqueue(E.q, "noop", "{}", NULL);
	assert_int_equal(fetch(E.q, "default", &job, 1), 1);
	assert_int_equal(kiln_jobs_complete(E.q, done, err, sizeof(err)), 0);
	free_jobs(&job, 1);
	enqueue(E.q, "noop", "{}", NULL);
	enqueue(E.q, "noop", "{}", NULL);
	free(jv("UPDATE jobs SET scheduled_at = now() - interval '10 seconds'"
	        " WHERE state = 'available' AND id = (SELECT max(id) FROM jobs) RETURNING id",
	        0));
	assert_int_equal(kiln_jobs_count(E.q, 0, 0, &c, err, sizeof(err)), 0);
	assert_int_equal(c.count[KILN_JOB_AVAILABLE], 2);
	assert_int_equal(c.count[KILN_JOB_SCHEDULED], 1);
	assert_int_equal(c.count[KILN_JOB_COMPLETED], 1);
	assert_int_equal(c.count[KILN_JOB_RUNNING], 0);
	assert_true(c.oldest_available_s >= 9.5 && c.oldest_available_s < 60);
	assert_int_equal(kiln_jobs_count(E.q, 1, 1000, &c, err, sizeof(err)), 0);
	assert_int_equal(c.count[KILN_JOB_AVAILABLE], 2);
	assert_int_equal(c.count[KILN_JOB_SCHEDULED], 1);
	assert_int_equal(c.count[KILN_JOB_COMPLETED], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_values),
	    cmocka_unit_test_setup(test_enqueue_follows_caller_transaction, reset),
	    cmocka_unit_test_setup(test_enqueue_rejects_bad_input, reset),
	    cmocka_unit_test_setup(test_unique_key_dedups_until_final, reset),
	    cmocka_unit_test_setup(test_delay_schedules_until_due, reset),
	    cmocka_unit_test_setup(test_fetch_skip_locked_never_claims_twice, reset),
	    cmocka_unit_test_setup(test_fetch_priority_order_and_fields, reset),
	    cmocka_unit_test_setup(test_fail_backs_off_then_discards_keeping_errors, reset),
	    cmocka_unit_test_setup(test_fail_bounds_error_text_as_utf8, reset),
	    cmocka_unit_test_setup(test_complete_finalizes, reset),
	    cmocka_unit_test_setup(test_release_returns_unstarted_jobs, reset),
	    cmocka_unit_test_setup(test_heartbeat_keeps_job_from_rescue, reset),
	    cmocka_unit_test_setup(test_rescue_discards_after_max_attempts, reset),
	    cmocka_unit_test_setup(test_retry_discard_cancel_tell_missing_from_wrong_state, reset),
	    cmocka_unit_test_setup(test_moves_start_only_from_the_given_states, reset),
	    cmocka_unit_test_setup(test_retry_of_exhausted_job_allows_one_more_attempt_and_notifies,
	                           reset),
	    cmocka_unit_test(test_states_text_and_names),
	    cmocka_unit_test_setup(test_count_by_state_and_pending_only, reset),
	};
	int64_t t0 = kiln_now_ms();
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

	fprintf(stderr, "test_jobs: %lld ms\n", (long long)(kiln_now_ms() - t0));
	return rc;
}
