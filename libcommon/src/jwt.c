/* jwt: HS256 access tokens with a pinned algorithm and kid-based rotation.
 *
 * Verification trusts nothing before the signature: only the header is
 * parsed as JSON before the HMAC is checked (it names the algorithm and the
 * key), so json-c only ever sees an unauthenticated payload's bytes after
 * they have been proven to come from a holder of the key. Decoding uses one
 * stack buffer per call; json-c's trees are the only allocations. */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kiln/buf.h"
#include "kiln/json.h"
#include "kiln/jwt.h"
#include "kiln/util.h"

#define JWT_MIN_KEY    32
#define JWT_MAX_LEEWAY 60
#define JWT_JSON_DEPTH 4
#define JWT_SIG_LEN    32

/* A token split at its two dots, each part base64url-decoded into the
 * caller's buffer. */
struct jwt_parts {
	size_t signed_len; /* bytes of "<header>.<payload>" covered by the MAC */
	const unsigned char *hdr, *pl, *sig;
	size_t hlen, plen, slen;
};

/* A kid is 1..63 bytes of [A-Za-z0-9._-]: it travels in a JSON header and in
 * logs, so nothing that needs escaping. */
static int jwt_kid_valid(const char *kid)
{
	size_t n = strlen(kid), i;

	if (n == 0 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char c = kid[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* role is 1..15 bytes of [a-z]. */
static int jwt_role_valid(const char *role, size_t n)
{
	size_t i;

	if (n == 0 || n >= sizeof(((struct kiln_jwt_claims *)0)->role))
		return 0;
	for (i = 0; i < n; i++) {
		if (role[i] < 'a' || role[i] > 'z')
			return 0;
	}
	return 1;
}

/* The leeway clamped to 0..60 s whatever the caller put in keys. */
static int64_t jwt_leeway(int64_t s)
{
	return s < 0 ? 0 : s > JWT_MAX_LEEWAY ? JWT_MAX_LEEWAY : s;
}

static int jwt_key_set(struct kiln_jwt_key *k, const char *key, const char *kid, const char *what,
                       char *err, size_t errlen)
{
	size_t n = strlen(key);

	if (n < JWT_MIN_KEY) {
		snprintf(err, errlen, "auth.%s: must be at least %d bytes", what, JWT_MIN_KEY);
		return -1;
	}
	if (n > sizeof(k->key)) {
		snprintf(err, errlen, "auth.%s: longer than %zu bytes", what, sizeof(k->key));
		return -1;
	}
	if (!jwt_kid_valid(kid)) {
		snprintf(err, errlen, "auth.%s_id: must be 1..63 characters of [A-Za-z0-9._-]",
		         what);
		return -1;
	}
	memcpy(k->key, key, n);
	k->len = n;
	kiln_strlcpy(k->kid, kid, sizeof(k->kid));
	return 0;
}

int kiln_jwt_keys_from_config(struct kiln_jwt_keys *keys, const struct kiln_cfg_auth *cfg,
                              char *err, size_t errlen)
{
	memset(keys, 0, sizeof(*keys));
	if (cfg->jwt_key[0] == '\0') {
		snprintf(err, errlen, "auth.jwt_key: no signing key (set jwt_key_file)");
		return -1;
	}
	if (jwt_key_set(&keys->current, cfg->jwt_key, cfg->jwt_key_id, "jwt_key", err, errlen) < 0)
		goto fail;
	if (cfg->jwt_previous_key[0] != '\0') {
		if (jwt_key_set(&keys->previous, cfg->jwt_previous_key, cfg->jwt_previous_key_id,
		                "jwt_previous_key", err, errlen) < 0)
			goto fail;
		if (strcmp(keys->previous.kid, keys->current.kid) == 0) {
			snprintf(err, errlen,
			         "auth.jwt_previous_key_id: must differ from jwt_key_id");
			goto fail;
		}
	}
	kiln_strlcpy(keys->issuer, cfg->issuer, sizeof(keys->issuer));
	kiln_strlcpy(keys->audience, cfg->audience, sizeof(keys->audience));
	keys->leeway_s = jwt_leeway(cfg->leeway_ms / 1000);
	return 0;
fail:
	OPENSSL_cleanse(keys, sizeof(*keys));
	return -1;
}

/* HMAC-SHA256. Returns 0, or -1 when OpenSSL fails (then mac is unusable). */
static int jwt_hmac(const unsigned char *key, size_t klen, const void *input, size_t ilen,
                    unsigned char mac[JWT_SIG_LEN])
{
	unsigned int maclen = 0;

	if (klen > KILN_CFG_STR_MAX ||
	    HMAC(EVP_sha256(), key, (int)klen, input, ilen, mac, &maclen) == NULL ||
	    maclen != JWT_SIG_LEN)
		return -1;
	return 0;
}

void kiln_jwt_hs256(const unsigned char *key, size_t klen, const char *input, size_t ilen,
                    unsigned char mac[32])
{
	/* A failure leaves an all-zero MAC; verify never relies on this
	 * wrapper, it checks jwt_hmac's result itself. */
	if (jwt_hmac(key, klen, input, ilen, mac) < 0)
		memset(mac, 0, JWT_SIG_LEN);
}

/* Append the base64url of p to tok at *pos. Returns 0, or -1 when full. */
static int jwt_put_b64(char *tok, size_t toklen, size_t *pos, const void *p, size_t n)
{
	long w = kiln_b64url_encode(p, n, tok + *pos, toklen - *pos);

	if (w < 0)
		return -1;
	*pos += (size_t)w;
	return 0;
}

static int jwt_build_json(struct kiln_buf *h, struct kiln_buf *p, const struct kiln_jwt_keys *keys,
                          const struct kiln_jwt_claims *c)
{
	int rc = 0;

	rc |= kiln_buf_adds(h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"");
	rc |= kiln_buf_add_json_str(h, keys->current.kid, strnlen(keys->current.kid, 64));
	rc |= kiln_buf_adds(h, "\"}");
	rc |= kiln_buf_adds(p, "{\"iss\":\"");
	rc |= kiln_buf_add_json_str(p, keys->issuer, strnlen(keys->issuer, sizeof(keys->issuer)));
	rc |= kiln_buf_adds(p, "\",\"aud\":\"");
	rc |= kiln_buf_add_json_str(p, keys->audience,
	                            strnlen(keys->audience, sizeof(keys->audience)));
	rc |= kiln_buf_printf(p,
	                      "\",\"sub\":\"%lld\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,"
	                      "\"sv\":%lld,\"sid\":%lld,\"role\":\"%s\"}",
	                      (long long)c->sub, (long long)c->iat, (long long)c->iat,
	                      (long long)c->exp, (long long)c->sv, (long long)c->sid, c->role);
	return rc ? -1 : 0;
}

/* Also returns -1 for claims that verify would refuse (sub or sid < 1,
 * sv < 0, a role not of 1..15 [a-z]) and without a current key: kiln never
 * issues a token it would not accept. */
int kiln_jwt_sign(const struct kiln_jwt_keys *keys, const struct kiln_jwt_claims *c, char *out,
                  size_t outlen)
{
	char tok[KILN_JWT_MAX + 1];
	unsigned char mac[JWT_SIG_LEN];
	struct kiln_buf h, p;
	size_t pos = 0;
	int rc = -1;

	if (keys->current.len == 0 || keys->current.len > sizeof(keys->current.key) ||
	    !jwt_kid_valid(keys->current.kid) || c->sub < 1 || c->sid < 1 || c->sv < 0 ||
	    !jwt_role_valid(c->role, strnlen(c->role, sizeof(c->role))))
		return -1;
	kiln_buf_init(&h);
	kiln_buf_init(&p);
	if (jwt_build_json(&h, &p, keys, c) < 0 ||
	    jwt_put_b64(tok, sizeof(tok), &pos, h.data, h.len) < 0 || pos + 1 >= sizeof(tok))
		goto out;
	tok[pos++] = '.';
	if (jwt_put_b64(tok, sizeof(tok), &pos, p.data, p.len) < 0 || pos + 1 >= sizeof(tok) ||
	    jwt_hmac(keys->current.key, keys->current.len, tok, pos, mac) < 0)
		goto out;
	tok[pos++] = '.';
	if (jwt_put_b64(tok, sizeof(tok), &pos, mac, sizeof(mac)) < 0 || pos >= outlen)
		goto out;
	memcpy(out, tok, pos + 1);
	rc = (int)pos;
out:
	kiln_buf_free(&h);
	kiln_buf_free(&p);
	return rc;
}

/* Split token at exactly two dots and decode each part into dec. Returns 0,
 * or KILN_JWT_MALFORMED. */
static int jwt_split(const char *token, size_t len, unsigned char *dec, size_t declen,
                     struct jwt_parts *p)
{
	const char *d1, *d2, *end = token + len;
	long n1, n2, n3;

	d1 = memchr(token, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
		return KILN_JWT_MALFORMED;
	n1 = kiln_b64url_decode(token, (size_t)(d1 - token), dec, declen);
	if (n1 < 0)
		return KILN_JWT_MALFORMED;
	n2 = kiln_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), dec + n1, declen - (size_t)n1);
	if (n2 < 0)
		return KILN_JWT_MALFORMED;
	n3 = kiln_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), dec + n1 + n2,
	                        declen - (size_t)n1 - (size_t)n2);
	if (n3 < 0)
		return KILN_JWT_MALFORMED;
	p->signed_len = (size_t)(d2 - token);
	p->hdr = dec;
	p->hlen = (size_t)n1;
	p->pl = dec + n1;
	p->plen = (size_t)n2;
	p->sig = dec + n1 + n2;
	p->slen = (size_t)n3;
	return 0;
}

/* Members of the JSON object text s at its top level, or -1 when a string
 * anywhere contains the escape \u0000. json-c keeps only the last of
 * duplicate names and cuts names at an escaped NUL, so comparing this count
 * with json-c's is how duplicates (also spelled differently, as "\u0061lg"
 * and "alg") are found. s is already known to be valid JSON. */
static long jwt_count_members(const unsigned char *s, size_t n)
{
	long members = 0;
	int depth = 0, in_str = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '"')
				in_str = 0;
			else if (s[i] == '\\' && i + 1 < n && s[++i] == 'u' && i + 4 < n &&
			         memcmp(s + i + 1, "0000", 4) == 0)
				return -1;
			continue;
		}
		if (s[i] == '"')
			in_str = 1;
		else if (s[i] == '{' || s[i] == '[')
			depth++;
		else if (s[i] == '}' || s[i] == ']')
			depth--;
		else if (s[i] == ':' && depth == 1)
			members++;
	}
	return members;
}

/* Parse a decoded part that must be a JSON object without duplicate member
 * names. Returns the object (json_object_put it), or NULL. */
static json_object *jwt_parse_object(const unsigned char *s, size_t n)
{
	char err[64];
	json_object *o = kiln_json_parse((const char *)s, n, JWT_JSON_DEPTH, err, sizeof(err));

	if (o == NULL)
		return NULL;
	if (!json_object_is_type(o, json_type_object) ||
	    jwt_count_members(s, n) != (long)json_object_object_length(o)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* The string member name of o, without embedded NUL. Returns 0, or -1. */
static int jwt_str(json_object *o, const char *name, const char **s, size_t *len)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return strlen(*s) == *len ? 0 : -1;
}

static int jwt_str_eq(const char *s, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(s, want, len) == 0;
}

/* The key the header asks for. alg is pinned before anything else so no
 * other algorithm (above all "none") ever reaches signature code. */
static int jwt_check_header(const struct kiln_jwt_keys *keys, json_object *hdr,
                            const struct kiln_jwt_key **key)
{
	const struct kiln_jwt_key *cand[2] = {&keys->current, &keys->previous};
	const char *s;
	size_t len, i;

	if (jwt_str(hdr, "alg", &s, &len) < 0 || !jwt_str_eq(s, len, "HS256"))
		return KILN_JWT_BAD_ALG;
	/* RFC 7515 §4.1.11: extensions listed in crit must be understood; kiln
	 * understands none. */
	if (json_object_object_get_ex(hdr, "crit", NULL))
		return KILN_JWT_MALFORMED;
	if (jwt_str(hdr, "kid", &s, &len) < 0)
		return KILN_JWT_UNKNOWN_KID;
	for (i = 0; i < KILN_ARRAY_LEN(cand); i++) {
		if (cand[i]->len > 0 && cand[i]->len <= sizeof(cand[i]->key) &&
		    cand[i]->kid[0] != '\0' && jwt_str_eq(s, len, cand[i]->kid)) {
			*key = cand[i];
			return KILN_JWT_OK;
		}
	}
	return KILN_JWT_UNKNOWN_KID;
}

static int jwt_check_signature(const struct kiln_jwt_key *key, const char *token,
                               const struct jwt_parts *p)
{
	unsigned char mac[JWT_SIG_LEN];

	if (p->slen != JWT_SIG_LEN || jwt_hmac(key->key, key->len, token, p->signed_len, mac) < 0 ||
	    CRYPTO_memcmp(mac, p->sig, JWT_SIG_LEN) != 0)
		return KILN_JWT_BAD_SIGNATURE;
	return KILN_JWT_OK;
}

/* An integer member (a JSON number without fraction or exponent). */
static int jwt_int(json_object *o, const char *name, int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	/* kiln_json_parse refuses integers beyond int64; keep json-c's
	 * saturation from ever passing for a value. */
	if (*out == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return -1;
	return 0;
}

static int jwt_check_audience(const struct kiln_jwt_keys *keys, json_object *pl)
{
	json_object *aud, *e;
	const char *s;
	size_t i, n;
	int found = 0;

	if (!json_object_object_get_ex(pl, "aud", &aud))
		return KILN_JWT_MISSING_CLAIM;
	if (json_object_is_type(aud, json_type_string)) {
		s = json_object_get_string(aud);
		n = (size_t)json_object_get_string_len(aud);
		return jwt_str_eq(s, n, keys->audience) ? KILN_JWT_OK : KILN_JWT_BAD_AUDIENCE;
	}
	if (!json_object_is_type(aud, json_type_array))
		return KILN_JWT_MISSING_CLAIM;
	for (i = 0; i < json_object_array_length(aud); i++) {
		e = json_object_array_get_idx(aud, i);
		if (!json_object_is_type(e, json_type_string))
			return KILN_JWT_MISSING_CLAIM;
		s = json_object_get_string(e);
		n = (size_t)json_object_get_string_len(e);
		found |= jwt_str_eq(s, n, keys->audience);
	}
	return found ? KILN_JWT_OK : KILN_JWT_BAD_AUDIENCE;
}

/* a + b for b >= 0, saturating, so exp near INT64_MAX cannot wrap. */
static int64_t jwt_add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int jwt_check_times(const struct kiln_jwt_keys *keys, json_object *pl, int64_t now,
                           struct kiln_jwt_claims *c)
{
	int64_t leeway = jwt_leeway(keys->leeway_s), nbf;

	if (jwt_int(pl, "exp", &c->exp) < 0)
		return KILN_JWT_MISSING_CLAIM;
	if (now > jwt_add_sat(c->exp, leeway))
		return KILN_JWT_EXPIRED;
	if (json_object_object_get_ex(pl, "nbf", NULL)) {
		if (jwt_int(pl, "nbf", &nbf) < 0)
			return KILN_JWT_MISSING_CLAIM;
		if (jwt_add_sat(now, leeway) < nbf)
			return KILN_JWT_NOT_YET_VALID;
	}
	if (jwt_int(pl, "iat", &c->iat) < 0)
		return KILN_JWT_MISSING_CLAIM;
	if (c->iat > jwt_add_sat(now, leeway))
		return KILN_JWT_NOT_YET_VALID;
	return KILN_JWT_OK;
}

/* sub is the canonical decimal string of a positive int64 (no sign, no
 * leading zero), so one user id has one spelling. */
static int jwt_check_subject(json_object *pl, struct kiln_jwt_claims *c)
{
	const char *s;
	size_t len, i;

	if (jwt_str(pl, "sub", &s, &len) < 0 || len == 0 || len > 19 || s[0] == '0')
		return KILN_JWT_MISSING_CLAIM;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return KILN_JWT_MISSING_CLAIM;
	}
	if (kiln_parse_int(s, 1, INT64_MAX, &c->sub) < 0)
		return KILN_JWT_MISSING_CLAIM;
	if (jwt_int(pl, "sv", &c->sv) < 0 || c->sv < 0 || jwt_int(pl, "sid", &c->sid) < 0 ||
	    c->sid < 1)
		return KILN_JWT_MISSING_CLAIM;
	if (jwt_str(pl, "role", &s, &len) < 0 || !jwt_role_valid(s, len))
		return KILN_JWT_MISSING_CLAIM;
	memcpy(c->role, s, len);
	c->role[len] = '\0';
	return KILN_JWT_OK;
}

static int jwt_check_claims(const struct kiln_jwt_keys *keys, json_object *pl, int64_t now,
                            struct kiln_jwt_claims *c)
{
	const char *s;
	size_t len;
	int rc;

	if (jwt_str(pl, "iss", &s, &len) < 0)
		return KILN_JWT_MISSING_CLAIM;
	if (!jwt_str_eq(s, len, keys->issuer))
		return KILN_JWT_BAD_ISSUER;
	rc = jwt_check_audience(keys, pl);
	if (rc == KILN_JWT_OK)
		rc = jwt_check_times(keys, pl, now, c);
	if (rc == KILN_JWT_OK)
		rc = jwt_check_subject(pl, c);
	return rc;
}

int kiln_jwt_verify(const struct kiln_jwt_keys *keys, const char *token, size_t len, int64_t now_s,
                    struct kiln_jwt_claims *out)
{
	unsigned char dec[KILN_JWT_MAX];
	const struct kiln_jwt_key *key = NULL;
	struct kiln_jwt_claims c;
	struct jwt_parts p;
	json_object *hdr = NULL, *pl = NULL;
	int rc;

	if (token == NULL || len == 0 || len > KILN_JWT_MAX)
		return KILN_JWT_MALFORMED;
	memset(&c, 0, sizeof(c));
	rc = jwt_split(token, len, dec, sizeof(dec), &p);
	if (rc != KILN_JWT_OK)
		return rc;
	hdr = jwt_parse_object(p.hdr, p.hlen);
	if (hdr == NULL)
		return KILN_JWT_MALFORMED;
	rc = jwt_check_header(keys, hdr, &key);
	json_object_put(hdr);
	if (rc == KILN_JWT_OK)
		rc = jwt_check_signature(key, token, &p);
	if (rc != KILN_JWT_OK)
		return rc;
	pl = jwt_parse_object(p.pl, p.plen);
	if (pl == NULL)
		return KILN_JWT_MALFORMED;
	rc = jwt_check_claims(keys, pl, now_s, &c);
	json_object_put(pl);
	if (rc == KILN_JWT_OK && out != NULL)
		*out = c;
	return rc;
}

const char *kiln_jwt_strerror(int err)
{
	static const char *const text[] = {
	    "ok",
	    "malformed token",
	    "unsupported algorithm",
	    "unknown key id",
	    "bad signature",
	    "token expired",
	    "token not yet valid",
	    "wrong issuer",
	    "wrong audience",
	    "missing or invalid claim",
	};

	if (err > 0 || (size_t)-err >= KILN_ARRAY_LEN(text))
		return "unknown error";
	return text[-err];
}
