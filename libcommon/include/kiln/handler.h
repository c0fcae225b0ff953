/* handler: what every route handler that takes a JSON body or talks to
 * PostgreSQL needs, with the error response written for it: a JSON object
 * body with a closed set of members, statements and transactions that
 * answer 503 when PostgreSQL is unavailable. */
#ifndef KILN_HANDLER_H
#define KILN_HANDLER_H

#include <json-c/json.h>
#include <libpq-fe.h>

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

#endif
