/* handler: what every route handler that takes a JSON body or talks to
 * PostgreSQL needs, with the error response written for it: a JSON object
 * body with a closed set of members, statements and transactions that
 * answer 503 when PostgreSQL is unavailable. */
#ifndef KILN_HANDLER_H
#define KILN_HANDLER_H

#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "kiln/buf.h"
#include "kiln/http.h"
#include "kiln/json.h"

struct kiln_db;

/* A JSON object body with a closed set of members. */
struct kiln_input {
	json_object *obj;
	struct kiln_field_errors errs;
};

/* Read and parse the body: 415 unless application/json, 413, 400 for bad
 * JSON or a non-object; members not in allowed (NULL-terminated) are
 * recorded as field errors. Returns 0, or -1 after writing the error
 * response. */
int kiln_input_begin(struct kiln_req *req, struct kiln_input *in, const char *const *allowed);

/* After the getters: 422 when any field error was recorded. Returns 0, or
 * -1 after writing the response. Frees nothing. */
int kiln_input_check(struct kiln_req *req, struct kiln_input *in);
void kiln_input_free(struct kiln_input *in);

/* 503 with Retry-After: 1, "the database is unavailable; try again shortly". */
void kiln_req_unavailable(struct kiln_req *req);

/* Run a prepared statement on db. Returns the result (PQclear it) when it
 * succeeded; otherwise logs, writes 503 (PostgreSQL unavailable) or 500
 * (statement refused) and returns NULL. */
PGresult *kiln_req_sql(struct kiln_req *req, struct kiln_db *db, const char *name, const char *sql,
                       int n, const char *const *params);

/* BEGIN / COMMIT / ROLLBACK on db. begin and commit return 0, or -1 after
 * writing 503 (a failed COMMIT is rolled back); rollback is best effort. */
int kiln_req_begin(struct kiln_req *req, struct kiln_db *db);
int kiln_req_commit(struct kiln_req *req, struct kiln_db *db);
void kiln_req_rollback(struct kiln_db *db);

/* The route parameter name as a positive integer id. Returns 0, or -1
 * after writing 404 (not a valid id: no such resource). */
int kiln_req_id_param(struct kiln_req *req, const char *name, int64_t *id);

/* The parsed query string of req (kept until the next call). Returns it, or
 * NULL after writing 400. */
const struct kiln_query *kiln_req_query(struct kiln_req *req);

/* Column c of row r as int64 (0 when NULL or malformed). */
int64_t kiln_pg_int(PGresult *res, int r, int c);

/* Append column c of row r to b as a JSON string / as it is (a number or
 * JSON text) / 't','f' as true, false — each null when the column is NULL. */
void kiln_pg_json_str(struct kiln_buf *b, PGresult *res, int r, int c);
void kiln_pg_json_raw(struct kiln_buf *b, PGresult *res, int r, int c);
void kiln_pg_json_bool(struct kiln_buf *b, PGresult *res, int r, int c);

#endif
