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
#include "kiln/page.h"

struct api_ctx {
	struct kiln_jwt_keys keys;
	struct kiln_cursor_key cursor; /* derived from auth.jwt_key */
	struct kiln_cache cache;
	struct kiln_buf out; /* response body scratch, reused across requests */
	int64_t uid;         /* the user api_auth admitted ... */
	int64_t uid_req_ns;  /* ... in the request that started then (kiln_req.start_ns) */
};

/* Read-your-writes: while kiln:ryw:<user id> exists, that user's public
 * reads go to the primary. Set for [database] ryw_window by a successful
 * write (api_after_handler). */
#define API_RYW_KEY "kiln:ryw:"

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
	C_RYW_PRIMARY_READS,
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

/* A read of public data: on a replica (round-robin over [database]
 * replica_url/replica_urls, skipping those resting after a failure) when
 * any is configured, falling back to the primary when none answers
 * (counted). On the primary at once for a reader inside their
 * read-your-writes window, and for every signed-in reader while Redis
 * cannot be asked (counted). Returns as kiln_req_sql. */
PGresult *api_read_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                       const char *const *params);

/* On the primary (writes, and reads of a user's own data). */
PGresult *api_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                  const char *const *params);

/* The paging parameters of a keyset list (kiln_page_params with the API's
 * cursor key): "limit" and "cursor" once the filters were read (their
 * errors in errs). Returns 0, or -1 after writing 422. */
int api_page_params(struct kiln_req *req, const struct kiln_query *q, const char *scope,
                    int64_t *limit, int64_t *after, struct kiln_field_errors *errs);

/* A keyset page into api.out (kiln_page_json with the API's cursor key). */
typedef kiln_page_row_fn api_row_fn;
void api_page_json(PGresult *res, int64_t limit, const char *scope, api_row_fn row);

/* Send api.out as a 200/201/... JSON response. Returns 0. */
int api_send(struct kiln_req *req, int status);

/* struct kiln_app.after_handler: after a successful (2xx) write by a
 * signed-in user, set kiln:ryw:<uid> for ryw_window, before the response
 * leaves, so the user's next public read sees the write. */
void api_after_handler(struct kiln_req *req);

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
