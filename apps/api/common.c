/* Helpers shared by the kiln-api handlers. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kiln/authn.h"
#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/mc.h"
#include "kiln/page.h"
#include "kiln/redis.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "api.h"

struct api_ctx api;

const char *const api_counter_names[] = {
    "api_cache_hits",        "api_cache_misses",       "api_cache_errors",
    "api_submissions",       "api_idempotent_replays", "api_maintenance_rejections",
    "api_replica_fallbacks", "api_ryw_primary_reads",  NULL};

void api_count(enum api_counter c)
{
	kiln_stats_count(kiln_server_slot(), (int)c, 1);
}

int api_worker_init(const struct kiln_config *cfg)
{
	char err[256];

	if (kiln_jwt_keys_from_config(&api.keys, &cfg->auth, err, sizeof(err)) < 0) {
		kiln_error("bad token keys", "error=%s", err);
		return -1;
	}
	if (kiln_cursor_key_init(&api.cursor, cfg->auth.jwt_key, strlen(cfg->auth.jwt_key)) < 0)
		return -1;
	kiln_cache_init(&api.cache, kiln_server_mc(), kiln_server_redis(), cfg->api.cache_ttl_ms);
	return 0;
}

int api_auth(struct kiln_req *req, struct kiln_jwt_claims *c)
{
	if (kiln_authn_require(req, &api.keys, c) != 0)
		return -1;
	api.uid = c->sub;
	api.uid_req_ns = req->start_ns;
	return 0;
}

/* The user behind req for read routing: the one api_auth admitted in this
 * request, else the subject of a well-signed, unexpired Bearer token. The
 * session is not checked here: this only picks a database, it grants no
 * access. Returns the user id, or 0 for an anonymous request. */
static int64_t api_reader(struct kiln_req *req)
{
	const char *h = kiln_req_header(req, "Authorization");
	struct kiln_jwt_claims c;

	if (api.uid_req_ns == req->start_ns && api.uid > 0)
		return api.uid;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	if (kiln_jwt_verify(&api.keys, h, strlen(h), (int64_t)time(NULL), &c) != KILN_JWT_OK)
		return 0;
	return c.sub;
}

/* Must req's public reads go to the primary to show the reader's own
 * recent write? Yes while kiln:ryw:<uid> exists, and for every signed-in
 * reader while Redis cannot be asked. Returns 1 or 0. */
static int api_read_own_writes(struct kiln_req *req)
{
	int64_t uid = api_reader(req);
	redisReply *r;
	char err[160];
	int primary;

	if (uid <= 0 || kiln_server_config()->database.ryw_window_ms <= 0)
		return 0;
	r = kiln_redis_command(kiln_server_redis(), err, sizeof(err), "EXISTS " API_RYW_KEY "%lld",
	                       (long long)uid);
	primary = r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer > 0;
	freeReplyObject(r);
	if (primary)
		api_count(C_RYW_PRIMARY_READS);
	return primary;
}

void api_after_handler(struct kiln_req *req)
{
	int64_t window = kiln_server_config()->database.ryw_window_ms;
	const char *m = req->method;
	redisReply *r;
	char err[160];

	if (api.uid_req_ns != req->start_ns || api.uid <= 0 || window <= 0 ||
	    strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
	    req->resp.status < 200 || req->resp.status > 299)
		return;
	r = kiln_redis_command(kiln_server_redis(), err, sizeof(err),
	                       "SET " API_RYW_KEY "%lld 1 PX %lld", (long long)api.uid,
	                       (long long)window);
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		kiln_warn("read-your-writes mark not set", "user_id=%lld error=%s",
		          (long long)api.uid, r ? r->str : err);
	freeReplyObject(r);
}

int api_auth_optional(struct kiln_req *req, struct kiln_jwt_claims *c)
{
	if (kiln_req_header(req, "Authorization") == NULL)
		return 0;
	return api_auth(req, c) == 0 ? 1 : -1;
}

int api_is_author(const struct kiln_jwt_claims *c)
{
	return strcmp(c->role, "author") == 0 || strcmp(c->role, "admin") == 0;
}

int api_writable(struct kiln_req *req)
{
	char err[128], detail[256];
	redisReply *r;

	r = kiln_redis_command(kiln_server_redis(), err, sizeof(err), "GET %s",
	                       KILN_MAINTENANCE_KEY);
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		if (r == NULL)
			kiln_warn("maintenance flag unreadable; writes allowed", "error=%s", err);
		freeReplyObject(r);
		return 0;
	}
	snprintf(detail, sizeof(detail), "%.*s", r->len > 200 ? 200 : (int)r->len,
	         r->len ? r->str : "maintenance in progress");
	freeReplyObject(r);
	api_count(C_MAINTENANCE_REJECTIONS);
	kiln_resp_header(req, "Retry-After", "60");
	kiln_problem_typed(req, 503, "about:blank", "Service Unavailable", detail, NULL);
	return -1;
}

PGresult *api_read_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                       const char *const *params)
{
	struct kiln_db_set *replicas = kiln_server_db_replicas();
	char err[256];
	int failed;
	PGresult *res;

	if (replicas == NULL || api_read_own_writes(req))
		return kiln_req_sql(req, kiln_server_db(), name, sql, n, params);
	if (kiln_db_set_ready(replicas) > 0) {
		res =
		    kiln_db_set_query(replicas, name, sql, n, params, 0, &failed, err, sizeof(err));
		if (res)
			return res;
		kiln_warn("replica read failed; using the primary", "statement=%s error=%s", name,
		          err);
	}
	api_count(C_REPLICA_FALLBACKS);
	return kiln_req_sql(req, kiln_server_db(), name, sql, n, params);
}

PGresult *api_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                  const char *const *params)
{
	return kiln_req_sql(req, kiln_server_db(), name, sql, n, params);
}

int api_page_params(struct kiln_req *req, const struct kiln_query *q, const char *scope,
                    int64_t *limit, int64_t *after, struct kiln_field_errors *errs)
{
	return kiln_page_params(req, &api.cursor, q, scope, limit, after, errs);
}

void api_page_json(PGresult *res, int64_t limit, const char *scope, api_row_fn row)
{
	kiln_page_json(&api.out, &api.cursor, res, limit, scope, row);
}

int api_send(struct kiln_req *req, int status)
{
	kiln_resp_json_text(req, status, api.out.data ? api.out.data : "{}", api.out.len);
	return 0;
}
