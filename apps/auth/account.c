/* POST /auth/register, GET /auth/me, POST /auth/password. */
#include <stdio.h>
#include <string.h>

#include "kiln/authn.h"
#include "kiln/buf.h"
#include "kiln/email.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

static const char sql_register[] =
    "INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3) "
    "ON CONFLICT ((lower(email))) DO NOTHING "
    "RETURNING id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

static const char sql_me[] =
    "SELECT id, email, display_name, role, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "FROM users WHERE id = $1";

static const char sql_hash[] = "SELECT password_hash FROM users WHERE id = $1";

static const char sql_set_hash[] =
    "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1";

/* The session being used survives a password change; the others do not. */
static const char sql_keep_session[] =
    "UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL "
    "WHERE id = $1 AND user_id = $2 AND revoked_reason = 'logout_all'";

static struct kiln_buf out;

static void user_json(struct kiln_buf *b, PGresult *res, const char *role, const char *created)
{
	kiln_buf_reset(b);
	kiln_buf_printf(b, "{\"id\":%s,\"email\":\"", PQgetvalue(res, 0, 0));
	kiln_buf_add_json_str(b, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
	kiln_buf_adds(b, "\",\"display_name\":\"");
	kiln_buf_add_json_str(b, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
	kiln_buf_printf(b, "\",\"role\":\"%s\",\"created_at\":\"%s\"}", role, created);
}

/* Validate the register body into email/name/pw. Returns 0, or -1. */
static int register_input(struct kiln_req *req, struct kiln_input *in, char *email, char *name,
                          const char **pw)
{
	const struct kiln_config *cfg = kiln_server_config();

	auth_validate_register(in->obj, cfg->auth.common_password_check, email, name, pw,
	                       &in->errs);
	return kiln_input_check(req, in);
}

int auth_register(struct kiln_req *req)
{
	static const char *const fields[] = {"email", "password", "display_name", NULL};
	char email[KILN_EMAIL_MAX + 1], name[101], hash[KILN_PHC_MAX];
	const char *pw = NULL, *p[3] = {email, name, hash};
	struct kiln_input in;
	struct kiln_field_errors dup = {0};
	PGresult *res;

	if (auth_ratelimit(req, "register") < 0 || kiln_input_begin(req, &in, fields) < 0)
		return 0;
	if (register_input(req, &in, email, name, &pw) < 0)
		goto out;
	if (kiln_password_hash(&auth.pw, pw, strlen(pw), hash, sizeof(hash)) < 0) {
		kiln_problem(req, 500, NULL, NULL);
		goto out;
	}
	res = kiln_req_sql(req, kiln_server_db(), "register", sql_register, 3, p);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		kiln_field_error_add(&dup, "email", "is already registered");
		kiln_problem(req, 409, "an account with this email exists", &dup);
	} else {
		char created[40];
		kiln_strlcpy(created, PQgetvalue(res, 0, 1), sizeof(created));
		kiln_buf_reset(&out);
		kiln_buf_printf(&out, "{\"id\":%s,\"email\":\"", PQgetvalue(res, 0, 0));
		kiln_buf_add_json_str(&out, email, strlen(email));
		kiln_buf_adds(&out, "\",\"display_name\":\"");
		kiln_buf_add_json_str(&out, name, strlen(name));
		kiln_buf_printf(&out, "\",\"role\":\"user\",\"created_at\":\"%s\"}", created);
		kiln_resp_header(req, "Location", "/auth/me");
		kiln_resp_json_text(req, 201, out.data, out.len);
		auth_count(C_REGISTRATIONS);
		kiln_info("registered", "user_id=%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
out:
	kiln_input_free(&in);
	return 0;
}

int auth_me(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char id[24];
	const char *p[1] = {id};
	PGresult *res;

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	snprintf(id, sizeof(id), "%lld", (long long)c.sub);
	res = kiln_req_sql(req, kiln_server_db(), "me", sql_me, 1, p);
	if (res == NULL)
		return 0;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return kiln_problem(req, 401, "the session has ended", NULL);
	}
	user_json(&out, res, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	PQclear(res);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_json_text(req, 200, out.data, out.len);
}

/* Check the current password. Returns 1 when right, 0 when wrong (error
 * recorded), -1 after writing an error response. */
static int current_ok(struct kiln_req *req, const struct kiln_jwt_claims *c, const char *pw,
                      struct kiln_input *in)
{
	char id[24];
	const char *p[1] = {id};
	PGresult *res;
	int ok;

	snprintf(id, sizeof(id), "%lld", (long long)c->sub);
	res = kiln_req_sql(req, kiln_server_db(), "pw_hash", sql_hash, 1, p);
	if (res == NULL)
		return -1;
	ok =
	    PQntuples(res) == 1 && kiln_password_verify(PQgetvalue(res, 0, 0), pw, strlen(pw)) == 1;
	PQclear(res);
	if (!ok)
		kiln_field_error_add(&in->errs, "current_password", "is incorrect");
	return ok;
}

/* New hash, every session revoked and session_version bumped, then this
 * session restored: other sessions' refresh and access tokens stop working. */
static int change_password(struct kiln_req *req, struct kiln_jwt_claims *c, const char *pw)
{
	char id[24], sid[24], hash[KILN_PHC_MAX];
	const char *p1[2] = {id, hash}, *p2[2] = {sid, id};
	PGresult *res;

	if (kiln_password_hash(&auth.pw, pw, strlen(pw), hash, sizeof(hash)) < 0)
		return kiln_problem(req, 500, NULL, NULL);
	snprintf(id, sizeof(id), "%lld", (long long)c->sub);
	snprintf(sid, sizeof(sid), "%lld", (long long)c->sid);
	if (kiln_req_begin(req, kiln_server_db()) < 0)
		return 0;
	res = kiln_req_sql(req, kiln_server_db(), "pw_set", sql_set_hash, 2, p1);
	if (res == NULL) {
		kiln_req_rollback(kiln_server_db());
		return 0;
	}
	PQclear(res);
	if ((c->sv = auth_revoke_all(req, c->sub)) < 0 ||
	    (res = kiln_req_sql(req, kiln_server_db(), "pw_keep", sql_keep_session, 2, p2)) ==
	        NULL) {
		kiln_req_rollback(kiln_server_db());
		return 0;
	}
	PQclear(res);
	if (kiln_req_commit(req, kiln_server_db()) < 0)
		return 0;
	auth_count(C_PASSWORD_CHANGES);
	kiln_info("password changed", "user_id=%lld", (long long)c->sub);
	return auth_send_tokens(req, 200, c, NULL);
}

int auth_password(struct kiln_req *req)
{
	static const char *const fields[] = {"current_password", "new_password", NULL};
	const struct kiln_config *cfg = kiln_server_config();
	struct kiln_jwt_claims c;
	struct kiln_input in;
	const char *cur = NULL, *pw = NULL, *why;

	if (kiln_authn_require(req, &auth.keys, &c) != 0 || kiln_input_begin(req, &in, fields) < 0)
		return 0;
	kiln_json_string(in.obj, "current_password", 1, 1, KILN_PASSWORD_MAX, &cur, &in.errs);
	kiln_json_string(in.obj, "new_password", 1, 0, 4096, &pw, &in.errs);
	if (pw && (why = kiln_password_policy(pw, strlen(pw), cfg->auth.common_password_check)))
		kiln_field_error_add(&in.errs, "new_password", why);
	if (cur && current_ok(req, &c, cur, &in) < 0)
		goto out;
	if (kiln_input_check(req, &in) == 0)
		change_password(req, &c, pw);
out:
	kiln_input_free(&in);
	return 0;
}
