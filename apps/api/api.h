/* kiln-api internals: the per-worker context and the helpers the handlers
 * share (authentication, read routing to the replica, maintenance mode,
 * pagination, output). Handlers: exercises.c, submissions.c, me.c. */
#ifndef KILN_API_H
#define KILN_API_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "kiln/buf.h"
#include "kiln/config.h"
#include "kiln/cache.h"
#include "kiln/cursor.h"
#include "kiln/handler.h"
#include "kiln/http.h"
#include "kiln/jwt.h"

#define API_LIMIT_DEFAULT 20
#define API_LIMIT_MAX     100

struct api_ctx {
	struct kiln_jwt_keys keys;
	struct kiln_cursor_key cursor; /* derived from auth.jwt_key */
	struct kiln_cache cache;
	struct kiln_buf out; /* response body scratch, reused across requests */
};

extern struct api_ctx api;

/* Scoreboard counters (kiln_<name>_total in /metrics), in the order of
 * api_counter_names. */
enum api_counter {
	C_CACHE_HITS,
	C_CACHE_MISSES,
	C_CACHE_ERRORS,
	C_SUBMISSIONS,
	C_IDEMPOTENT_REPLAYS,
	C_MAINTENANCE_REJECTIONS,
	C_REPLICA_FALLBACKS,
};
extern const char *const api_counter_names[];
void api_count(enum api_counter c);

/* Timestamp column as RFC 3339 UTC text with microseconds trimmed:
 * TS("created_at") in a SELECT list. */
#define API_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Require a valid access token (kiln_authn_require). Returns 0 with *c set,
 * or -1 after writing 401/503. */
int api_auth(struct kiln_req *req, struct kiln_jwt_claims *c);

/* Optional authentication for public reads: 0 when no Authorization header
 * was sent, 1 with *c set when a valid token was, -1 after writing 401/503
 * for an invalid one. */
int api_auth_optional(struct kiln_req *req, struct kiln_jwt_claims *c);

/* Is role allowed to author exercises (author, admin)? */
int api_is_author(const struct kiln_jwt_claims *c);

/* Before any write: 503 + Retry-After + problem+json while maintenance mode
 * is on (KILN_MAINTENANCE_KEY in Redis). When Redis cannot be asked, writes
 * go on (the flag is an operator's convenience, not a safety interlock).
 * Returns 0 to go on, or -1 after writing the response. */
int api_writable(struct kiln_req *req);

/* A read of public data: on the replica when one is configured, falling
 * back to the primary when the replica is unavailable (counted). Otherwise
 * as kiln_req_sql on the primary. */
PGresult *api_read_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                       const char *const *params);

/* On the primary (writes, and reads of a user's own data). */
PGresult *api_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                  const char *const *params);

/* The {id} route parameter as a positive integer. Returns 0, or -1 after
 * writing 404 (not a valid id: no such resource). */
int api_id_param(struct kiln_req *req, const char *name, int64_t *id);

/* Parsed query string of req (kept until the next request). Returns the
 * query, or NULL after writing 400. */
const struct kiln_query *api_query(struct kiln_req *req);

/* The paging parameters of a keyset list, once its filters were read (their
 * errors in errs, scope built from them): "limit" 1..API_LIMIT_MAX (default
 * API_LIMIT_DEFAULT) and "cursor", whose key replaces *after (left as is
 * without a cursor; not read when the filters had errors, as the scope is
 * then meaningless). Returns 0, or -1 after writing 422 with every field
 * error (e.g. "cursor": "is invalid or belongs to another query"). */
int api_page_params(struct kiln_req *req, const struct kiln_query *q, const char *scope,
                    int64_t *limit, int64_t *after, struct kiln_field_errors *errs);

/* Append ,"next_cursor":"..." (or null when last is 0) to b. */
void api_next_cursor(struct kiln_buf *b, const char *scope, const int64_t *keys, int n, int last);

/* A keyset page into api.out: {"items":[row(each row)...],"next_cursor":...}
 * from res queried with LIMIT limit + 1 (at most limit rows shown; one more
 * means a next page), the cursor keyed on column 0 (the id) of the last row
 * shown. */
typedef void (*api_row_fn)(struct kiln_buf *b, PGresult *res, int r);
void api_page_json(PGresult *res, int64_t limit, const char *scope, api_row_fn row);

/* Column c of row r as int64 (0 when NULL or malformed). */
int64_t api_int(PGresult *res, int r, int c);

/* Append a JSON string value (with quotes) of column c, or null. */
void api_json_col(struct kiln_buf *b, PGresult *res, int r, int c);

/* Send api.out as a 200/201/... JSON response. Returns 0. */
int api_send(struct kiln_req *req, int status);

/* struct kiln_app.worker_init: keys, cursor key, cache. Returns 0 or -1. */
int api_worker_init(const struct kiln_config *cfg);

/* Route handlers. */
int api_exercises_list(struct kiln_req *req);
int api_exercise_get(struct kiln_req *req);
int api_exercise_create(struct kiln_req *req);
int api_exercise_update(struct kiln_req *req);
int api_exercise_delete(struct kiln_req *req);
int api_submission_create(struct kiln_req *req);
int api_submission_get(struct kiln_req *req);
int api_my_submissions(struct kiln_req *req);
int api_my_progress(struct kiln_req *req);
int api_leaderboard(struct kiln_req *req);
int api_my_notifications(struct kiln_req *req);
int api_notification_read(struct kiln_req *req);

#endif
