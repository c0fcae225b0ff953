/* jobs: the durable job queue in PostgreSQL (schema: sql/002_jobs.sql).
 * Every state change is one constant statement, so a job never sits half
 * changed: enqueue inserts and notifies, fetch claims under SKIP LOCKED and
 * marks running, fail records the error and picks retry or discard in the
 * same UPDATE. The library never logs; errors go to err and carry only
 * PostgreSQL's primary message, never a DETAIL, which could quote args. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "kiln/buf.h"
#include "kiln/db.h"
#include "kiln/jobs.h"
#include "kiln/util.h"

#define JOBS_DEFAULT_QUEUE        "default"
#define JOBS_DEFAULT_PRIORITY     1
#define JOBS_MAX_PRIORITY         4
#define JOBS_DEFAULT_MAX_ATTEMPTS 20
/* Generous, yet bounded so a typo cannot keep a job retrying for years. */
#define JOBS_MAX_MAX_ATTEMPTS 1000
/* Ten years: beyond it a delay is a bug, not a schedule. */
#define JOBS_MAX_DELAY_MS   (10LL * 366 * 24 * 3600 * 1000)
#define JOBS_UNIQUE_KEY_MAX 255
#define JOBS_REQUEST_ID_MAX 64
#define JOBS_WORKER_ID_MAX  255
/* Stored error text per attempt, in bytes: enough for a message, small
 * enough that errors[] of a job failing max_attempts times stays small. */
#define JOBS_ERROR_MAX      1000
#define JOBS_BACKOFF_CAP_MS (24LL * 3600 * 1000)

/* The statements, prepared once per connection under their names. Column
 * and predicate text of the ON CONFLICT clause must match the partial
 * unique index jobs_unique_key_idx for PostgreSQL to infer it. */
enum {
	JOBS_ENQUEUE,
	JOBS_FETCH,
	JOBS_COMPLETE,
	JOBS_FAIL,
	JOBS_HEARTBEAT,
	JOBS_RELEASE,
	JOBS_RESCUE,
	JOBS_RETRY,
	JOBS_DISCARD,
	JOBS_CANCEL,
	JOBS_STATE,
	JOBS_COUNT,
	JOBS_COUNT_PENDING,
	JOBS_OLDEST
};

static const struct jobs_stmt {
	const char *name;
	const char *op; /* for error messages */
	int nparams;
	const char *sql;
} jobs_stmts[] = {
    [JOBS_ENQUEUE] = {"jobs_enqueue", "enqueue", 8,
                      "WITH ins AS ("
                      " INSERT INTO jobs (kind, args, queue, priority, max_attempts, state,"
                      "  scheduled_at, unique_key, request_id)"
                      " VALUES ($1, $2::jsonb, $3, $4::smallint, $5::integer,"
                      "  CASE WHEN $6::bigint > 0 THEN 'scheduled' ELSE 'available' END,"
                      "  now() + $6::bigint * interval '1 millisecond', $7, $8)"
                      " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL"
                      "  AND state IN ('available', 'scheduled', 'running', 'retryable')"
                      " DO NOTHING"
                      " RETURNING id, queue)"
                      " SELECT id, pg_notify('" KILN_JOBS_CHANNEL "', queue) FROM ins"},
    [JOBS_FETCH] = {"jobs_fetch", "fetch", 3,
                    "WITH picked AS ("
                    " SELECT id FROM jobs"
                    " WHERE queue = $1 AND state IN ('available', 'scheduled', 'retryable')"
                    "  AND scheduled_at <= now()"
                    " ORDER BY priority, scheduled_at, id"
                    " LIMIT $2::integer"
                    " FOR UPDATE SKIP LOCKED),"
                    " claimed AS ("
                    " UPDATE jobs j SET state = 'running', attempt = j.attempt + 1,"
                    "  attempted_at = now(), attempted_by = $3, heartbeat_at = now()"
                    " FROM picked WHERE j.id = picked.id"
                    " RETURNING j.id, j.kind, j.queue, j.args::text AS args, j.attempt,"
                    "  j.max_attempts, coalesce(j.request_id, '') AS request_id,"
                    "  j.priority, j.scheduled_at)"
                    " SELECT id, kind, queue, args, attempt, max_attempts, request_id"
                    " FROM claimed ORDER BY priority, scheduled_at, id"},
    [JOBS_COMPLETE] = {"jobs_complete", "complete", 1,
                       "UPDATE jobs SET state = 'completed', finalized_at = now(),"
                       " heartbeat_at = NULL"
                       " WHERE id = $1::bigint AND state = 'running'"},
    /* $4 is the attempt the caller ran: a run that was rescued and claimed
     * again by another executor is not failed by the stale one. */
    [JOBS_FAIL] = {"jobs_fail", "fail", 4,
                   "UPDATE jobs SET"
                   " errors = array_append(errors, jsonb_build_object('at', now(),"
                   "  'attempt', attempt, 'error', $2::text)),"
                   " state = CASE WHEN attempt >= max_attempts"
                   "  THEN 'discarded' ELSE 'retryable' END,"
                   " scheduled_at = CASE WHEN attempt >= max_attempts THEN scheduled_at"
                   "  ELSE now() + $3::bigint * interval '1 millisecond' END,"
                   " finalized_at = CASE WHEN attempt >= max_attempts THEN now() END,"
                   " heartbeat_at = NULL"
                   " WHERE id = $1::bigint AND state = 'running' AND attempt = $4::integer"},
    [JOBS_HEARTBEAT] = {"jobs_heartbeat", "heartbeat", 1,
                        "UPDATE jobs SET heartbeat_at = now()"
                        " WHERE id = ANY($1::bigint[]) AND state = 'running'"},
    [JOBS_RELEASE] = {"jobs_release", "release", 2,
                      "UPDATE jobs SET state = 'available', attempt = attempt - 1,"
                      " attempted_by = NULL, heartbeat_at = NULL"
                      " WHERE id = ANY($1::bigint[]) AND state = 'running'"
                      " AND attempted_by = $2"},
    /* The backoff is kiln_jobs_backoff_ms() in SQL: attempt^4 s times
     * 0.9..1.1, capped at 24 h. */
    [JOBS_RESCUE] = {"jobs_rescue", "rescue", 1,
                     "WITH rescued AS ("
                     " UPDATE jobs SET"
                     "  errors = array_append(errors, jsonb_build_object('at', now(),"
                     "   'attempt', attempt,"
                     "   'error', 'rescued: executor stopped heartbeating'::text)),"
                     "  state = CASE WHEN attempt >= max_attempts"
                     "   THEN 'discarded' ELSE 'retryable' END,"
                     "  scheduled_at = CASE WHEN attempt >= max_attempts THEN scheduled_at"
                     "   ELSE now() + least(power(greatest(attempt, 1)::float8, 4)"
                     "    * (0.9 + 0.2 * random()), 86400) * interval '1 second' END,"
                     "  finalized_at = CASE WHEN attempt >= max_attempts THEN now() END,"
                     "  heartbeat_at = NULL"
                     " WHERE state = 'running'"
                     "  AND heartbeat_at < now() - $1::bigint * interval '1 millisecond'"
                     " RETURNING 1)"
                     " SELECT count(*) FROM rescued"},
    /* The moves: $1 the job, $2 the states it may start from (text[]).
     * retry gives an exhausted job one more attempt (as River does) and
     * wakes the executors of its queue (on commit). */
    [JOBS_RETRY] = {"jobs_retry", "retry", 2,
                    "WITH u AS (UPDATE jobs SET state = 'available', scheduled_at = now(),"
                    " finalized_at = NULL, max_attempts = greatest(max_attempts, attempt + 1)"
                    " WHERE id = $1::bigint AND state = ANY($2::text[])"
                    " AND state IN ('discarded', 'retryable', 'cancelled')"
                    " RETURNING id, queue)"
                    " SELECT id, pg_notify('" KILN_JOBS_CHANNEL "', queue) FROM u"},
    [JOBS_DISCARD] = {"jobs_discard", "discard", 2,
                      "UPDATE jobs SET state = 'discarded', finalized_at = now(),"
                      " heartbeat_at = NULL"
                      " WHERE id = $1::bigint AND state = ANY($2::text[])"
                      " AND state IN ('available', 'scheduled', 'running', 'retryable')"
                      " RETURNING id"},
    [JOBS_CANCEL] = {"jobs_cancel", "cancel", 2,
                     "UPDATE jobs SET state = 'cancelled', finalized_at = now(),"
                     " heartbeat_at = NULL"
                     " WHERE id = $1::bigint AND state = ANY($2::text[])"
                     " AND state IN ('available', 'scheduled', 'running', 'retryable')"
                     " RETURNING id"},
    [JOBS_STATE] = {"jobs_state", "state", 1, "SELECT state FROM jobs WHERE id = $1::bigint"},
    [JOBS_COUNT] = {"jobs_count", "count", 0, "SELECT state, count(*) FROM jobs GROUP BY state"},
    /* Each branch's predicate is that of a partial index (jobs_fetch_idx,
     * jobs_rescue_idx), so only the backlog is read. */
    [JOBS_COUNT_PENDING] = {"jobs_count_pending", "count", 0,
                            "SELECT state, count(*) FROM jobs"
                            " WHERE state IN ('available', 'scheduled', 'retryable')"
                            " GROUP BY state"
                            " UNION ALL SELECT 'running', count(*) FROM jobs"
                            " WHERE state = 'running'"},
    /* Runnable now and not claimed: what an executor would fetch, so the
     * age measures how far the executors lag. */
    [JOBS_OLDEST] = {"jobs_oldest", "count", 0,
                     "SELECT coalesce(greatest(extract(epoch FROM now() - min(scheduled_at)),"
                     " 0), 0)::float8 FROM jobs"
                     " WHERE state IN ('available', 'scheduled', 'retryable')"
                     " AND scheduled_at <= now()"},
};

static const char *const jobs_state_names[KILN_JOB_STATES] = {
    [KILN_JOB_AVAILABLE] = "available", [KILN_JOB_SCHEDULED] = "scheduled",
    [KILN_JOB_RUNNING] = "running",     [KILN_JOB_RETRYABLE] = "retryable",
    [KILN_JOB_COMPLETED] = "completed", [KILN_JOB_DISCARDED] = "discarded",
    [KILN_JOB_CANCELLED] = "cancelled",
};

static void jobs_err(char *err, size_t errlen, const char *op, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "jobs: %s: %s", op, msg);
}

/* Run statement st and expect status want. Returns the result, or NULL
 * with err set (the database layer's error, or PostgreSQL's primary
 * message: its DETAIL may quote the row, args included). */
static PGresult *jobs_exec_timeout(struct kiln_db *db, int st, const char *const *values,
                                   ExecStatusType want, int64_t timeout_ms, char *err,
                                   size_t errlen)
{
	const struct jobs_stmt *s = &jobs_stmts[st];
	char dberr[256] = "";
	const char *msg;
	PGresult *res;

	res = kiln_db_exec_prepared(db, s->name, s->sql, s->nparams, values, timeout_ms, dberr,
	                            sizeof(dberr));
	if (res == NULL) {
		jobs_err(err, errlen, s->op, dberr);
		return NULL;
	}
	if (PQresultStatus(res) != want) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		jobs_err(err, errlen, s->op, msg && *msg ? msg : PQresStatus(PQresultStatus(res)));
		PQclear(res);
		return NULL;
	}
	return res;
}

static PGresult *jobs_exec(struct kiln_db *db, int st, const char *const *values,
                           ExecStatusType want, char *err, size_t errlen)
{
	return jobs_exec_timeout(db, st, values, want, 0, err, errlen);
}

/* A kind or queue name: 1..63 bytes of [a-z0-9_]. */
static int jobs_valid_name(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n]; n++)
		if (n >= KILN_JOB_KIND_MAX - 1 ||
		    !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return 0;
	return n > 0;
}

/* A JSON object starts with '{' after optional whitespace; PostgreSQL's
 * jsonb cast checks the rest. Catching arrays and scalars here gives the
 * caller a clear message instead of a check-constraint name. */
static int jobs_looks_like_object(const char *s)
{
	s += strspn(s, " \t\r\n");
	return *s == '{';
}

/* Check everything that can be checked without the server. Fills the
 * numeric parameters. Returns NULL, or what is wrong. */
static const char *jobs_check_enqueue(const char *kind, const char *args,
                                      const struct kiln_job_opts *o, int *prio, int *maxatt)
{
	if (!jobs_valid_name(kind))
		return "kind must be 1..63 characters of a-z, 0-9 and _";
	if (o->queue && !jobs_valid_name(o->queue))
		return "queue must be 1..63 characters of a-z, 0-9 and _";
	if (!jobs_looks_like_object(args))
		return "args must be a JSON object";
	*prio = o->priority ? o->priority : JOBS_DEFAULT_PRIORITY;
	if (*prio < 1 || *prio > JOBS_MAX_PRIORITY)
		return "priority must be 1..4";
	*maxatt = o->max_attempts ? o->max_attempts : JOBS_DEFAULT_MAX_ATTEMPTS;
	if (*maxatt < 1 || *maxatt > JOBS_MAX_MAX_ATTEMPTS)
		return "max_attempts must be 1..1000";
	if (o->delay_ms < 0 || o->delay_ms > JOBS_MAX_DELAY_MS)
		return "delay_ms must be 0..10 years";
	if (o->unique_key && (!*o->unique_key || strlen(o->unique_key) > JOBS_UNIQUE_KEY_MAX))
		return "unique_key must be 1..255 bytes";
	if (o->request_id && strlen(o->request_id) > JOBS_REQUEST_ID_MAX)
		return "request_id must be at most 64 bytes";
	return NULL;
}

int64_t kiln_jobs_enqueue(struct kiln_db *db, const char *kind, const char *args_json,
                          const struct kiln_job_opts *opts, char *err, size_t errlen)
{
	static const struct kiln_job_opts none;
	const struct kiln_job_opts *o = opts ? opts : &none;
	const char *args = args_json ? args_json : "{}", *bad;
	char prio[16], maxatt[16], delay[24];
	const char *v[8];
	int p, m;
	int64_t id = 0;
	PGresult *res;

	bad = jobs_check_enqueue(kind, args, o, &p, &m);
	if (bad) {
		jobs_err(err, errlen, "enqueue", bad);
		return -1;
	}
	snprintf(prio, sizeof(prio), "%d", p);
	snprintf(maxatt, sizeof(maxatt), "%d", m);
	snprintf(delay, sizeof(delay), "%lld", (long long)o->delay_ms);
	v[0] = kind, v[1] = args, v[2] = o->queue ? o->queue : JOBS_DEFAULT_QUEUE;
	v[3] = prio, v[4] = maxatt, v[5] = delay, v[6] = o->unique_key, v[7] = o->request_id;
	res = jobs_exec(db, JOBS_ENQUEUE, v, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1 && kiln_parse_int(PQgetvalue(res, 0, 0), 1, INT64_MAX, &id) < 0) {
		jobs_err(err, errlen, "enqueue", "bad id from the server");
		id = -1;
	}
	PQclear(res);
	return id;
}

/* Fill job from row i of a fetch result. Returns 0, or -1 on OOM or a
 * value out of range. */
static int jobs_fill(PGresult *res, int i, struct kiln_job *job)
{
	int64_t attempt, maxatt;

	memset(job, 0, sizeof(*job));
	if (kiln_parse_int(PQgetvalue(res, i, 0), 1, INT64_MAX, &job->id) < 0 ||
	    kiln_parse_int(PQgetvalue(res, i, 4), 0, INT32_MAX, &attempt) < 0 ||
	    kiln_parse_int(PQgetvalue(res, i, 5), 1, INT32_MAX, &maxatt) < 0)
		return -1;
	kiln_strlcpy(job->kind, PQgetvalue(res, i, 1), sizeof(job->kind));
	kiln_strlcpy(job->queue, PQgetvalue(res, i, 2), sizeof(job->queue));
	kiln_strlcpy(job->request_id, PQgetvalue(res, i, 6), sizeof(job->request_id));
	job->attempt = (int)attempt;
	job->max_attempts = (int)maxatt;
	job->args = strdup(PQgetvalue(res, i, 3));
	return job->args ? 0 : -1;
}

int kiln_jobs_fetch(struct kiln_db *db, const char *queue, const char *worker_id,
                    struct kiln_job *jobs, int n, char *err, size_t errlen)
{
	char limit[16];
	const char *v[3];
	PGresult *res;
	int i, got;

	if (!jobs_valid_name(queue) || jobs == NULL || n < 0 ||
	    (worker_id && strlen(worker_id) > JOBS_WORKER_ID_MAX)) {
		jobs_err(err, errlen, "fetch", "bad queue, worker id or job array");
		return -1;
	}
	if (n == 0)
		return 0;
	snprintf(limit, sizeof(limit), "%d", n);
	v[0] = queue, v[1] = limit, v[2] = worker_id;
	res = jobs_exec(db, JOBS_FETCH, v, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	got = PQntuples(res) < n ? PQntuples(res) : n;
	for (i = 0; i < got; i++) {
		if (jobs_fill(res, i, &jobs[i]) < 0) {
			/* The claimed jobs stay running until rescue retries them. */
			while (i >= 0)
				kiln_job_free(&jobs[i--]);
			jobs_err(err, errlen, "fetch", "out of memory or bad row");
			PQclear(res);
			return -1;
		}
	}
	PQclear(res);
	return got;
}

void kiln_job_free(struct kiln_job *job)
{
	if (job == NULL)
		return;
	free(job->args);
	job->args = NULL;
}

/* Run an UPDATE of one job that must change exactly one row; no row
 * changed is KILN_JOBS_GONE. */
static int jobs_update_one(struct kiln_db *db, int st, const char *const *values, int64_t id,
                           char *err, size_t errlen)
{
	PGresult *res = jobs_exec(db, st, values, PGRES_COMMAND_OK, err, errlen);
	char msg[96];
	int rc = 0;

	if (res == NULL)
		return -1;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		snprintf(msg, sizeof(msg), "job %lld is not running (or not this attempt)",
		         (long long)id);
		jobs_err(err, errlen, jobs_stmts[st].op, msg);
		rc = KILN_JOBS_GONE;
	}
	PQclear(res);
	return rc;
}

int kiln_jobs_complete(struct kiln_db *db, int64_t id, char *err, size_t errlen)
{
	char ids[24];
	const char *v[1] = {ids};

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	return jobs_update_one(db, JOBS_COMPLETE, v, id, err, errlen);
}

/* Copy at most JOBS_ERROR_MAX bytes of error into b as valid UTF-8, each
 * invalid byte replaced by U+FFFD: the text goes into jsonb, which accepts
 * nothing else, and a failing job must never fail to record its failure. */
static int jobs_error_text(struct kiln_buf *b, const char *error)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *s = (const unsigned char *)(error ? error : "");
	size_t n = strlen((const char *)s), i = 0, len;
	const void *p;

	while (i < n) {
		len = kiln_utf8_len(s + i, n - i);
		p = len ? (const void *)(s + i) : (const void *)repl;
		if (b->len + (len ? len : 3) > JOBS_ERROR_MAX)
			break;
		if (kiln_buf_add(b, p, len ? len : 3) < 0)
			return -1;
		i += len ? len : 1;
	}
	return 0;
}

/* Jitter in [0,1) from the CSPRNG: nothing to seed, and the same in every
 * forked worker without care. 0.5 (no jitter) should it ever fail. */
static double jobs_jitter(void)
{
	unsigned char r[4];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return 0.5;
	return (double)((uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3]) /
	       4294967296.0;
}

int kiln_jobs_fail(struct kiln_db *db, const struct kiln_job *job, const char *error, char *err,
                   size_t errlen)
{
	char id[24], backoff[24], attempt[16];
	const char *v[4];
	struct kiln_buf text;
	int rc;

	if (job == NULL) {
		jobs_err(err, errlen, "fail", "no job");
		return -1;
	}
	kiln_buf_init(&text);
	if (jobs_error_text(&text, error) < 0) {
		kiln_buf_free(&text);
		jobs_err(err, errlen, "fail", "out of memory");
		return -1;
	}
	snprintf(id, sizeof(id), "%lld", (long long)job->id);
	snprintf(backoff, sizeof(backoff), "%lld",
	         (long long)kiln_jobs_backoff_ms(job->attempt, jobs_jitter()));
	snprintf(attempt, sizeof(attempt), "%d", job->attempt);
	v[0] = id, v[1] = text.data, v[2] = backoff, v[3] = attempt;
	rc = jobs_update_one(db, JOBS_FAIL, v, job->id, err, errlen);
	kiln_buf_free(&text);
	return rc;
}

/* ids as one array literal "{1,2,3}": one parameter whatever n is.
 * Returns 0, or -1 with err set. */
static int jobs_id_array(struct kiln_buf *arr, const int64_t *ids, int n, const char *op, char *err,
                         size_t errlen)
{
	int i, bad = 0;

	if (n < 0 || (n > 0 && ids == NULL)) {
		jobs_err(err, errlen, op, "bad id array");
		return -1;
	}
	for (i = 0; i < n && !bad; i++)
		bad = kiln_buf_printf(arr, "%c%lld", i ? ',' : '{', (long long)ids[i]) < 0;
	if (bad || kiln_buf_addc(arr, '}') < 0) {
		jobs_err(err, errlen, op, "out of memory");
		return -1;
	}
	return 0;
}

int kiln_jobs_heartbeat(struct kiln_db *db, const int64_t *ids, int n, char *err, size_t errlen)
{
	struct kiln_buf arr;
	const char *v[1];
	PGresult *res;

	if (n == 0)
		return 0;
	kiln_buf_init(&arr);
	if (jobs_id_array(&arr, ids, n, "heartbeat", err, errlen) < 0) {
		kiln_buf_free(&arr);
		return -1;
	}
	v[0] = arr.data;
	res = jobs_exec(db, JOBS_HEARTBEAT, v, PGRES_COMMAND_OK, err, errlen);
	kiln_buf_free(&arr);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int kiln_jobs_release(struct kiln_db *db, const int64_t *ids, int n, const char *worker_id,
                      char *err, size_t errlen)
{
	struct kiln_buf arr;
	const char *v[2];
	PGresult *res;
	int released;

	if (n == 0)
		return 0;
	kiln_buf_init(&arr);
	if (jobs_id_array(&arr, ids, n, "release", err, errlen) < 0) {
		kiln_buf_free(&arr);
		return -1;
	}
	v[0] = arr.data;
	v[1] = worker_id;
	res = jobs_exec(db, JOBS_RELEASE, v, PGRES_COMMAND_OK, err, errlen);
	kiln_buf_free(&arr);
	if (res == NULL)
		return -1;
	released = atoi(PQcmdTuples(res));
	PQclear(res);
	return released;
}

int kiln_jobs_rescue(struct kiln_db *db, int64_t stale_ms, char *err, size_t errlen)
{
	char stale[24];
	const char *v[1] = {stale};
	PGresult *res;
	int64_t count = -1;

	if (stale_ms < 0) {
		jobs_err(err, errlen, "rescue", "stale_ms must not be negative");
		return -1;
	}
	snprintf(stale, sizeof(stale), "%lld", (long long)stale_ms);
	res = jobs_exec(db, JOBS_RESCUE, v, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 ||
	    kiln_parse_int(PQgetvalue(res, 0, 0), 0, INT32_MAX, &count) < 0) {
		jobs_err(err, errlen, "rescue", "bad count from the server");
		count = -1;
	}
	PQclear(res);
	return (int)count;
}

int64_t kiln_jobs_backoff_ms(int attempt, double jitter01)
{
	int64_t base_ms;
	double ms;

	if (attempt < 1)
		attempt = 1;
	/* 100^4 s is far past the cap; stopping here keeps attempt^4 in range. */
	if (attempt >= 100)
		return JOBS_BACKOFF_CAP_MS;
	if (!(jitter01 >= 0.0)) /* also NaN */
		jitter01 = 0.0;
	if (jitter01 > 1.0)
		jitter01 = 1.0;
	base_ms = (int64_t)attempt * attempt * attempt * attempt * 1000;
	ms = (double)base_ms * (0.9 + 0.2 * jitter01);
	if (ms >= (double)JOBS_BACKOFF_CAP_MS)
		return JOBS_BACKOFF_CAP_MS;
	return (int64_t)(ms + 0.5);
}

/* ---------------------------------------------------------------- operators' moves and counts */

const char *kiln_job_state_name(int s)
{
	return s >= 0 && s < KILN_JOB_STATES ? jobs_state_names[s] : NULL;
}

int kiln_job_state_parse(const char *name)
{
	int s;

	for (s = 0; name && s < KILN_JOB_STATES; s++)
		if (strcmp(jobs_state_names[s], name) == 0)
			return s;
	return -1;
}

char *kiln_jobs_states_text(unsigned mask, char *out, size_t outlen)
{
	int s, n = 0, total = 0;
	size_t len = 0;

	for (s = 0; s < KILN_JOB_STATES; s++)
		total += (mask & KILN_JOB_MASK(s)) != 0;
	if (outlen)
		out[0] = '\0';
	for (s = 0; s < KILN_JOB_STATES && len < outlen; s++) {
		if (!(mask & KILN_JOB_MASK(s)))
			continue;
		n++;
		len += (size_t)snprintf(out + len, outlen - len, "%s%s",
		                        n == 1       ? ""
		                        : n == total ? " or "
		                                     : ", ",
		                        jobs_state_names[s]);
	}
	return out;
}

/* One move of job id from the states in from (0 = all it allows). */
static int jobs_move(struct kiln_db *db, int st, unsigned allowed, int64_t id, unsigned from,
                     char *state, char *err, size_t errlen)
{
	char ids[24], arr[96];
	const char *v[2] = {ids, arr};
	size_t len = 0;
	PGresult *res;
	int s, moved;

	if (from == 0)
		from = allowed;
	arr[len++] = '{';
	for (s = 0; s < KILN_JOB_STATES; s++)
		if (from & allowed & KILN_JOB_MASK(s))
			len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%s",
			                        len > 1 ? "," : "", jobs_state_names[s]);
	snprintf(arr + len, sizeof(arr) - len, "}");
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = jobs_exec(db, st, v, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	moved = PQntuples(res) == 1;
	PQclear(res);
	if (moved)
		return 0;
	/* Why not: no such job, or another state. */
	res = jobs_exec(db, JOBS_STATE, v, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	moved = PQntuples(res) == 1 ? KILN_JOBS_WRONG_STATE : KILN_JOBS_NOT_FOUND;
	if (state)
		kiln_strlcpy(state, moved == KILN_JOBS_WRONG_STATE ? PQgetvalue(res, 0, 0) : "",
		             KILN_JOB_STATE_MAX);
	PQclear(res);
	return moved;
}

int kiln_jobs_retry(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                    size_t errlen)
{
	return jobs_move(db, JOBS_RETRY, KILN_JOBS_RETRY_FROM, id, from, state, err, errlen);
}

int kiln_jobs_discard(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                      size_t errlen)
{
	return jobs_move(db, JOBS_DISCARD, KILN_JOBS_STOP_FROM, id, from, state, err, errlen);
}

int kiln_jobs_cancel(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                     size_t errlen)
{
	return jobs_move(db, JOBS_CANCEL, KILN_JOBS_STOP_FROM, id, from, state, err, errlen);
}

int kiln_jobs_count(struct kiln_db *db, int pending_only, int64_t timeout_ms,
                    struct kiln_jobs_counts *out, char *err, size_t errlen)
{
	PGresult *res;
	int64_t n;
	char *end;
	int i, s;

	memset(out, 0, sizeof(*out));
	res = jobs_exec_timeout(db, pending_only ? JOBS_COUNT_PENDING : JOBS_COUNT, NULL,
	                        PGRES_TUPLES_OK, timeout_ms, err, errlen);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		s = kiln_job_state_parse(PQgetvalue(res, i, 0));
		if (s < 0)
			continue; /* a state newer than this program */
		if (kiln_parse_int(PQgetvalue(res, i, 1), 0, INT64_MAX, &n) < 0) {
			jobs_err(err, errlen, "count", "bad count from the server");
			PQclear(res);
			return -1;
		}
		out->count[s] = n;
	}
	PQclear(res);
	res = jobs_exec_timeout(db, JOBS_OLDEST, NULL, PGRES_TUPLES_OK, timeout_ms, err, errlen);
	if (res == NULL)
		return -1;
	out->oldest_available_s = PQntuples(res) == 1 ? strtod(PQgetvalue(res, 0, 0), &end) : -1;
	if (PQntuples(res) != 1 || *end != '\0' || !(out->oldest_available_s >= 0)) {
		jobs_err(err, errlen, "count", "bad age of the oldest job from the server");
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}
