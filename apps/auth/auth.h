/* kiln-auth internals: the per-worker context and the helpers the handlers
 * share (JSON input, database calls, tokens, limits). */
#ifndef KILN_AUTH_H
#define KILN_AUTH_H

#include <stdint.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "kiln/handler.h"
#include "kiln/http.h"
#include "kiln/jwt.h"
#include "kiln/json.h"
#include "kiln/password.h"

#define REFRESH_TOKEN_LEN 43 /* 32 bytes, base64url */

struct auth_ctx {
	struct kiln_jwt_keys keys;
	struct kiln_password_params pw;
	char dummy_hash[KILN_PHC_MAX]; /* verified for unknown emails: same time */
};

extern struct auth_ctx auth;

/* Scoreboard counters (kiln_<name>_total in /metrics), in the order of
 * auth_counter_names. C_LOGIN_* are kiln_auth_logins_total{outcome}: every
 * POST /auth/login that reaches kiln-auth counts once, by its answer. */
enum auth_counter {
	C_REGISTRATIONS,
	C_LOGIN_SUCCESS,         /* 200 */
	C_LOGIN_BAD_CREDENTIALS, /* 401: unknown email or wrong password */
	C_LOGIN_LOCKED,          /* 403: locked by an administrator */
	C_LOGIN_THROTTLED,       /* 429: too many failures for the account */
	C_LOGIN_RATE_LIMITED,    /* 429: too many attempts from the address */
	C_LOGIN_INVALID,         /* another 4xx: a malformed request */
	C_LOGIN_ERROR,           /* 5xx: a dependency failed */
	C_LOCKOUTS,
	C_REFRESHES,
	C_REFRESH_REUSE,
	C_PASSWORD_CHANGES,
	C_RATELIMITED,
};
extern const char *const auth_counter_names[];
void auth_count(enum auth_counter c);

/* Per-client-address GCRA limit for scope ("login"). Returns 0 when
 * allowed, or -1 after writing 429 with Retry-After. */
int auth_ratelimit(struct kiln_req *req, const char *scope);

/* A fresh refresh token, the successor a token rotates to (deterministic,
 * so concurrent refreshes inside the grace window agree), and the SHA-256
 * of a token in hex (what the database stores, as decode($n, 'hex')). */
void auth_refresh_new(char out[REFRESH_TOKEN_LEN + 1]);
void auth_refresh_successor(const char *old, char out[REFRESH_TOKEN_LEN + 1]);
void auth_refresh_hash(const char *tok, char hex[65]);

/* Write the token response (Cache-Control: no-store) for claims, with the
 * refresh token when not NULL. Fills iat/exp of c. Returns 0, or -1. */
int auth_send_tokens(struct kiln_req *req, int status, struct kiln_jwt_claims *c,
                     const char *refresh);

/* The client's session row (user agent, address) for a new session; refresh
 * token and its hash; returns the session id, or -1 after writing the error.
 * Runs inside the caller's transaction. */
int64_t auth_session_create(struct kiln_req *req, int64_t user_id, const char *refresh);

/* Revoke every session of user_id and bump its session_version. Returns the new version, or -1
 * after writing an error. Used by logout-all and password change. */
int64_t auth_revoke_all(struct kiln_req *req, int64_t user_id);

/* Validate a register body (validate.c; pure, also driven by the fuzzer):
 * email normalised into email (KILN_EMAIL_MAX + 1 bytes), display name
 * trimmed into name (101 bytes), *pw set; every problem recorded in errs. */
void auth_validate_register(json_object *obj, int common_check, char *email, char *name,
                            const char **pw, struct kiln_field_errors *errs);

/* Trimmed display name: NULL when valid (copied into name, >= 101 bytes),
 * else the reason. */
const char *auth_validate_name(const char *in, char *name, size_t namelen);

/* Route handlers. */
int auth_register(struct kiln_req *req);
int auth_me(struct kiln_req *req);
int auth_password(struct kiln_req *req);
int auth_login(struct kiln_req *req);
int auth_refresh(struct kiln_req *req);
int auth_logout(struct kiln_req *req);
int auth_logout_all(struct kiln_req *req);
int auth_sessions(struct kiln_req *req);
int auth_session_delete(struct kiln_req *req);
int auth_verify(struct kiln_req *req);

#endif
