/* /admin/api/jobs: the queue's counts, the jobs newest first, one job with
 * its errors and args, and retry or discard of one job. The moves are
 * libcommon's (kiln_jobs_retry, kiln_jobs_discard), the SQL kilnctl jobs
 * runs too; here they run inside the audit row's transaction with the job's
 * row locked, so the before and after snapshots are exactly what changed. */
#include <stdio.h>
#include <string.h>

#include "kiln/jobs.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "admin.h"

#define JOB_COLS                                                                                          \
	"j.id, j.queue, j.kind, j.state, j.priority, j.attempt, j.max_attempts, " ADMIN_TS(               \
	    "j."                                                                                          \
	    "sched"                                                                                       \
	    "uled_"                                                                                       \
	    "at") ", " ADMIN_TS("j.attempted_at") ", " ADMIN_TS("j.created_at") ", " ADMIN_TS("j."        \
	                                                                                      "fi"        \
	                                                                                      "na"        \
	                                                                                      "li"        \
	                                                                                      "ze"        \
	                                                                                      "d_"        \
	                                                                                      "a"         \
	                                                                                      "t") ", "   \
	                                                                                           "j."   \
	                                                                                           "erro" \
	                                                                                           "rs["  \
	                                                                                           "arra" \
	                                                                                           "y_"   \
	                                                                                           "uppe" \
	                                                                                           "r(j." \
	                                                                                           "erro" \
	                                                                                           "rs, " \
	                                                                                           "1)]-" \
	                                                                                           ">>'"  \
	                                                                                           "erro" \
	                                                                                           "r',"  \
	                                                                                           " j."  \
	                                                                                           "requ" \
	                                                                                           "est_" \
	                                                                                           "id"
#define JOB_DETAIL_COLS JOB_COLS ", array_to_json(j.errors), j.args::text"

enum job_col {
	J_ID,
	J_QUEUE,
	J_KIND,
	J_STATE,
	J_PRIORITY,
	J_ATTEMPT,
	J_MAX_ATTEMPTS,
	J_SCHEDULED,
	J_ATTEMPTED,
	J_CREATED,
	J_FINALIZED,
	J_LAST_ERROR,
	J_REQUEST_ID,
	J_ERRORS,
	J_ARGS,
};

static const char sql_get[] = "SELECT " JOB_DETAIL_COLS " FROM jobs j WHERE j.id = $1";
static const char sql_lock_row[] =
    "SELECT " JOB_DETAIL_COLS " FROM jobs j WHERE j.id = $1 FOR NO KEY UPDATE";

/* Newest first, before the cursor ($1), limit + 1 rows ($2). With a state
 * the (state, id) index gives the order (sql/005_jobs_state_idx.sql);
 * without, the primary key walked backwards does. */
static const char sql_list[] = "SELECT " JOB_COLS " FROM jobs j WHERE j.id < $1"
                               " AND ($3::text IS NULL OR j.kind = $3)"
                               " ORDER BY j.id DESC LIMIT $2";
static const char sql_list_state[] = "SELECT " JOB_COLS " FROM jobs j WHERE j.state = $3"
                                     " AND j.id < $1 AND ($4::text IS NULL OR j.kind = $4)"
                                     " ORDER BY j.id DESC LIMIT $2";

static const char sql_kinds[] =
    "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state";

/* Row r as the job object; detail adds errors and args. */
static void job_json(struct kiln_buf *b, PGresult *res, int r, int detail)
{
	static const struct {
		const char *name;
		int col, raw;
	} cols[] = {
	    {"queue", J_QUEUE, 0},
	    {"kind", J_KIND, 0},
	    {"state", J_STATE, 0},
	    {"priority", J_PRIORITY, 1},
	    {"attempt", J_ATTEMPT, 1},
	    {"max_attempts", J_MAX_ATTEMPTS, 1},
	    {"scheduled_at", J_SCHEDULED, 0},
	    {"attempted_at", J_ATTEMPTED, 0},
	    {"created_at", J_CREATED, 0},
	    {"finalized_at", J_FINALIZED, 0},
	    {"last_error", J_LAST_ERROR, 0},
	    {"request_id", J_REQUEST_ID, 0},
	    {"errors", J_ERRORS, 1},
	    {"args", J_ARGS, 1},
	};
	size_t i, n = KILN_ARRAY_LEN(cols) - (detail ? 0 : 2);

	kiln_buf_printf(b, "{\"id\":%lld", (long long)kiln_pg_int(res, r, J_ID));
	for (i = 0; i < n; i++) {
		kiln_buf_printf(b, ",\"%s\":", cols[i].name);
		if (cols[i].raw)
			kiln_pg_json_raw(b, res, r, cols[i].col);
		else
			kiln_pg_json_str(b, res, r, cols[i].col);
	}
	kiln_buf_addc(b, '}');
}

static void job_list_row(struct kiln_buf *b, PGresult *res, int r)
{
	job_json(b, res, r, 0);
}

/* ---------------------------------------------------------------- reads */

int admin_jobs_stats(struct kiln_req *req)
{
	struct kiln_jobs_counts jc;
	struct admin_actor a;
	char err[256];
	PGresult *res;
	int s, r;

	if (admin_auth(req, &a) < 0)
		return 0;
	if (kiln_jobs_count(kiln_server_db(), 0, 0, &jc, err, sizeof(err)) < 0) {
		kiln_error("job counts failed", "error=%s", err);
		kiln_req_unavailable(req);
		return 0;
	}
	if ((res = admin_sql(req, "admin_jobs_kinds", sql_kinds, 0, NULL)) == NULL)
		return 0;
	kiln_buf_reset(&admin.out);
	kiln_buf_adds(&admin.out, "{\"states\":{");
	for (s = 0; s < KILN_JOB_STATES; s++)
		kiln_buf_printf(&admin.out, "%s\"%s\":%lld", s ? "," : "", kiln_job_state_name(s),
		                (long long)jc.count[s]);
	kiln_buf_adds(&admin.out, "},\"kinds\":[");
	for (r = 0; r < PQntuples(res); r++) {
		kiln_buf_adds(&admin.out, r ? ",{\"kind\":" : "{\"kind\":");
		kiln_pg_json_str(&admin.out, res, r, 0);
		kiln_buf_adds(&admin.out, ",\"state\":");
		kiln_pg_json_str(&admin.out, res, r, 1);
		kiln_buf_printf(&admin.out, ",\"count\":%lld}", (long long)kiln_pg_int(res, r, 2));
	}
	PQclear(res);
	kiln_buf_printf(&admin.out, "],\"oldest_available_seconds\":%.3f}", jc.oldest_available_s);
	return admin_send(req, 200);
}

/* A kind: 1..63 bytes of [a-z0-9_] (sql/002_jobs.sql). */
static int valid_kind(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");

	return n >= 1 && n <= 63 && s[n] == '\0';
}

int admin_jobs_list(struct kiln_req *req)
{
	struct kiln_field_errors errs = {0};
	const struct kiln_query *q;
	struct admin_actor a;
	const char *state, *kind;
	char after_s[24], lim[24], scope[128];
	const char *p[4] = {after_s, lim, NULL, NULL};
	int64_t limit, after = INT64_MAX;
	PGresult *res;

	if (admin_auth(req, &a) < 0 || (q = kiln_req_query(req)) == NULL)
		return 0;
	state = kiln_query_get(q, "state");
	kind = kiln_query_get(q, "kind");
	if (state && kiln_job_state_parse(state) < 0)
		kiln_field_error_add(&errs, "state",
		                     "must be available, scheduled, running, retryable, completed, "
		                     "discarded or cancelled");
	if (kind && !valid_kind(kind))
		kiln_field_error_add(&errs, "kind", "must be 1 to 63 characters of a-z, 0-9 and _");
	snprintf(scope, sizeof(scope), "jobs|%s|%s", state ? state : "", kind ? kind : "");
	if (admin_page_params(req, q, scope, &limit, &after, &errs) < 0)
		return 0;
	snprintf(after_s, sizeof(after_s), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	if (state) {
		p[2] = state, p[3] = kind;
		res = admin_sql(req, "admin_jobs_list_state", sql_list_state, 4, p);
	} else {
		p[2] = kind;
		res = admin_sql(req, "admin_jobs_list", sql_list, 3, p);
	}
	if (res == NULL)
		return 0;
	admin_page_json(res, limit, scope, job_list_row);
	PQclear(res);
	return admin_send(req, 200);
}

int admin_job_get(struct kiln_req *req)
{
	struct admin_actor a;
	const char *p[1];
	PGresult *res;
	int64_t id;

	if (admin_auth(req, &a) < 0 || kiln_req_id_param(req, "id", &id) < 0)
		return 0;
	p[0] = kiln_req_param(req, "id");
	if ((res = admin_sql(req, "admin_job_get", sql_get, 1, p)) == NULL)
		return 0;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return kiln_problem(req, 404, "no such job", NULL);
	}
	kiln_buf_reset(&admin.out);
	job_json(&admin.out, res, 0, 1);
	PQclear(res);
	return admin_send(req, 200);
}

/* ---------------------------------------------------------------- retry, discard */

struct job_move {
	const char *action; /* audit action */
	const char *done;   /* "retried", for the 409 detail */
	unsigned from;      /* states it starts from */
	int (*move)(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
	            size_t errlen);
};

/* Discarding a running job is refused here (409), unlike kilnctl's
 * discard: its executor would go on, and the contract keeps that for an
 * operator at the shell. */
static const struct job_move job_retry = {"job.retry", "retried", KILN_JOBS_RETRY_FROM,
                                          kiln_jobs_retry};
static const struct job_move job_discard = {"job.discard", "discarded",
                                            KILN_JOB_MASK(KILN_JOB_AVAILABLE) |
                                                KILN_JOB_MASK(KILN_JOB_SCHEDULED) |
                                                KILN_JOB_MASK(KILN_JOB_RETRYABLE),
                                            kiln_jobs_discard};

/* The snapshot of what a move changes, from row 0 of res. */
static void job_snapshot(struct kiln_buf *b, PGresult *res)
{
	kiln_buf_adds(b, "{\"state\":");
	kiln_pg_json_str(b, res, 0, J_STATE);
	kiln_buf_printf(b, ",\"attempt\":%lld,\"max_attempts\":%lld,\"scheduled_at\":",
	                (long long)kiln_pg_int(res, 0, J_ATTEMPT),
	                (long long)kiln_pg_int(res, 0, J_MAX_ATTEMPTS));
	kiln_pg_json_str(b, res, 0, J_SCHEDULED);
	kiln_buf_adds(b, ",\"finalized_at\":");
	kiln_pg_json_str(b, res, 0, J_FINALIZED);
	kiln_buf_addc(b, '}');
}

/* The move itself, on the locked row; writes 404/409/503 on refusal.
 * Returns 0, or -1. */
static int job_move_apply(struct kiln_req *req, const struct job_move *m, int64_t id)
{
	char state[KILN_JOB_STATE_MAX], from[96], detail[200], err[256];
	int rc = m->move(kiln_server_db(), id, m->from, state, err, sizeof(err));

	if (rc == 0)
		return 0;
	if (rc == KILN_JOBS_NOT_FOUND) {
		kiln_problem(req, 404, "no such job", NULL);
	} else if (rc == KILN_JOBS_WRONG_STATE) {
		snprintf(detail, sizeof(detail), "the job is %s: only %s jobs can be %s", state,
		         kiln_jobs_states_text(m->from, from, sizeof(from)), m->done);
		kiln_problem(req, 409, detail, NULL);
	} else {
		kiln_error("job move failed", "action=%s error=%s", m->action, err);
		kiln_req_unavailable(req);
	}
	return -1;
}

/* Lock the job, move it, audit, commit; answer the job as it is then. */
static int job_move_tx(struct kiln_req *req, const struct admin_actor *a, const struct job_move *m,
                       int64_t id)
{
	struct kiln_db *db = kiln_server_db();
	const char *p[1] = {kiln_req_param(req, "id")};
	struct kiln_buf before, after;
	PGresult *res;
	int ok = 0;

	if (kiln_req_begin(req, db) < 0)
		return 0;
	if ((res = admin_sql(req, "admin_job_lock_row", sql_lock_row, 1, p)) == NULL) {
		kiln_req_rollback(db);
		return 0;
	}
	kiln_buf_init(&before);
	kiln_buf_init(&after);
	if (PQntuples(res) == 1)
		job_snapshot(&before, res);
	PQclear(res);
	if (job_move_apply(req, m, id) == 0 &&
	    (res = admin_sql(req, "admin_job_get", sql_get, 1, p)) != NULL) {
		job_snapshot(&after, res);
		kiln_buf_reset(&admin.out);
		job_json(&admin.out, res, 0, 1);
		PQclear(res);
		ok = admin_audit(req, a, m->action, "job", p[0], before.data, after.data) == 0;
	}
	kiln_buf_free(&before);
	kiln_buf_free(&after);
	if (!ok) {
		kiln_req_rollback(db);
		return 0;
	}
	if (kiln_req_commit(req, db) < 0)
		return 0;
	return admin_send(req, 200);
}

static int job_move(struct kiln_req *req, const struct job_move *m)
{
	struct admin_actor a;
	int64_t id;

	if (admin_auth(req, &a) < 0 || kiln_req_id_param(req, "id", &id) < 0 ||
	    admin_empty_body(req) < 0)
		return 0;
	return job_move_tx(req, &a, m, id);
}

int admin_job_retry(struct kiln_req *req)
{
	return job_move(req, &job_retry);
}

int admin_job_discard(struct kiln_req *req)
{
	return job_move(req, &job_discard);
}
