/* authn: Bearer tokens plus the session check (see authn.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kiln/authn.h"
#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"

static const char sql_session[] =
    "SELECT 1 FROM users u JOIN sessions s ON s.user_id = u.id "
    "WHERE u.id = $1 AND s.id = $2 AND NOT u.locked AND u.session_version = $3 "
    "AND s.revoked_at IS NULL AND s.expires_at > now()";

static int unauthorized(struct kiln_req *req, const char *why, int sent_token)
{
	char hdr[160];

	if (sent_token)
		snprintf(hdr, sizeof(hdr),
		         "Bearer error=\"invalid_token\", error_description=\"%s\"", why);
	else
		snprintf(hdr, sizeof(hdr), "Bearer");
	kiln_resp_header(req, "WWW-Authenticate", hdr);
	kiln_problem(req, 401, why, NULL);
	return 401;
}

int kiln_authn_session_valid(const struct kiln_jwt_claims *c)
{
	char uid[24], sid[24], sv[24], err[256];
	const char *params[3] = {uid, sid, sv};
	PGresult *res;
	int rc;

	snprintf(uid, sizeof(uid), "%lld", (long long)c->sub);
	snprintf(sid, sizeof(sid), "%lld", (long long)c->sid);
	snprintf(sv, sizeof(sv), "%lld", (long long)c->sv);
	res = kiln_db_query(kiln_server_db(), "authn_session", sql_session, 3, params, 0, NULL, err,
	                    sizeof(err));
	if (res == NULL) {
		kiln_warn("session check unavailable", "error=%s", err);
		return -1;
	}
	rc = PQntuples(res) == 1;
	PQclear(res);
	return rc;
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const struct kiln_req *req, size_t *len)
{
	const char *h = kiln_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	*len = strcspn(h, " \t");
	return *len ? h : NULL;
}

int kiln_authn_require(struct kiln_req *req, const struct kiln_jwt_keys *keys,
                       struct kiln_jwt_claims *out)
{
	const char *tok;
	size_t len = 0;
	int rc;

	tok = bearer_token(req, &len);
	if (tok == NULL)
		return unauthorized(req, "a Bearer access token is required", 0);
	rc = kiln_jwt_verify(keys, tok, len, (int64_t)time(NULL), out);
	if (rc != KILN_JWT_OK)
		return unauthorized(req, kiln_jwt_strerror(rc), 1);
	rc = kiln_authn_session_valid(out);
	if (rc < 0) {
		kiln_resp_header(req, "Retry-After", "1");
		kiln_problem(req, 503, "cannot check the session right now", NULL);
		return 503;
	}
	if (rc == 0)
		return unauthorized(req, "the session has ended", 1);
	return 0;
}
