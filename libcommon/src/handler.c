/* handler: JSON bodies, statements and transactions for route handlers. */
#include <string.h>
#include <strings.h>

#include "kiln/db.h"
#include "kiln/handler.h"
#include "kiln/log.h"
#include "kiln/util.h"

static int is_json(const char *ct)
{
	size_t n = strlen("application/json");

	return strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int kiln_input_begin(struct kiln_req *req, struct kiln_input *in, const char *const *allowed)
{
	char err[128];
	int rc;

	memset(in, 0, sizeof(*in));
	if (!is_json(req->content_type)) {
		kiln_problem(req, 415, "the body must be application/json", NULL);
		return -1;
	}
	rc = kiln_req_read_body(req);
	if (rc != 0) {
		kiln_problem(req, rc, rc == 413 ? "the request body is too large" : NULL, NULL);
		return -1;
	}
	in->obj = kiln_json_parse(req->body.data, req->body.len, 8, err, sizeof(err));
	if (in->obj == NULL || !json_object_is_type(in->obj, json_type_object)) {
		kiln_problem(req, 400, in->obj ? "the body must be a JSON object" : err, NULL);
		kiln_input_free(in);
		return -1;
	}
	kiln_json_only(in->obj, allowed, &in->errs);
	return 0;
}

int kiln_input_check(struct kiln_req *req, struct kiln_input *in)
{
	if (in->errs.n == 0)
		return 0;
	kiln_problem(req, 422, "the request body has invalid fields", &in->errs);
	return -1;
}

void kiln_input_free(struct kiln_input *in)
{
	if (in->obj)
		json_object_put(in->obj);
	in->obj = NULL;
}

void kiln_req_unavailable(struct kiln_req *req)
{
	kiln_resp_header(req, "Retry-After", "1");
	kiln_problem(req, 503, "the database is unavailable; try again shortly", NULL);
}

PGresult *kiln_req_sql(struct kiln_req *req, struct kiln_db *db, const char *name, const char *sql,
                       int n, const char *const *params)
{
	char err[256];
	int failed;
	PGresult *res = kiln_db_query(db, name, sql, n, params, 0, &failed, err, sizeof(err));

	if (res)
		return res;
	kiln_error("statement failed", "statement=%s error=%s", name ? name : "-", err);
	if (failed == KILN_DB_UNAVAILABLE)
		kiln_req_unavailable(req);
	else
		kiln_problem(req, 500, NULL, NULL);
	return NULL;
}

static int simple(struct kiln_req *req, struct kiln_db *db, const char *sql)
{
	char err[256];
	PGresult *res = kiln_db_query(db, NULL, sql, 0, NULL, 0, NULL, err, sizeof(err));

	if (res == NULL && req) {
		kiln_error("transaction control failed", "sql=%s error=%s", sql, err);
		kiln_req_unavailable(req);
	}
	PQclear(res);
	return res ? 0 : -1;
}

int kiln_req_begin(struct kiln_req *req, struct kiln_db *db)
{
	return simple(req, db, "BEGIN");
}

int kiln_req_commit(struct kiln_req *req, struct kiln_db *db)
{
	if (simple(req, db, "COMMIT") == 0)
		return 0;
	kiln_req_rollback(db);
	return -1;
}

void kiln_req_rollback(struct kiln_db *db)
{
	simple(NULL, db, "ROLLBACK");
}

/* ---------------------------------------------------------------- parameters, columns */

int kiln_req_id_param(struct kiln_req *req, const char *name, int64_t *id)
{
	const char *v = kiln_req_param(req, name);

	if (v && kiln_parse_int(v, 1, INT64_MAX, id) == 0)
		return 0;
	kiln_problem(req, 404, "no resource at this path", NULL);
	return -1;
}

const struct kiln_query *kiln_req_query(struct kiln_req *req)
{
	static struct kiln_query q;

	if (kiln_query_parse(&q, req->query) == 0)
		return &q;
	kiln_problem(req, 400, "the query string is malformed or too long", NULL);
	return NULL;
}

int64_t kiln_pg_int(PGresult *res, int r, int c)
{
	int64_t v = 0;

	if (!PQgetisnull(res, r, c))
		kiln_parse_int(PQgetvalue(res, r, c), INT64_MIN, INT64_MAX, &v);
	return v;
}

void kiln_pg_json_str(struct kiln_buf *b, PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c)) {
		kiln_buf_adds(b, "null");
		return;
	}
	kiln_buf_addc(b, '"');
	kiln_buf_add_json_str(b, PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
	kiln_buf_addc(b, '"');
}

void kiln_pg_json_raw(struct kiln_buf *b, PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		kiln_buf_adds(b, "null");
	else
		kiln_buf_add(b, PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
}

void kiln_pg_json_bool(struct kiln_buf *b, PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		kiln_buf_adds(b, "null");
	else
		kiln_buf_adds(b, PQgetvalue(res, r, c)[0] == 't' ? "true" : "false");
}
