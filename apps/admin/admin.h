/* kiln-admin internals: the per-worker context and the helpers the handlers
 * share (the admin gate, query and body reading, the audit row, output).
 * Handlers: users.c, jobs.c, ops.c (cache, maintenance), audit.c, stats.c.
 * The contract is docs/admin.md. */
#ifndef KILN_ADMIN_H
#define KILN_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "kiln/buf.h"
#include "kiln/cache.h"
#include "kiln/cursor.h"
#include "kiln/handler.h"
#include "kiln/http.h"
#include "kiln/jwt.h"
#include "kiln/page.h"

struct admin_ctx {
	struct kiln_jwt_keys keys;
	struct kiln_cursor_key cursor; /* derived from auth.jwt_key, as kiln-api's */
	struct kiln_cache cache;       /* for the flush */
	struct kiln_buf out;           /* response body scratch, reused across requests */
};

extern struct admin_ctx admin;

/* Scoreboard counters (kiln_<name>_total in /metrics), in the order of
 * admin_counter_names. */
enum admin_counter {
	C_ACTIONS,   /* changes made (one audit row each) */
	C_FORBIDDEN, /* valid tokens of non-admins refused */
};
extern const char *const admin_counter_names[];
void admin_count(enum admin_counter c);

/* The signed-in administrator. */
struct admin_actor {
	struct kiln_jwt_claims claims;
};

/* Timestamp column as RFC 3339 UTC text: ADMIN_TS("created_at"). */
#define ADMIN_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The gate of every route: Cache-Control: no-store, then a valid access
 * token (kiln_authn_require: 401, or 503) of role admin (403). Returns 0
 * with *a set, or -1 after writing the response. */
int admin_auth(struct kiln_req *req, struct admin_actor *a);

/* The body of a POST action: none, or a JSON object without members (the
 * contract allows "{}"). Returns 0, or -1 after writing 400/413/415/422. */
int admin_empty_body(struct kiln_req *req);

/* A keyset page of res into admin.out (kiln_page_json with the cursor key). */
void admin_page_json(PGresult *res, int64_t limit, const char *scope, kiln_page_row_fn row);

/* The paging parameters (kiln_page_params with the cursor key). Returns 0,
 * or -1 after writing 422. */
int admin_page_params(struct kiln_req *req, const struct kiln_query *q, const char *scope,
                      int64_t *limit, int64_t *after, struct kiln_field_errors *errs);

/* A statement on the primary (kiln_req_sql). Returns the result, or NULL
 * after writing 503/500. */
PGresult *admin_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                    const char *const *params);

/* Insert the audit row of a change, on the primary inside the caller's open
 * transaction: actor a (id; email read from users), action ("user.lock"),
 * target type and id ("" for none), before/after JSON texts (NULL = SQL
 * null), REMOTE_ADDR and the request id. Counts C_ACTIONS. Returns 0, or
 * -1 after writing 503/500 (the caller rolls back). */
int admin_audit(struct kiln_req *req, const struct admin_actor *a, const char *action,
                const char *target_type, const char *target_id, const char *before,
                const char *after);

/* Send admin.out as a JSON response with status. Returns 0. */
int admin_send(struct kiln_req *req, int status);

/* struct kiln_app.worker_init: keys, cursor key, cache. Returns 0 or -1. */
int admin_worker_init(const struct kiln_config *cfg);

/* Route handlers. */
int admin_users_list(struct kiln_req *req);
int admin_user_get(struct kiln_req *req);
int admin_user_lock(struct kiln_req *req);
int admin_user_unlock(struct kiln_req *req);
int admin_user_role(struct kiln_req *req);
int admin_user_revoke_sessions(struct kiln_req *req);
int admin_jobs_stats(struct kiln_req *req);
int admin_jobs_list(struct kiln_req *req);
int admin_job_get(struct kiln_req *req);
int admin_job_retry(struct kiln_req *req);
int admin_job_discard(struct kiln_req *req);
int admin_cache_flush(struct kiln_req *req);
int admin_maintenance_get(struct kiln_req *req);
int admin_maintenance_put(struct kiln_req *req);
int admin_audit_list(struct kiln_req *req);
int admin_stats(struct kiln_req *req);

#endif
