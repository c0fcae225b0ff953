/* Helpers shared by the kiln-admin handlers. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "kiln/authn.h"
#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "admin.h"

struct admin_ctx admin;

const char *const admin_counter_names[] = {"admin_actions", "admin_forbidden", NULL};

void admin_count(enum admin_counter c)
{
	struct kiln_stats_slot *s = kiln_server_slot();

	if (s)
		kiln_stats_count(s, (int)c, 1);
}

int admin_worker_init(const struct kiln_config *cfg)
{
	char err[256];

	if (kiln_jwt_keys_from_config(&admin.keys, &cfg->auth, err, sizeof(err)) < 0) {
		kiln_error("bad token keys", "error=%s", err);
		return -1;
	}
	if (kiln_cursor_key_init(&admin.cursor, cfg->auth.jwt_key, strlen(cfg->auth.jwt_key)) < 0)
		return -1;
	/* Only the namespace in Redis is used: caching itself stays off. */
	kiln_cache_init(&admin.cache, NULL, kiln_server_redis(), 0);
	return 0;
}

int admin_auth(struct kiln_req *req, struct admin_actor *a)
{
	kiln_resp_header(req, "Cache-Control", "no-store");
	if (kiln_authn_require(req, &admin.keys, &a->claims) != 0)
		return -1;
	if (strcmp(a->claims.role, "admin") == 0)
		return 0;
	admin_count(C_FORBIDDEN);
	kiln_problem(req, 403, "this needs the admin role", NULL);
	return -1;
}

int admin_empty_body(struct kiln_req *req)
{
	static const char *const none[] = {NULL};
	struct kiln_input in;
	int rc;

	if (req->content_length <= 0)
		return 0;
	if (kiln_input_begin(req, &in, none) < 0)
		return -1;
	rc = kiln_input_check(req, &in);
	kiln_input_free(&in);
	return rc;
}

void admin_page_json(PGresult *res, int64_t limit, const char *scope, kiln_page_row_fn row)
{
	kiln_page_json(&admin.out, &admin.cursor, res, limit, scope, row);
}

int admin_page_params(struct kiln_req *req, const struct kiln_query *q, const char *scope,
                      int64_t *limit, int64_t *after, struct kiln_field_errors *errs)
{
	return kiln_page_params(req, &admin.cursor, q, scope, limit, after, errs);
}

PGresult *admin_sql(struct kiln_req *req, const char *name, const char *sql, int n,
                    const char *const *params)
{
	return kiln_req_sql(req, kiln_server_db(), name, sql, n, params);
}

/* The actor's email comes from users in the same statement, so the row
 * names who they were at the time even if the token is older than an
 * email change. */
static const char sql_audit[] =
    "INSERT INTO admin_audit (actor_id, actor_email, action, target_type, target_id,"
    " before, after, ip, request_id)"
    " SELECT u.id, u.email, $2, $3, $4, $5::jsonb, $6::jsonb, $7::inet, $8"
    " FROM users u WHERE u.id = $1 RETURNING id";

/* REMOTE_ADDR when it is an IPv4 or IPv6 address (the inet column would
 * refuse anything else, and with it the change), else NULL. */
static const char *admin_addr(const char *addr)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (addr && (inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1))
		return addr;
	return NULL;
}

int admin_audit(struct kiln_req *req, const struct admin_actor *a, const char *action,
                const char *target_type, const char *target_id, const char *before,
                const char *after)
{
	char uid[24];
	const char *p[8] = {uid,    action, target_type, target_id,
	                    before, after,  NULL,        req->request_id};
	PGresult *res;
	int ok;

	p[6] = admin_addr(req->remote_addr);
	snprintf(uid, sizeof(uid), "%lld", (long long)a->claims.sub);
	res = admin_sql(req, "admin_audit_insert", sql_audit, 8, p);
	if (res == NULL)
		return -1;
	ok = PQntuples(res) == 1;
	PQclear(res);
	if (!ok) { /* the actor's row vanished mid-request */
		kiln_problem(req, 500, NULL, NULL);
		return -1;
	}
	admin_count(C_ACTIONS);
	kiln_info("admin action", "actor_id=%lld action=%s target_type=%s target_id=%s",
	          (long long)a->claims.sub, action, target_type, target_id);
	return 0;
}

int admin_send(struct kiln_req *req, int status)
{
	kiln_resp_json_text(req, status, admin.out.data ? admin.out.data : "{}", admin.out.len);
	return 0;
}
