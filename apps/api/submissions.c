/* POST /api/v1/exercises/{id}/submissions, GET /api/v1/submissions/{id},
 * GET /api/v1/me/submissions. Submissions are a user's own data: every read
 * goes to the primary, so a client sees its submission right after the 202. */
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

#include "kiln/answer.h"
#include "kiln/db.h"
#include "kiln/jobs.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "api.h"
#include "validate.h"

#define SUB_SUBMITTED API_TS("submitted_at")
#define SUB_TIMES     SUB_SUBMITTED ", " API_TS("graded_at")
#define SUB_COLS      "id, exercise_id, user_id, answer, status, score, feedback, " SUB_TIMES

static const char sql_published[] = "SELECT 1 FROM exercises WHERE id = $1 AND published";

/* With a key already used by this user, ON CONFLICT waits for the
 * transaction that used it and then returns no row: concurrent duplicates
 * end as one row, and the loser reads the winner's below. */
static const char sql_insert[] =
    "INSERT INTO submissions (user_id, exercise_id, answer, idempotency_key, request_hash, "
    "request_id) VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6) "
    "ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING id, " SUB_SUBMITTED;

static const char sql_by_key[] =
    "SELECT id, exercise_id, " SUB_SUBMITTED ", coalesce(request_hash = decode($3, 'hex'), false) "
    "FROM submissions WHERE user_id = $1 AND idempotency_key = $2";

static const char sql_get[] = "SELECT " SUB_COLS " FROM submissions WHERE id = $1";

/* Keyset on id: $2 is the last id of the previous page (INT64_MAX first). */
static const char sql_mine[] = "SELECT " SUB_COLS " FROM submissions "
                               "WHERE user_id = $1 AND id < $2 "
                               "AND ($3::bigint IS NULL OR exercise_id = $3) "
                               "ORDER BY id DESC LIMIT $4";

/* What a request asked for, to tell a replay from another request under the
 * same key: SHA-256 over (exercise id in decimal, NUL, answer) as 64 hex
 * digits into hex. Returns 0, or -1 when OpenSSL fails. */
static int sub_request_hash(int64_t exercise_id, const char *answer, char hex[65])
{
	unsigned char msg[24 + KILN_ANSWER_MAX], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	size_t alen = strlen(answer);
	int n = snprintf((char *)msg, 24, "%lld", (long long)exercise_id);

	if (n < 0 || n >= 24 || alen > KILN_ANSWER_MAX)
		return -1;
	memcpy(msg + n + 1, answer, alen); /* msg[n] is snprintf's NUL */
	if (!EVP_Digest(msg, (size_t)n + 1 + alen, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The 202 of a new submission, and of its replays (same body, same
 * Location; replayed adds Idempotent-Replayed). Returns 0. */
static int sub_accepted(struct kiln_req *req, const char *id, int64_t exercise_id,
                        const char *submitted_at, int replayed)
{
	char loc[64];

	snprintf(loc, sizeof(loc), "/api/v1/submissions/%s", id);
	kiln_resp_header(req, "Location", loc);
	kiln_resp_header(req, "Cache-Control", "no-store");
	if (replayed)
		kiln_resp_header(req, "Idempotent-Replayed", "true");
	kiln_buf_reset(&api.out);
	kiln_buf_printf(&api.out,
	                "{\"id\":%s,\"exercise_id\":%lld,\"status\":\"queued\","
	                "\"submitted_at\":\"%s\"}",
	                id, (long long)exercise_id, submitted_at);
	return api_send(req, 202);
}

/* The key was used before: inside the open transaction, which wrote
 * nothing, read the row that used it and answer as the first time (same
 * request) or 422 (another request). Ends the transaction. Returns 0. */
static int sub_replay(struct kiln_req *req, const char *uid, const char *key, const char *hash)
{
	const char *p[3] = {uid, key, hash};
	struct kiln_field_errors errs = {0};
	PGresult *res;

	res = api_sql(req, "api_sub_by_key", sql_by_key, 3, p);
	kiln_req_rollback(kiln_server_db());
	if (res == NULL)
		return 0;
	if (PQntuples(res) != 1) {
		/* Gone between the conflict and this read (archived or
		 * deleted): a retry inserts afresh. */
		PQclear(res);
		kiln_resp_header(req, "Retry-After", "1");
		return kiln_problem(req, 503, "a concurrent change interfered; try again", NULL);
	}
	if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
		api_count(C_IDEMPOTENT_REPLAYS);
		sub_accepted(req, PQgetvalue(res, 0, 0), kiln_pg_int(res, 0, 1),
		             PQgetvalue(res, 0, 2), 1);
	} else {
		kiln_field_error_add(&errs, "Idempotency-Key",
		                     "was already used with a different request");
		kiln_problem(req, 422,
		             "the Idempotency-Key was already used with a different request",
		             &errs);
	}
	PQclear(res);
	return 0;
}

/* Enqueue the grading job of submission id inside the open transaction.
 * Returns 0 (also when the job already exists), or -1 after writing 503. */
static int sub_enqueue(struct kiln_req *req, int64_t id)
{
	char args[64], unique[64], err[256];
	struct kiln_job_opts opts = {0};

	snprintf(args, sizeof(args), "{\"submission_id\":%lld}", (long long)id);
	snprintf(unique, sizeof(unique), "grade_submission:%lld", (long long)id);
	opts.unique_key = unique;
	opts.request_id = req->request_id;
	if (kiln_jobs_enqueue(kiln_server_db(), "grade_submission", args, &opts, err,
	                      sizeof(err)) >= 0)
		return 0;
	kiln_error("grading job not enqueued", "submission_id=%lld error=%s", (long long)id, err);
	kiln_req_unavailable(req);
	return -1;
}

/* One transaction: the exercise is published, the row and its grading job
 * are written together, or a replay of the key is answered. Returns 0. */
static int sub_store(struct kiln_req *req, int64_t user_id, int64_t exercise_id, const char *answer,
                     const char *key, const char *hash)
{
	struct kiln_db *db = kiln_server_db();
	char uid[24], eid[24], id[24], submitted[40];
	const char *pe[1] = {eid}, *pi[6] = {uid, eid, answer, key, hash, req->request_id};
	PGresult *res;
	int64_t sid;

	snprintf(uid, sizeof(uid), "%lld", (long long)user_id);
	snprintf(eid, sizeof(eid), "%lld", (long long)exercise_id);
	if (kiln_req_begin(req, db) < 0)
		return 0;
	if ((res = api_sql(req, "api_sub_published", sql_published, 1, pe)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		kiln_req_rollback(db);
		return kiln_problem(req, 404, "no such published exercise", NULL);
	}
	PQclear(res);
	if ((res = api_sql(req, "api_sub_insert", sql_insert, 6, pi)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return sub_replay(req, uid, key, hash);
	}
	sid = kiln_pg_int(res, 0, 0);
	snprintf(id, sizeof(id), "%lld", (long long)sid);
	kiln_strlcpy(submitted, PQgetvalue(res, 0, 1), sizeof(submitted));
	PQclear(res);
	if (sub_enqueue(req, sid) < 0)
		goto fail;
	if (kiln_req_commit(req, db) < 0)
		return 0;
	api_count(C_SUBMISSIONS);
	kiln_info("submission queued", "submission_id=%lld exercise_id=%lld user_id=%lld",
	          (long long)sid, (long long)exercise_id, (long long)user_id);
	return sub_accepted(req, id, exercise_id, submitted, 0);
fail:
	kiln_req_rollback(db);
	return 0;
}

int api_submission_create(struct kiln_req *req)
{
	static const char *const fields[] = {"answer", NULL};
	struct kiln_jwt_claims c;
	struct kiln_input in;
	const char *answer = NULL, *key, *why;
	char hash[65];
	int64_t eid;

	if (api_auth(req, &c) < 0 || api_writable(req) < 0 ||
	    kiln_req_id_param(req, "id", &eid) < 0 || kiln_input_begin(req, &in, fields) < 0)
		return 0;
	kiln_json_string(in.obj, "answer", 1, 1, KILN_ANSWER_MAX, &answer, &in.errs);
	key = kiln_req_header(req, "Idempotency-Key");
	if (key && (why = api_validate_idempotency_key(key)) != NULL)
		kiln_field_error_add(&in.errs, "Idempotency-Key", why);
	if (kiln_input_check(req, &in) < 0)
		goto out;
	if (sub_request_hash(eid, answer, hash) < 0) {
		kiln_error("request hash failed", NULL);
		kiln_problem(req, 500, NULL, NULL);
		goto out;
	}
	sub_store(req, c.sub, eid, answer, key, hash);
out:
	kiln_input_free(&in);
	return 0;
}

/* Row r of a SUB_COLS result as a submission object. */
static void sub_json(struct kiln_buf *b, PGresult *res, int r)
{
	kiln_buf_printf(b, "{\"id\":%lld,\"exercise_id\":%lld,\"user_id\":%lld,\"answer\":",
	                (long long)kiln_pg_int(res, r, 0), (long long)kiln_pg_int(res, r, 1),
	                (long long)kiln_pg_int(res, r, 2));
	kiln_pg_json_str(b, res, r, 3);
	kiln_buf_adds(b, ",\"status\":");
	kiln_pg_json_str(b, res, r, 4);
	if (PQgetisnull(res, r, 5))
		kiln_buf_adds(b, ",\"score\":null");
	else
		kiln_buf_printf(b, ",\"score\":%lld", (long long)kiln_pg_int(res, r, 5));
	kiln_buf_adds(b, ",\"feedback\":");
	kiln_pg_json_str(b, res, r, 6);
	kiln_buf_adds(b, ",\"submitted_at\":");
	kiln_pg_json_str(b, res, r, 7);
	kiln_buf_adds(b, ",\"graded_at\":");
	kiln_pg_json_str(b, res, r, 8);
	kiln_buf_addc(b, '}');
}

int api_submission_get(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	const char *p[1] = {kiln_req_param(req, "id")};
	PGresult *res;
	int64_t id;

	if (api_auth(req, &c) < 0 || kiln_req_id_param(req, "id", &id) < 0)
		return 0;
	if ((res = api_sql(req, "api_sub_get", sql_get, 1, p)) == NULL)
		return 0;
	/* Someone else's submission is answered as if it did not exist. */
	if (PQntuples(res) != 1 ||
	    (kiln_pg_int(res, 0, 2) != c.sub && strcmp(c.role, "admin") != 0)) {
		PQclear(res);
		return kiln_problem(req, 404, "no such submission", NULL);
	}
	kiln_buf_reset(&api.out);
	sub_json(&api.out, res, 0);
	PQclear(res);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return api_send(req, 200);
}

/* The query of GET /me/submissions: exercise_id into eid ("" when absent),
 * limit, and the cursor's last id (INT64_MAX when none) into after, with
 * the cursor scope bound to the user and the filter. Returns 0, or -1 after
 * writing 400/422. */
static int sub_mine_query(struct kiln_req *req, int64_t user_id, char eid[24], int64_t *limit,
                          int64_t *after, char *scope, size_t scopelen)
{
	const struct kiln_query *q = kiln_req_query(req);
	struct kiln_field_errors errs = {0};
	const char *v;
	int64_t e = 0;

	if (q == NULL)
		return -1;
	eid[0] = '\0';
	v = kiln_query_get(q, "exercise_id");
	if (v && kiln_parse_int(v, 1, INT64_MAX, &e) < 0)
		kiln_field_error_add(&errs, "exercise_id", "must be a positive integer");
	else if (v)
		snprintf(eid, 24, "%lld", (long long)e);
	snprintf(scope, scopelen, "sub|%lld|%s", (long long)user_id, eid[0] ? eid : "-");
	*after = INT64_MAX;
	return api_page_params(req, q, scope, limit, after, &errs);
}

int api_my_submissions(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24], eid[24], after_s[24], lim[24], scope[80];
	const char *p[4] = {uid, after_s, NULL, lim};
	int64_t limit, after;
	PGresult *res;

	if (api_auth(req, &c) < 0 ||
	    sub_mine_query(req, c.sub, eid, &limit, &after, scope, sizeof(scope)) < 0)
		return 0;
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	snprintf(after_s, sizeof(after_s), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	p[2] = eid[0] ? eid : NULL;
	if ((res = api_sql(req, "api_sub_mine", sql_mine, 4, p)) == NULL)
		return 0;
	api_page_json(res, limit, scope, sub_json);
	PQclear(res);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return api_send(req, 200);
}
