/* POST /auth/login, with per-address limits and per-account lockout. */
#include <stdio.h>
#include <string.h>

#include "kiln/email.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

static const char sql_find[] = "SELECT id, password_hash, role, session_version, locked, "
                               "ceil(extract(epoch FROM locked_until - now()) * 1000)::bigint "
                               "FROM users WHERE lower(email) = lower($1)";

/* One failure: count it, and in the current hour's window. */
static const char sql_fail[] =
    "UPDATE users SET failed_logins = failed_logins + 1, "
    "window_failures = CASE WHEN failure_window IS NULL "
    "  OR failure_window <= now() - interval '1 hour' THEN 1 ELSE window_failures + 1 END, "
    "failure_window = CASE WHEN failure_window IS NULL "
    "  OR failure_window <= now() - interval '1 hour' THEN now() ELSE failure_window END, "
    "updated_at = now() WHERE id = $1 "
    "RETURNING failed_logins, window_failures, "
    "ceil(extract(epoch FROM failure_window + interval '1 hour' - now()) * 1000)::bigint";

static const char sql_lock[] =
    "UPDATE users SET locked_until = now() + $2::bigint * interval '1 millisecond' "
    "WHERE id = $1";

static const char sql_ok[] =
    "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = now(), "
    "password_hash = coalesce(nullif($2, ''), password_hash) WHERE id = $1";

struct account {
	int64_t id, sv, locked_ms;
	int locked;
	char hash[KILN_PHC_MAX];
	char role[16];
};

/* Returns 1 found, 0 unknown, -1 after writing an error. */
static int find_account(struct kiln_req *req, const char *email, struct account *a)
{
	const char *p[1] = {email};
	PGresult *res = kiln_req_sql(req, kiln_server_db(), "login_find", sql_find, 1, p);
	int found;

	if (res == NULL)
		return -1;
	found = PQntuples(res) == 1;
	if (found) {
		kiln_parse_int(PQgetvalue(res, 0, 0), 1, INT64_MAX, &a->id);
		kiln_strlcpy(a->hash, PQgetvalue(res, 0, 1), sizeof(a->hash));
		kiln_strlcpy(a->role, PQgetvalue(res, 0, 2), sizeof(a->role));
		kiln_parse_int(PQgetvalue(res, 0, 3), 0, INT32_MAX, &a->sv);
		a->locked = PQgetvalue(res, 0, 4)[0] == 't';
		a->locked_ms = 0;
		if (!PQgetisnull(res, 0, 5))
			kiln_parse_int(PQgetvalue(res, 0, 5), INT64_MIN, INT64_MAX, &a->locked_ms);
	}
	PQclear(res);
	return found;
}

static int too_many(struct kiln_req *req, int64_t wait_ms)
{
	char retry[24];

	snprintf(retry, sizeof(retry), "%lld", (long long)((wait_ms + 999) / 1000));
	kiln_resp_header(req, "Retry-After", retry);
	return kiln_problem(req, 429, "too many failed sign-ins; try again later", NULL);
}

/* The delay after a failure: lockout_base doubling from the threshold on,
 * at most lockout_max; the rest of the hour past the hourly limit. */
static int64_t lock_delay(int64_t failures, int64_t window_failures, int64_t hour_left_ms)
{
	const struct kiln_cfg_auth *c = &kiln_server_config()->auth;
	int64_t d = c->lockout_base_ms, n;

	if (window_failures > c->lockout_hourly_limit)
		return hour_left_ms > 0 ? hour_left_ms : 1;
	if (failures < c->lockout_threshold)
		return 0;
	for (n = failures - c->lockout_threshold; n > 0 && d < c->lockout_max_ms; n--)
		d *= 2;
	return d < c->lockout_max_ms ? d : c->lockout_max_ms;
}

static void record_failure(struct kiln_req *req, const struct account *a)
{
	char id[24], ms[24];
	const char *p[2] = {id, ms};
	int64_t failures = 0, window = 0, hour_left = 0, delay;
	PGresult *res;

	snprintf(id, sizeof(id), "%lld", (long long)a->id);
	res = kiln_req_sql(req, kiln_server_db(), "login_fail", sql_fail, 1, p);
	if (res == NULL)
		return;
	kiln_parse_int(PQgetvalue(res, 0, 0), 0, INT64_MAX, &failures);
	kiln_parse_int(PQgetvalue(res, 0, 1), 0, INT64_MAX, &window);
	kiln_parse_int(PQgetvalue(res, 0, 2), INT64_MIN, INT64_MAX, &hour_left);
	PQclear(res);
	delay = lock_delay(failures, window, hour_left);
	kiln_info("login failed", "user_id=%lld failures=%lld", (long long)a->id,
	          (long long)failures);
	if (delay <= 0)
		return;
	snprintf(ms, sizeof(ms), "%lld", (long long)delay);
	res = kiln_req_sql(req, kiln_server_db(), "login_lock", sql_lock, 2, p);
	PQclear(res);
	auth_count(C_LOCKOUTS);
	kiln_warn("account locked out", "user_id=%lld failures=%lld delay_ms=%lld",
	          (long long)a->id, (long long)failures, (long long)delay);
}

/* Success: reset the counter, re-hash when the parameters changed, open a
 * session, answer with tokens. */
static int sign_in(struct kiln_req *req, const struct account *a, const char *pw)
{
	char id[24], newhash[KILN_PHC_MAX] = "", refresh[REFRESH_TOKEN_LEN + 1];
	const char *p[2] = {id, newhash};
	struct kiln_jwt_claims c = {.sub = a->id, .sv = a->sv};
	PGresult *res;

	if (kiln_password_needs_rehash(a->hash, &auth.pw) == 1 &&
	    kiln_password_hash(&auth.pw, pw, strlen(pw), newhash, sizeof(newhash)) < 0)
		newhash[0] = '\0';
	snprintf(id, sizeof(id), "%lld", (long long)a->id);
	auth_refresh_new(refresh);
	if (kiln_req_begin(req, kiln_server_db()) < 0)
		return 0;
	res = kiln_req_sql(req, kiln_server_db(), "login_ok", sql_ok, 2, p);
	if (res == NULL || (c.sid = auth_session_create(req, a->id, refresh)) < 0) {
		PQclear(res);
		kiln_req_rollback(kiln_server_db());
		return 0;
	}
	PQclear(res);
	if (kiln_req_commit(req, kiln_server_db()) < 0)
		return 0;
	kiln_strlcpy(c.role, a->role, sizeof(c.role));
	kiln_info("login", "user_id=%lld session_id=%lld rehashed=%d", (long long)a->id,
	          (long long)c.sid, newhash[0] != '\0');
	return auth_send_tokens(req, 200, &c, refresh);
}

static int invalid_credentials(struct kiln_req *req)
{
	return kiln_problem(req, 401, "invalid email or password", NULL);
}

/* Count a login by the answer it got (rc: the handler's return, a status
 * when 400-599). Returns rc. */
static int count_login(const struct kiln_req *req, int rc)
{
	int status = rc >= 400 && rc <= 599 ? rc : req->resp.status;

	auth_count(status == 200                   ? C_LOGIN_SUCCESS
	           : status == 401                 ? C_LOGIN_BAD_CREDENTIALS
	           : status == 403                 ? C_LOGIN_LOCKED
	           : status == 429                 ? C_LOGIN_THROTTLED
	           : status >= 400 && status < 500 ? C_LOGIN_INVALID
	                                           : C_LOGIN_ERROR);
	return rc;
}

int auth_login(struct kiln_req *req)
{
	static const char *const fields[] = {"email", "password", NULL};
	struct kiln_input in;
	struct account a;
	const char *email = NULL, *pw = NULL;
	char norm[KILN_EMAIL_MAX + 1];
	int found, rc = 0;

	if (auth_ratelimit(req, "login") < 0) {
		auth_count(C_LOGIN_RATE_LIMITED);
		return 0;
	}
	if (kiln_input_begin(req, &in, fields) < 0)
		return count_login(req, 0);
	kiln_json_string(in.obj, "email", 1, 1, 1024, &email, &in.errs);
	kiln_json_string(in.obj, "password", 1, 1, KILN_PASSWORD_MAX, &pw, &in.errs);
	if (kiln_input_check(req, &in) < 0)
		goto out;
	if (kiln_email_normalize(email, strlen(email), norm, sizeof(norm)) != NULL) {
		/* Not an address we could have registered: same answer, same cost. */
		kiln_password_verify(auth.dummy_hash, pw, strlen(pw));
		rc = invalid_credentials(req);
		goto out;
	}
	found = find_account(req, norm, &a);
	if (found < 0)
		goto out;
	if (found && a.locked_ms > 0) {
		rc = too_many(req, a.locked_ms);
		goto out;
	}
	if (kiln_password_verify(found ? a.hash : auth.dummy_hash, pw, strlen(pw)) != 1 || !found) {
		if (found)
			record_failure(req, &a);
		if (req->resp.status == 0)
			rc = invalid_credentials(req);
		goto out;
	}
	if (a.locked)
		rc = kiln_problem(req, 403, "this account is locked; contact an administrator",
		                  NULL);
	else
		rc = sign_in(req, &a, pw);
out:
	kiln_input_free(&in);
	return count_login(req, rc);
}
