/* GET /auth/sessions, DELETE /auth/sessions/{id}, GET /auth/verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/authn.h"
#include "kiln/buf.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char sql_list[] = "SELECT id, " TS("created_at") ", " TS("last_used_at") ", " TS(
    "expires_at") ", "
                  "coalesce(user_agent, ''), coalesce(host(ip), '') FROM sessions "
                  "WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() "
                  "ORDER BY created_at DESC, id DESC LIMIT 100";

static const char sql_revoke[] =
    "UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked' "
    "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL";

static struct kiln_buf out;

static void session_json(struct kiln_buf *b, PGresult *res, int row, int64_t current)
{
	int64_t id = 0;

	kiln_parse_int(PQgetvalue(res, row, 0), 1, INT64_MAX, &id);
	kiln_buf_printf(b,
	                "{\"id\":%lld,\"created_at\":\"%s\",\"last_used_at\":\"%s\","
	                "\"expires_at\":\"%s\",\"user_agent\":\"",
	                (long long)id, PQgetvalue(res, row, 1), PQgetvalue(res, row, 2),
	                PQgetvalue(res, row, 3));
	kiln_buf_add_json_str(b, PQgetvalue(res, row, 4), (size_t)PQgetlength(res, row, 4));
	kiln_buf_printf(b, "\",\"ip\":\"%s\",\"current\":%s}", PQgetvalue(res, row, 5),
	                id == current ? "true" : "false");
}

int auth_sessions(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24];
	const char *p[1] = {uid};
	PGresult *res;
	int i;

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	res = kiln_req_sql(req, kiln_server_db(), "sessions_list", sql_list, 1, p);
	if (res == NULL)
		return 0;
	kiln_buf_reset(&out);
	kiln_buf_adds(&out, "{\"sessions\":[");
	for (i = 0; i < PQntuples(res); i++) {
		if (i)
			kiln_buf_addc(&out, ',');
		session_json(&out, res, i, c.sid);
	}
	kiln_buf_adds(&out, "]}");
	PQclear(res);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_json_text(req, 200, out.data, out.len);
}

int auth_session_delete(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24];
	const char *sid = kiln_req_param(req, "id"), *p[2] = {sid, uid};
	int64_t id;
	PGresult *res;
	int n;

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	if (kiln_parse_int(sid, 1, INT64_MAX, &id) < 0)
		return kiln_problem(req, 404, "no such session", NULL);
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	res = kiln_req_sql(req, kiln_server_db(), "session_delete", sql_revoke, 2, p);
	if (res == NULL)
		return 0;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0)
		return kiln_problem(req, 404, "no such active session of yours", NULL);
	kiln_info("session revoked", "user_id=%lld session_id=%lld", (long long)c.sub,
	          (long long)id);
	return kiln_resp_body(req, 204, "", "", 0);
}

/* For nginx auth_request: 200 with the identity in headers, or 401. */
int auth_verify(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24];

	if (kiln_authn_require(req, &auth.keys, &c) != 0)
		return 0;
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	kiln_resp_header(req, "X-Kiln-User-Id", uid);
	kiln_resp_header(req, "X-Kiln-Role", c.role);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_body(req, 200, "", "", 0);
}
