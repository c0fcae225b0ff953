/* Helpers shared by the kiln-auth handlers. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/ratelimit.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

struct auth_ctx auth;

const char *const auth_counter_names[] = {"auth_registrations",
                                          "auth_logins:outcome=success",
                                          "auth_logins:outcome=bad_credentials",
                                          "auth_logins:outcome=locked",
                                          "auth_logins:outcome=throttled",
                                          "auth_logins:outcome=rate_limited",
                                          "auth_logins:outcome=invalid",
                                          "auth_logins:outcome=error",
                                          "auth_lockouts",
                                          "auth_refreshes",
                                          "auth_refresh_reuse_detected",
                                          "auth_password_changes",
                                          "ratelimit_rejections",
                                          NULL};

void auth_count(enum auth_counter c)
{
	kiln_stats_count(kiln_server_slot(), (int)c, 1);
}

int auth_ratelimit(struct kiln_req *req, const char *scope)
{
	const struct kiln_config *cfg = kiln_server_config();
	struct kiln_ratelimit rl = {cfg->auth.ip_rate, cfg->auth.ip_period_ms, cfg->auth.ip_burst};
	struct kiln_ratelimit_result r;
	char key[160], retry[24];

	snprintf(key, sizeof(key), "%s:ip:%.64s", scope, req->remote_addr);
	if (kiln_ratelimit_take(kiln_server_redis(), &rl, key, &r) < 0 || r.allowed)
		return 0;
	auth_count(C_RATELIMITED);
	snprintf(retry, sizeof(retry), "%lld", (long long)((r.retry_after_ms + 999) / 1000));
	kiln_resp_header(req, "Retry-After", retry);
	kiln_problem(req, 429, "too many requests from this address; try again later", NULL);
	return -1;
}

void auth_refresh_new(char out[REFRESH_TOKEN_LEN + 1])
{
	unsigned char raw[32];

	RAND_bytes(raw, sizeof(raw));
	kiln_b64url_encode(raw, sizeof(raw), out, REFRESH_TOKEN_LEN + 1);
	OPENSSL_cleanse(raw, sizeof(raw));
}

/* HMAC under the signing key: unpredictable without the key, identical for
 * every caller that presents the same retired token. */
void auth_refresh_successor(const char *old, char out[REFRESH_TOKEN_LEN + 1])
{
	static const char label[] = "kiln refresh successor:";
	unsigned char mac[32], msg[sizeof(label) + REFRESH_TOKEN_LEN];
	size_t n = strnlen(old, REFRESH_TOKEN_LEN);
	unsigned int maclen = sizeof(mac);

	memcpy(msg, label, sizeof(label) - 1);
	memcpy(msg + sizeof(label) - 1, old, n);
	HMAC(EVP_sha256(), auth.keys.current.key, (int)auth.keys.current.len, msg,
	     sizeof(label) - 1 + n, mac, &maclen);
	kiln_b64url_encode(mac, sizeof(mac), out, REFRESH_TOKEN_LEN + 1);
}

void auth_refresh_hash(const char *tok, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);
	int i;

	EVP_Digest(tok, strlen(tok), md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int auth_send_tokens(struct kiln_req *req, int status, struct kiln_jwt_claims *c,
                     const char *refresh)
{
	const struct kiln_config *cfg = kiln_server_config();
	char jwt[KILN_JWT_MAX], body[KILN_JWT_MAX + 256];
	int64_t ttl = cfg->auth.access_ttl_ms / 1000;
	int n;

	c->iat = (int64_t)time(NULL);
	c->exp = c->iat + ttl;
	if (kiln_jwt_sign(&auth.keys, c, jwt, sizeof(jwt)) < 0) {
		kiln_problem(req, 500, NULL, NULL);
		return -1;
	}
	n = snprintf(
	    body, sizeof(body),
	    "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld%s%s%s}", jwt,
	    (long long)ttl, refresh ? ",\"refresh_token\":\"" : "", refresh ? refresh : "",
	    refresh ? "\"" : "");
	if (n < 0 || (size_t)n >= sizeof(body)) {
		kiln_problem(req, 500, NULL, NULL);
		return -1;
	}
	kiln_resp_header(req, "Cache-Control", "no-store");
	kiln_resp_header(req, "Pragma", "no-cache");
	return kiln_resp_json_text(req, status, body, (size_t)n);
}

static const char sql_session_new[] =
    "INSERT INTO sessions (user_id, expires_at, user_agent, ip) "
    "VALUES ($1, now() + $2::bigint * interval '1 millisecond', left($3, 256), "
    "nullif($4, '')::inet) RETURNING id";
static const char sql_token_new[] =
    "INSERT INTO refresh_tokens (session_id, token_hash, expires_at) "
    "VALUES ($1, decode($2, 'hex'), now() + $3::bigint * interval '1 millisecond')";

/* The User-Agent as printable ASCII of at most 256 bytes: it is shown back
 * in the session list and must never make the INSERT fail. */
static void clean_agent(const char *ua, char out[257])
{
	size_t i;

	for (i = 0; ua && ua[i] && i < 256; i++)
		out[i] = ua[i] >= ' ' && ua[i] <= '~' ? ua[i] : '?';
	out[i] = '\0';
}

int64_t auth_session_create(struct kiln_req *req, int64_t user_id, const char *refresh)
{
	const struct kiln_config *cfg = kiln_server_config();
	char uid[24], ttl[24], sid[24], hash[65], ua[257];
	const char *p1[4] = {uid, ttl, ua, req->remote_addr};
	const char *p2[3] = {sid, hash, ttl};
	PGresult *res;
	int64_t id;

	clean_agent(kiln_req_header(req, "User-Agent"), ua);
	snprintf(uid, sizeof(uid), "%lld", (long long)user_id);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->auth.refresh_ttl_ms);
	res = kiln_req_sql(req, kiln_server_db(), "session_new", sql_session_new, 4, p1);
	if (res == NULL)
		return -1;
	if (kiln_parse_int(PQgetvalue(res, 0, 0), 1, INT64_MAX, &id) < 0) {
		PQclear(res);
		kiln_problem(req, 500, NULL, NULL);
		return -1;
	}
	PQclear(res);
	snprintf(sid, sizeof(sid), "%lld", (long long)id);
	auth_refresh_hash(refresh, hash);
	res = kiln_req_sql(req, kiln_server_db(), "token_new", sql_token_new, 3, p2);
	if (res == NULL)
		return -1;
	PQclear(res);
	return id;
}
