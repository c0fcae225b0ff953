/* POST /auth/refresh (rotation, grace window, reuse detection),
 * POST /auth/logout and POST /auth/logout-all. */
#include <stdio.h>
#include <string.h>

#include "kiln/authn.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

/* Locks the token row: concurrent refreshes of one token queue here, and the
 * later ones see it already rotated (READ COMMITTED re-reads the row). */
static const char sql_token_find[] =
    "SELECT rt.id, rt.session_id, s.user_id, u.role, u.session_version, "
    "rt.rotated_at IS NOT NULL, "
    "coalesce(extract(epoch FROM now() - rt.rotated_at) * 1000, 0)::bigint, "
    "rt.expires_at > now() AND s.revoked_at IS NULL AND NOT u.locked "
    "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id "
    "JOIN users u ON u.id = s.user_id WHERE rt.token_hash = decode($1, 'hex') "
    "FOR UPDATE OF rt";

static const char sql_token_rotate[] =
    "WITH r AS (UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1) "
    "INSERT INTO refresh_tokens (session_id, token_hash, expires_at) "
    "VALUES ($2, decode($3, 'hex'), now() + $4::bigint * interval '1 millisecond')";

static const char sql_session_touch[] =
    "UPDATE sessions SET last_used_at = now(), "
    "expires_at = now() + $2::bigint * interval '1 millisecond' WHERE id = $1";

static const char sql_session_revoke[] =
    "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 "
    "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL";

static const char sql_revoke_all[] =
    "WITH s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout_all' "
    "  WHERE user_id = $1 AND revoked_at IS NULL) "
    "UPDATE users SET session_version = session_version + 1, updated_at = now() "
    "WHERE id = $1 RETURNING session_version";

struct presented {
	char id[24], session[24];
	int64_t user_id, sv, sid, rotated_ms_ago;
	int rotated, usable;
	char role[16];
};

/* Returns 1 found, 0 unknown, -1 after writing an error. */
static int find_token(struct kiln_req *req, const char *hash, struct presented *t)
{
	const char *p[1] = {hash};
	PGresult *res = kiln_req_sql(req, kiln_server_db(), "refresh_find", sql_token_find, 1, p);
	int found;

	if (res == NULL)
		return -1;
	found = PQntuples(res) == 1;
	if (found) {
		kiln_strlcpy(t->id, PQgetvalue(res, 0, 0), sizeof(t->id));
		kiln_strlcpy(t->session, PQgetvalue(res, 0, 1), sizeof(t->session));
		kiln_parse_int(t->session, 1, INT64_MAX, &t->sid);
		kiln_parse_int(PQgetvalue(res, 0, 2), 1, INT64_MAX, &t->user_id);
		kiln_strlcpy(t->role, PQgetvalue(res, 0, 3), sizeof(t->role));
		kiln_parse_int(PQgetvalue(res, 0, 4), 0, INT32_MAX, &t->sv);
		t->rotated = PQgetvalue(res, 0, 5)[0] == 't';
		kiln_parse_int(PQgetvalue(res, 0, 6), INT64_MIN, INT64_MAX, &t->rotated_ms_ago);
		t->usable = PQgetvalue(res, 0, 7)[0] == 't';
	}
	PQclear(res);
	return found;
}

static int rotate(struct kiln_req *req, const struct presented *t, const char *successor)
{
	const struct kiln_config *cfg = kiln_server_config();
	char hash[65], ttl[24];
	const char *p1[4] = {t->id, t->session, hash, ttl};
	const char *p2[2] = {t->session, ttl};
	PGresult *res;

	auth_refresh_hash(successor, hash);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->auth.refresh_ttl_ms);
	res = kiln_req_sql(req, kiln_server_db(), "refresh_rotate", sql_token_rotate, 4, p1);
	if (res == NULL)
		return -1;
	PQclear(res);
	res = kiln_req_sql(req, kiln_server_db(), "session_touch", sql_session_touch, 2, p2);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static int revoke_for_reuse(struct kiln_req *req, const struct presented *t)
{
	char uid[24];
	const char *p[3] = {t->session, uid, "reuse"};
	PGresult *res;

	snprintf(uid, sizeof(uid), "%lld", (long long)t->user_id);
	res = kiln_req_sql(req, kiln_server_db(), "session_revoke", sql_session_revoke, 3, p);
	if (res == NULL)
		return -1;
	PQclear(res);
	auth_count(C_REFRESH_REUSE);
	kiln_warn("refresh token reuse: session revoked", "user_id=%lld session_id=%s",
	          (long long)t->user_id, t->session);
	return 0;
}

static int refresh_rejected(struct kiln_req *req)
{
	return kiln_problem(req, 401, "the refresh token is invalid, expired or revoked", NULL);
}

/* Decide inside the transaction; returns the successor to hand out in
 * succ, or 0 with nothing to hand out (answer 401), or -1 (error written). */
static int refresh_decide(struct kiln_req *req, const char *tok, struct presented *t,
                          char succ[REFRESH_TOKEN_LEN + 1])
{
	const struct kiln_config *cfg = kiln_server_config();
	char hash[65];
	int found;

	auth_refresh_hash(tok, hash);
	found = find_token(req, hash, t);
	if (found <= 0)
		return found;
	if (!t->usable)
		return 0;
	auth_refresh_successor(tok, succ);
	if (!t->rotated)
		return rotate(req, t, succ) < 0 ? -1 : 1;
	if (t->rotated_ms_ago <= cfg->auth.refresh_grace_ms)
		return 1; /* a parallel caller: the same successor */
	return revoke_for_reuse(req, t) < 0 ? -1 : 0;
}

int auth_refresh(struct kiln_req *req)
{
	static const char *const fields[] = {"refresh_token", NULL};
	struct kiln_input in;
	struct presented t;
	struct kiln_jwt_claims c = {0};
	const char *tok = NULL;
	char succ[REFRESH_TOKEN_LEN + 1];
	int rc;

	if (auth_ratelimit(req, "refresh") < 0 || kiln_input_begin(req, &in, fields) < 0)
		return 0;
	kiln_json_string(in.obj, "refresh_token", 1, 1, 256, &tok, &in.errs);
	if (kiln_input_check(req, &in) < 0 || kiln_req_begin(req, kiln_server_db()) < 0)
		goto out;
	rc = refresh_decide(req, tok, &t, succ);
	if (rc < 0) {
		kiln_req_rollback(kiln_server_db());
		goto out;
	}
	if (kiln_req_commit(req, kiln_server_db()) < 0)
		goto out;
	if (rc == 0) {
		refresh_rejected(req);
		goto out;
	}
	auth_count(C_REFRESHES);
	c.sub = t.user_id;
	c.sv = t.sv;
	c.sid = t.sid;
	kiln_strlcpy(c.role, t.role, sizeof(c.role));
	auth_send_tokens(req, 200, &c, succ);
out:
	kiln_input_free(&in);
	return 0;
}

int auth_logout(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char sid[24], uid[24];
	const char *p[3] = {sid, uid, "logout"};
	PGresult *res;

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	snprintf(sid, sizeof(sid), "%lld", (long long)c.sid);
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	res = kiln_req_sql(req, kiln_server_db(), "session_revoke", sql_session_revoke, 3, p);
	if (res == NULL)
		return 0;
	PQclear(res);
	kiln_info("logout", "user_id=%lld session_id=%lld", (long long)c.sub, (long long)c.sid);
	return kiln_resp_body(req, 204, "", "", 0);
}

int64_t auth_revoke_all(struct kiln_req *req, int64_t user_id)
{
	char uid[24];
	const char *p[1] = {uid};
	PGresult *res;
	int64_t sv = -1;

	snprintf(uid, sizeof(uid), "%lld", (long long)user_id);
	res = kiln_req_sql(req, kiln_server_db(), "revoke_all", sql_revoke_all, 1, p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1)
		kiln_parse_int(PQgetvalue(res, 0, 0), 0, INT32_MAX, &sv);
	PQclear(res);
	return sv;
}

int auth_logout_all(struct kiln_req *req)
{
	struct kiln_jwt_claims c;

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	if (auth_revoke_all(req, c.sub) < 0) {
		if (req->resp.status == 0)
			kiln_problem(req, 401, "the session has ended", NULL);
		return 0;
	}
	kiln_info("logout-all", "user_id=%lld", (long long)c.sub);
	return kiln_resp_body(req, 204, "", "", 0);
}
