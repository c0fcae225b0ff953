/* jwt: HS256 JSON Web Tokens (RFC 7519) for kiln's access tokens. The
 * algorithm is pinned: "none" and every other alg are rejected. Two keys
 * (current and previous) allow rotation by kid. */
#ifndef KILN_JWT_H
#define KILN_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/config.h"

#define KILN_JWT_MAX 2048 /* longest token accepted or produced */

struct kiln_jwt_key {
	char kid[64];
	unsigned char key[KILN_CFG_STR_MAX];
	size_t len; /* 0 = no key */
};

struct kiln_jwt_keys {
	struct kiln_jwt_key current;  /* signs, and verifies its kid */
	struct kiln_jwt_key previous; /* verifies its kid only; len 0 when none */
	char issuer[128];
	char audience[128];
	int64_t leeway_s; /* <= 60 */
};

/* The claims kiln puts in an access token; all are required on verify. */
struct kiln_jwt_claims {
	int64_t sub; /* user id ("sub" is its decimal string) */
	int64_t iat; /* seconds since the epoch */
	int64_t exp;
	int64_t sv;  /* the user's session_version when issued */
	int64_t sid; /* session (refresh-token family) id */
	char role[16];
};

enum kiln_jwt_error {
	KILN_JWT_OK = 0,
	KILN_JWT_MALFORMED = -1,   /* not three base64url parts of JSON objects, too long */
	KILN_JWT_BAD_ALG = -2,     /* alg is not exactly "HS256" (incl. "none") */
	KILN_JWT_UNKNOWN_KID = -3, /* kid missing or matching neither key */
	KILN_JWT_BAD_SIGNATURE = -4,
	KILN_JWT_EXPIRED = -5,       /* now > exp + leeway */
	KILN_JWT_NOT_YET_VALID = -6, /* now < nbf - leeway, or iat in the future */
	KILN_JWT_BAD_ISSUER = -7,
	KILN_JWT_BAD_AUDIENCE = -8,
	KILN_JWT_MISSING_CLAIM = -9, /* a required claim is absent or of the wrong type */
};

/* Fill keys from cfg ([auth] jwt_key, jwt_key_id, jwt_previous_key, ...).
 * Returns 0, or -1 with a reason in err (no current key, key shorter than 32
 * bytes, previous key without a kid or with the current kid). */
int kiln_jwt_keys_from_config(struct kiln_jwt_keys *keys, const struct kiln_cfg_auth *cfg,
                              char *err, size_t errlen);

/* Sign claims with the current key: header {"alg":"HS256","typ":"JWT","kid":..},
 * payload {iss,aud,sub,iat,nbf=iat,exp,sv,sid,role}. Writes a NUL-terminated
 * token to out. Returns its length, or -1 when out is too small, there is no
 * current key, or the claims are ones verify would refuse (sub or sid < 1,
 * sv < 0, role not 1..15 bytes of [a-z]). */
int kiln_jwt_sign(const struct kiln_jwt_keys *keys, const struct kiln_jwt_claims *c, char *out,
                  size_t outlen);

/* Verify token (len bytes, not necessarily NUL-terminated) at time now_s:
 * structure, alg, kid, signature (constant-time compare) before any claim
 * is trusted, then iss, aud, exp, nbf, iat with leeway, and the presence and
 * types of sub, sv, sid, role. Returns KILN_JWT_OK with *out filled, or a
 * negative enum kiln_jwt_error. */
int kiln_jwt_verify(const struct kiln_jwt_keys *keys, const char *token, size_t len, int64_t now_s,
                    struct kiln_jwt_claims *out);

/* Short text for an error code ("token expired"). */
const char *kiln_jwt_strerror(int err);

/* HMAC-SHA256 of input under key into mac (for tests against RFC 7515 A.1). */
void kiln_jwt_hs256(const unsigned char *key, size_t klen, const char *input, size_t ilen,
                    unsigned char mac[32]);

#endif
