/* Unit tests for jwt: RFC 7515 A.1, sign/verify, every error code, key
 * configuration. Tokens with arbitrary headers and payloads are built here
 * (forge) and signed with the real keys, so each check is reached on its own
 * rather than hidden behind a bad signature. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/jwt.h"
#include "kiln/util.h"

#define KEY_CUR  "current-key-0123456789abcdefghijklmnop"
#define KEY_PREV "previous-key-0123456789abcdefghijklmno"
#define NOW      1700000000
#define LEEWAY   30

#define HDR_OK "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k2\"}"
#define ISS    "\"iss\":\"https://kiln.test\""
#define AUD    "\"aud\":\"kiln-api\""
#define TIMES  "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000600"
#define SUBJ   "\"sub\":\"42\",\"sv\":3,\"sid\":7,\"role\":\"user\""
#define PL_OK  "{" ISS "," AUD "," TIMES "," SUBJ "}"

static void cfg_init(struct kiln_cfg_auth *cfg, int with_prev)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->issuer, "https://kiln.test");
	strcpy(cfg->audience, "kiln-api");
	strcpy(cfg->jwt_key, KEY_CUR);
	strcpy(cfg->jwt_key_id, "k2");
	if (with_prev) {
		strcpy(cfg->jwt_previous_key, KEY_PREV);
		strcpy(cfg->jwt_previous_key_id, "k1");
	}
	cfg->leeway_ms = LEEWAY * 1000;
}

static void keys_init(struct kiln_jwt_keys *keys, int with_prev)
{
	struct kiln_cfg_auth cfg;
	char err[128];

	cfg_init(&cfg, with_prev);
	assert_int_equal(kiln_jwt_keys_from_config(keys, &cfg, err, sizeof(err)), 0);
}

/* "<b64 hdr>.<b64 pl>.<b64 HMAC under key>" into out; returns its length. */
static size_t forge(const char *key, const char *hdr, const char *pl, char *out, size_t outlen)
{
	unsigned char mac[32];
	long n;
	size_t pos;

	n = kiln_b64url_encode(hdr, strlen(hdr), out, outlen);
	assert_true(n >= 0);
	pos = (size_t)n;
	out[pos++] = '.';
	n = kiln_b64url_encode(pl, strlen(pl), out + pos, outlen - pos);
	assert_true(n >= 0);
	pos += (size_t)n;
	kiln_jwt_hs256((const unsigned char *)key, strlen(key), out, pos, mac);
	out[pos++] = '.';
	n = kiln_b64url_encode(mac, sizeof(mac), out + pos, outlen - pos);
	assert_true(n >= 0);
	return pos + (size_t)n;
}

static int verify_forged(const struct kiln_jwt_keys *keys, const char *key, const char *hdr,
                         const char *pl, int64_t now)
{
	char tok[8192];
	struct kiln_jwt_claims c;
	size_t len = forge(key, hdr, pl, tok, sizeof(tok));

	return kiln_jwt_verify(keys, tok, len, now, &c);
}

static void test_rfc7515_a1(void **state)
{
	static const char k[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0"
	                        "iPS4hcgUuTwjAzZr1Z9CAow";
	static const char input[] =
	    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkz"
	    "ODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
	static const char want[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	unsigned char key[64], mac[32], wantmac[32];
	char enc[64];

	(void)state;
	assert_int_equal(kiln_b64url_decode(k, strlen(k), key, sizeof(key)), 64);
	kiln_jwt_hs256(key, sizeof(key), input, strlen(input), mac);
	assert_int_equal(kiln_b64url_encode(mac, sizeof(mac), enc, sizeof(enc)), 43);
	assert_string_equal(enc, want);
	assert_int_equal(kiln_b64url_decode(want, strlen(want), wantmac, sizeof(wantmac)), 32);
	assert_memory_equal(mac, wantmac, 32);
}

static void test_sign_verify_round_trip(void **state)
{
	struct kiln_jwt_claims in = {.sub = 42, .iat = NOW, .exp = NOW + 600, .sv = 3, .sid = 7},
	                       out;
	struct kiln_jwt_keys keys;
	unsigned char part[512];
	char tok[KILN_JWT_MAX + 1];
	const char *d1, *d2;
	int len;
	long n;

	(void)state;
	keys_init(&keys, 1);
	strcpy(in.role, "admin");
	len = kiln_jwt_sign(&keys, &in, tok, sizeof(tok));
	assert_true(len > 0);
	assert_int_equal(strlen(tok), (size_t)len);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(kiln_jwt_verify(&keys, tok, (size_t)len, NOW, &out), KILN_JWT_OK);
	assert_int_equal(out.sub, 42);
	assert_int_equal(out.iat, NOW);
	assert_int_equal(out.exp, NOW + 600);
	assert_int_equal(out.sv, 3);
	assert_int_equal(out.sid, 7);
	assert_string_equal(out.role, "admin");

	/* The exact header and payload bytes. */
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	n = kiln_b64url_decode(tok, (size_t)(d1 - tok), part, sizeof(part) - 1);
	assert_true(n > 0);
	part[n] = '\0';
	assert_string_equal((char *)part, HDR_OK);
	n = kiln_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), part, sizeof(part) - 1);
	assert_true(n > 0);
	part[n] = '\0';
	assert_string_equal((char *)part,
	                    "{\"iss\":\"https://kiln.test\",\"aud\":\"kiln-api\",\"sub\":\"42\","
	                    "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000600,\"sv\":3,"
	                    "\"sid\":7,\"role\":\"admin\"}");
	assert_int_equal(strlen(d2 + 1), 43);
}

/* The token is a length, not a C string: bytes after len are not read. */
static void test_verify_ignores_bytes_after_len(void **state)
{
	struct kiln_jwt_keys keys;
	char tok[KILN_JWT_MAX + 8];
	size_t len;

	(void)state;
	keys_init(&keys, 0);
	len = forge(KEY_CUR, HDR_OK, PL_OK, tok, sizeof(tok));
	memcpy(tok + len, ".xx=", 5);
	assert_int_equal(kiln_jwt_verify(&keys, tok, len, NOW, NULL), KILN_JWT_OK);
}

static void test_sign_refuses(void **state)
{
	struct kiln_jwt_claims c = {.sub = 1, .iat = NOW, .exp = NOW + 600, .sv = 0, .sid = 1};
	struct kiln_jwt_keys keys, nokey;
	char tok[KILN_JWT_MAX + 1];
	int len;

	(void)state;
	keys_init(&keys, 0);
	strcpy(c.role, "user");
	len = kiln_jwt_sign(&keys, &c, tok, sizeof(tok));
	assert_true(len > 0);
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, (size_t)len), -1);
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, (size_t)len + 1), len);
	memset(&nokey, 0, sizeof(nokey));
	assert_int_equal(kiln_jwt_sign(&nokey, &c, tok, sizeof(tok)), -1);
	c.sub = 0;
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, sizeof(tok)), -1);
	c.sub = 1;
	c.sid = 0;
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, sizeof(tok)), -1);
	c.sid = 1;
	c.sv = -1;
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, sizeof(tok)), -1);
	c.sv = 0;
	strcpy(c.role, "Admin");
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, sizeof(tok)), -1);
	c.role[0] = '\0';
	assert_int_equal(kiln_jwt_sign(&keys, &c, tok, sizeof(tok)), -1);
}

/* Issuer text that needs JSON escaping still round-trips. */
static void test_sign_escapes_issuer(void **state)
{
	struct kiln_jwt_claims c = {.sub = 9, .iat = NOW, .exp = NOW + 60, .sv = 0, .sid = 2}, out;
	struct kiln_jwt_keys keys;
	char tok[KILN_JWT_MAX + 1];
	int len;

	(void)state;
	keys_init(&keys, 0);
	strcpy(keys.issuer, "a\"b\\c");
	strcpy(c.role, "user");
	len = kiln_jwt_sign(&keys, &c, tok, sizeof(tok));
	assert_true(len > 0);
	assert_int_equal(kiln_jwt_verify(&keys, tok, (size_t)len, NOW, &out), KILN_JWT_OK);
}

static void test_forged_baseline_verifies(void **state)
{
	struct kiln_jwt_keys keys;

	(void)state;
	keys_init(&keys, 1);
	/* If this failed, every rejection below would prove nothing. */
	assert_int_equal(verify_forged(&keys, KEY_CUR, HDR_OK, PL_OK, NOW), KILN_JWT_OK);
}

/* Change one character inside part (0 header, 1 payload, 2 signature) to
 * another base64url character; the sixth is never a part's last, so the
 * encoding stays canonical and only the signature can object. */
static void tamper(char *tok, int part)
{
	char *p = tok;
	int i;

	for (i = 0; i < part; i++)
		p = strchr(p, '.') + 1;
	p += 5;
	*p = *p == 'A' ? 'Q' : 'A';
}

static void test_tampering_is_bad_signature(void **state)
{
	struct kiln_jwt_keys keys;
	char tok[KILN_JWT_MAX + 1], copy[KILN_JWT_MAX + 1];
	size_t len;

	(void)state;
	keys_init(&keys, 0);
	len = forge(KEY_CUR, HDR_OK, PL_OK, tok, sizeof(tok));
	memcpy(copy, tok, len + 1);
	tamper(copy, 1);
	assert_int_equal(kiln_jwt_verify(&keys, copy, len, NOW, NULL), KILN_JWT_BAD_SIGNATURE);
	memcpy(copy, tok, len + 1);
	tamper(copy, 2);
	assert_int_equal(kiln_jwt_verify(&keys, copy, len, NOW, NULL), KILN_JWT_BAD_SIGNATURE);
	/* a signature of the wrong length (40 characters: 30 bytes) */
	assert_int_equal(kiln_jwt_verify(&keys, tok, len - 3, NOW, NULL), KILN_JWT_BAD_SIGNATURE);
	/* the signature is checked before any claim: expired and forged says forged */
	memcpy(copy, tok, len + 1);
	tamper(copy, 2);
	assert_int_equal(kiln_jwt_verify(&keys, copy, len, NOW + 100000, NULL),
	                 KILN_JWT_BAD_SIGNATURE);
	/* the right kid with the wrong key */
	assert_int_equal(verify_forged(&keys, KEY_PREV, HDR_OK, PL_OK, NOW),
	                 KILN_JWT_BAD_SIGNATURE);
}

static void test_alg_none_rejected(void **state)
{
	struct kiln_jwt_keys keys;
	char tok[KILN_JWT_MAX + 1];
	size_t len;

	(void)state;
	keys_init(&keys, 0);
	len = forge(KEY_CUR, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k2\"}", PL_OK, tok,
	            sizeof(tok));
	/* the unsecured form: empty signature after the second dot */
	len = (size_t)(strrchr(tok, '.') - tok) + 1;
	tok[len] = '\0';
	assert_int_equal(kiln_jwt_verify(&keys, tok, len, NOW, NULL), KILN_JWT_BAD_ALG);
}

static const struct {
	const char *hdr;
	int want;
} header_cases[] = {
    {"{\"alg\":\"HS512\",\"typ\":\"JWT\",\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"alg\":\"hs256\",\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"alg\":\"HS256 \",\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"alg\":\"RS256\",\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"alg\":[\"HS256\"],\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"typ\":\"JWT\",\"kid\":\"k2\"}", KILN_JWT_BAD_ALG},
    {"{\"alg\":\"HS256\",\"kid\":\"k9\"}", KILN_JWT_UNKNOWN_KID},
    {"{\"alg\":\"HS256\",\"kid\":\"\"}", KILN_JWT_UNKNOWN_KID},
    {"{\"alg\":\"HS256\",\"kid\":2}", KILN_JWT_UNKNOWN_KID},
    {"{\"alg\":\"HS256\"}", KILN_JWT_UNKNOWN_KID},
    /* json-c keeps the last duplicate: both orders must fail */
    {"{\"alg\":\"HS256\",\"alg\":\"none\",\"kid\":\"k2\"}", KILN_JWT_MALFORMED},
    {"{\"alg\":\"none\",\"alg\":\"HS256\",\"kid\":\"k2\"}", KILN_JWT_MALFORMED},
    {"{\"alg\":\"none\",\"\\u0061lg\":\"HS256\",\"kid\":\"k2\"}", KILN_JWT_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k2\",\"kid\":\"k2\"}", KILN_JWT_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k2\\u0000x\"}", KILN_JWT_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k2\",\"crit\":[\"b64\"]}", KILN_JWT_MALFORMED},
    {"[\"HS256\"]", KILN_JWT_MALFORMED},
    {"\"HS256\"", KILN_JWT_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k2\"", KILN_JWT_MALFORMED},
    {"", KILN_JWT_MALFORMED},
    /* unknown members are ignored; a nested one counts once */
    {"{\"alg\":\"HS256\",\"kid\":\"k2\",\"x\":{\"a\":1,\"b\":2}}", KILN_JWT_OK},
};

static void test_header_checks(void **state)
{
	struct kiln_jwt_keys keys;
	size_t i;
	int rc;

	(void)state;
	keys_init(&keys, 0);
	for (i = 0; i < KILN_ARRAY_LEN(header_cases); i++) {
		rc = verify_forged(&keys, KEY_CUR, header_cases[i].hdr, PL_OK, NOW);
		if (rc != header_cases[i].want)
			print_message("header %zu: %s\n", i, header_cases[i].hdr);
		assert_int_equal(rc, header_cases[i].want);
	}
}

static void test_previous_key_rotation(void **state)
{
	static const char hdr_prev[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
	struct kiln_jwt_keys with, without;

	(void)state;
	keys_init(&with, 1);
	keys_init(&without, 0);
	assert_int_equal(verify_forged(&with, KEY_PREV, hdr_prev, PL_OK, NOW), KILN_JWT_OK);
	assert_int_equal(verify_forged(&without, KEY_PREV, hdr_prev, PL_OK, NOW),
	                 KILN_JWT_UNKNOWN_KID);
	/* the previous kid with the current key */
	assert_int_equal(verify_forged(&with, KEY_CUR, hdr_prev, PL_OK, NOW),
	                 KILN_JWT_BAD_SIGNATURE);
}

/* A kid whose key is empty never matches: an HMAC under an empty key is
 * one anybody can compute. */
static void test_kid_without_key(void **state)
{
	static const char hdr_prev[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
	struct kiln_jwt_keys keys;

	(void)state;
	keys_init(&keys, 0);
	strcpy(keys.previous.kid, "k1");
	assert_int_equal(verify_forged(&keys, "", hdr_prev, PL_OK, NOW), KILN_JWT_UNKNOWN_KID);
	keys.current.len = 0;
	assert_int_equal(verify_forged(&keys, "", HDR_OK, PL_OK, NOW), KILN_JWT_UNKNOWN_KID);
}

static const struct {
	const char *name, *pl;
	int64_t now;
	int want;
} claim_cases[] = {
    {"exp within leeway", PL_OK, NOW + 600 + LEEWAY, KILN_JWT_OK},
    {"exp beyond leeway", PL_OK, NOW + 600 + LEEWAY + 1, KILN_JWT_EXPIRED},
    {"exp at int64 max",
     "{" ISS "," AUD ",\"iat\":1700000000,\"exp\":9223372036854775807," SUBJ "}", NOW, KILN_JWT_OK},
    {"nbf within leeway",
     "{" ISS "," AUD ",\"iat\":1700000000,\"nbf\":1700000030,\"exp\":1700000600," SUBJ "}", NOW,
     KILN_JWT_OK},
    {"nbf in future",
     "{" ISS "," AUD ",\"iat\":1700000000,\"nbf\":1700000031,\"exp\":1700000600," SUBJ "}", NOW,
     KILN_JWT_NOT_YET_VALID},
    {"nbf absent", "{" ISS "," AUD ",\"iat\":1700000000,\"exp\":1700000600," SUBJ "}", NOW,
     KILN_JWT_OK},
    {"nbf not integer",
     "{" ISS "," AUD ",\"iat\":1700000000,\"nbf\":\"0\",\"exp\":1700000600," SUBJ "}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"iat in future", "{" ISS "," AUD ",\"iat\":1700000031,\"exp\":1700000600," SUBJ "}", NOW,
     KILN_JWT_NOT_YET_VALID},
    {"iat missing", "{" ISS "," AUD ",\"exp\":1700000600," SUBJ "}", NOW, KILN_JWT_MISSING_CLAIM},
    {"exp missing", "{" ISS "," AUD ",\"iat\":1700000000," SUBJ "}", NOW, KILN_JWT_MISSING_CLAIM},
    {"exp double", "{" ISS "," AUD ",\"iat\":1700000000,\"exp\":1.7000006e9," SUBJ "}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"exp string", "{" ISS "," AUD ",\"iat\":1700000000,\"exp\":\"1700000600\"," SUBJ "}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"wrong iss", "{\"iss\":\"https://evil.test\"," AUD "," TIMES "," SUBJ "}", NOW,
     KILN_JWT_BAD_ISSUER},
    {"iss missing", "{" AUD "," TIMES "," SUBJ "}", NOW, KILN_JWT_MISSING_CLAIM},
    {"iss number", "{\"iss\":1," AUD "," TIMES "," SUBJ "}", NOW, KILN_JWT_MISSING_CLAIM},
    {"wrong aud", "{" ISS ",\"aud\":\"other\"," TIMES "," SUBJ "}", NOW, KILN_JWT_BAD_AUDIENCE},
    {"aud array", "{" ISS ",\"aud\":[\"other\",\"kiln-api\"]," TIMES "," SUBJ "}", NOW,
     KILN_JWT_OK},
    {"aud array without us", "{" ISS ",\"aud\":[\"other\"]," TIMES "," SUBJ "}", NOW,
     KILN_JWT_BAD_AUDIENCE},
    {"aud empty array", "{" ISS ",\"aud\":[]," TIMES "," SUBJ "}", NOW, KILN_JWT_BAD_AUDIENCE},
    {"aud array with number", "{" ISS ",\"aud\":[\"kiln-api\",1]," TIMES "," SUBJ "}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"aud missing", "{" ISS "," TIMES "," SUBJ "}", NOW, KILN_JWT_MISSING_CLAIM},
    {"sub missing", "{" ISS "," AUD "," TIMES ",\"sv\":3,\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sv missing", "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sid missing", "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"role missing", "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":7}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sub number", "{" ISS "," AUD "," TIMES ",\"sub\":42,\"sv\":3,\"sid\":7,\"role\":\"user\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"sub not decimal",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"12a\",\"sv\":3,\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sub negative",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"-1\",\"sv\":3,\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sub zero", "{" ISS "," AUD "," TIMES ",\"sub\":\"0\",\"sv\":3,\"sid\":7,\"role\":\"user\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"sub leading zero",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"042\",\"sv\":3,\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sub beyond int64",
     "{" ISS "," AUD "," TIMES
     ",\"sub\":\"9223372036854775808\",\"sv\":3,\"sid\":7,\"role\":\"user\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"sub int64 max",
     "{" ISS "," AUD "," TIMES
     ",\"sub\":\"9223372036854775807\",\"sv\":3,\"sid\":7,\"role\":\"user\"}",
     NOW, KILN_JWT_OK},
    {"sv negative",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":-1,\"sid\":7,\"role\":\"user\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"sid zero", "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":0,\"role\":\"user\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"role uppercase",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":7,\"role\":\"User\"}", NOW,
     KILN_JWT_MISSING_CLAIM},
    {"role empty", "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":7,\"role\":\"\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"role 16 bytes",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":7,\"role\":\"abcdefghijklmnop\"}",
     NOW, KILN_JWT_MISSING_CLAIM},
    {"role 15 bytes",
     "{" ISS "," AUD "," TIMES ",\"sub\":\"42\",\"sv\":3,\"sid\":7,\"role\":\"abcdefghijklmno\"}",
     NOW, KILN_JWT_OK},
    {"duplicate sub", "{" ISS "," AUD "," TIMES "," SUBJ ",\"sub\":\"1\"}", NOW,
     KILN_JWT_MALFORMED},
    {"payload array", "[" PL_OK "]", NOW, KILN_JWT_MALFORMED},
    {"payload not JSON", "{" ISS "," AUD "," TIMES "," SUBJ "", NOW, KILN_JWT_MALFORMED},
};

static void test_claim_checks(void **state)
{
	struct kiln_jwt_keys keys;
	size_t i;
	int rc;

	(void)state;
	keys_init(&keys, 0);
	for (i = 0; i < KILN_ARRAY_LEN(claim_cases); i++) {
		rc = verify_forged(&keys, KEY_CUR, HDR_OK, claim_cases[i].pl, claim_cases[i].now);
		if (rc != claim_cases[i].want)
			print_message("claims: %s\n", claim_cases[i].name);
		assert_int_equal(rc, claim_cases[i].want);
	}
}

static void test_structure_checks(void **state)
{
	struct kiln_jwt_keys keys;
	char tok[KILN_JWT_MAX + 8], bad[KILN_JWT_MAX + 16];
	size_t len;
	char *d1;

	(void)state;
	keys_init(&keys, 0);
	len = forge(KEY_CUR, HDR_OK, PL_OK, tok, sizeof(tok));
	d1 = strchr(tok, '.');
	/* padding on the signature or on the header */
	snprintf(bad, sizeof(bad), "%s=", tok);
	assert_int_equal(kiln_jwt_verify(&keys, bad, len + 1, NOW, NULL), KILN_JWT_MALFORMED);
	snprintf(bad, sizeof(bad), "%.*s=%s", (int)(d1 - tok), tok, d1);
	assert_int_equal(kiln_jwt_verify(&keys, bad, len + 1, NOW, NULL), KILN_JWT_MALFORMED);
	/* an extra dot, a trailing dot, a missing part */
	snprintf(bad, sizeof(bad), "%s.%s", tok, "e30");
	assert_int_equal(kiln_jwt_verify(&keys, bad, strlen(bad), NOW, NULL), KILN_JWT_MALFORMED);
	snprintf(bad, sizeof(bad), "%s.", tok);
	assert_int_equal(kiln_jwt_verify(&keys, bad, strlen(bad), NOW, NULL), KILN_JWT_MALFORMED);
	assert_int_equal(kiln_jwt_verify(&keys, tok, (size_t)(strrchr(tok, '.') - tok), NOW, NULL),
	                 KILN_JWT_MALFORMED);
	assert_int_equal(kiln_jwt_verify(&keys, "..", 2, NOW, NULL), KILN_JWT_MALFORMED);
	assert_int_equal(kiln_jwt_verify(&keys, "", 0, NOW, NULL), KILN_JWT_MALFORMED);
	assert_int_equal(kiln_jwt_verify(&keys, NULL, 10, NOW, NULL), KILN_JWT_MALFORMED);
	/* standard base64 characters, whitespace, a non-canonical last character */
	memcpy(bad, tok, len + 1);
	bad[3] = '+';
	assert_int_equal(kiln_jwt_verify(&keys, bad, len, NOW, NULL), KILN_JWT_MALFORMED);
	memcpy(bad, tok, len + 1);
	bad[d1 - tok + 3] = ' ';
	assert_int_equal(kiln_jwt_verify(&keys, bad, len, NOW, NULL), KILN_JWT_MALFORMED);
	memcpy(bad, tok, len + 1);
	bad[len - 1] = (char)(bad[len - 1] + 1); /* sets one of the 2 unused bits */
	assert_int_equal(kiln_jwt_verify(&keys, bad, len, NOW, NULL), KILN_JWT_MALFORMED);
}

/* The longest accepted token is KILN_JWT_MAX bytes even when well signed. */
static void test_length_limit(void **state)
{
	struct kiln_jwt_keys keys;
	char pl[4096], pad[2048], tok[8192];
	size_t len = 0, prev = 0, n;

	(void)state;
	keys_init(&keys, 0);
	for (n = 1000; n < sizeof(pad); n++) {
		memset(pad, 'x', n);
		pad[n] = '\0';
		snprintf(pl, sizeof(pl), "{" ISS "," AUD "," TIMES "," SUBJ ",\"pad\":\"%s\"}",
		         pad);
		len = forge(KEY_CUR, HDR_OK, pl, tok, sizeof(tok));
		if (len > KILN_JWT_MAX)
			break;
		prev = len;
		assert_int_equal(kiln_jwt_verify(&keys, tok, len, NOW, NULL), KILN_JWT_OK);
	}
	assert_true(prev >= KILN_JWT_MAX - 2 && prev <= KILN_JWT_MAX);
	assert_true(len > KILN_JWT_MAX);
	assert_int_equal(kiln_jwt_verify(&keys, tok, len, NOW, NULL), KILN_JWT_MALFORMED);
}

static void test_keys_from_config(void **state)
{
	struct kiln_cfg_auth cfg;
	struct kiln_jwt_keys keys;
	char err[160];

	(void)state;
	cfg_init(&cfg, 1);
	assert_int_equal(kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)), 0);
	assert_string_equal(keys.current.kid, "k2");
	assert_int_equal(keys.current.len, strlen(KEY_CUR));
	assert_memory_equal(keys.current.key, KEY_CUR, strlen(KEY_CUR));
	assert_string_equal(keys.previous.kid, "k1");
	assert_int_equal(keys.previous.len, strlen(KEY_PREV));
	assert_string_equal(keys.issuer, "https://kiln.test");
	assert_string_equal(keys.audience, "kiln-api");
	assert_int_equal(keys.leeway_s, LEEWAY);

	cfg.leeway_ms = 120000;
	assert_int_equal(kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)), 0);
	assert_int_equal(keys.leeway_s, 60);
	cfg.leeway_ms = 1999;
	assert_int_equal(kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)), 0);
	assert_int_equal(keys.leeway_s, 1);

	/* a previous kid without a previous key is ignored */
	cfg_init(&cfg, 0);
	strcpy(cfg.jwt_previous_key_id, "k1");
	assert_int_equal(kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)), 0);
	assert_int_equal(keys.previous.len, 0);

	/* exactly 32 bytes is enough */
	strcpy(cfg.jwt_key, "0123456789abcdef0123456789abcdef");
	assert_int_equal(kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)), 0);
}

static void expect_config_error(struct kiln_cfg_auth *cfg, const char *words)
{
	struct kiln_jwt_keys keys;
	char err[160] = "";

	assert_int_equal(kiln_jwt_keys_from_config(&keys, cfg, err, sizeof(err)), -1);
	if (strstr(err, words) == NULL)
		print_message("error \"%s\" lacks \"%s\"\n", err, words);
	assert_non_null(strstr(err, words));
	/* the message names the key, never its value */
	assert_null(strstr(err, "0123456789"));
	assert_int_equal(keys.current.len, 0);
}

static void test_keys_from_config_errors(void **state)
{
	struct kiln_cfg_auth cfg;

	(void)state;
	cfg_init(&cfg, 1);
	cfg.jwt_key[0] = '\0';
	expect_config_error(&cfg, "jwt_key");
	cfg_init(&cfg, 1);
	strcpy(cfg.jwt_key, "0123456789abcdef0123456789abcde");
	expect_config_error(&cfg, "at least 32 bytes");
	cfg_init(&cfg, 1);
	cfg.jwt_key_id[0] = '\0';
	expect_config_error(&cfg, "jwt_key_id");
	cfg_init(&cfg, 1);
	strcpy(cfg.jwt_key_id, "k 2");
	expect_config_error(&cfg, "jwt_key_id");
	cfg_init(&cfg, 1);
	strcpy(cfg.jwt_key_id, "k\"2");
	expect_config_error(&cfg, "jwt_key_id");
	cfg_init(&cfg, 1);
	cfg.jwt_previous_key_id[0] = '\0';
	expect_config_error(&cfg, "jwt_previous_key_id");
	cfg_init(&cfg, 1);
	strcpy(cfg.jwt_previous_key_id, "k2");
	expect_config_error(&cfg, "must differ");
	cfg_init(&cfg, 1);
	strcpy(cfg.jwt_previous_key, "0123456789abcdef");
	expect_config_error(&cfg, "jwt_previous_key");
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_MALFORMED), "malformed token");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_BAD_ALG), "unsupported algorithm");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_UNKNOWN_KID), "unknown key id");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_BAD_SIGNATURE), "bad signature");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_EXPIRED), "token expired");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_NOT_YET_VALID), "token not yet valid");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_BAD_ISSUER), "wrong issuer");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_BAD_AUDIENCE), "wrong audience");
	assert_string_equal(kiln_jwt_strerror(KILN_JWT_MISSING_CLAIM), "missing or invalid claim");
	assert_string_equal(kiln_jwt_strerror(-10), "unknown error");
	assert_string_equal(kiln_jwt_strerror(1), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc7515_a1),
	    cmocka_unit_test(test_sign_verify_round_trip),
	    cmocka_unit_test(test_verify_ignores_bytes_after_len),
	    cmocka_unit_test(test_sign_refuses),
	    cmocka_unit_test(test_sign_escapes_issuer),
	    cmocka_unit_test(test_forged_baseline_verifies),
	    cmocka_unit_test(test_tampering_is_bad_signature),
	    cmocka_unit_test(test_alg_none_rejected),
	    cmocka_unit_test(test_header_checks),
	    cmocka_unit_test(test_previous_key_rotation),
	    cmocka_unit_test(test_kid_without_key),
	    cmocka_unit_test(test_claim_checks),
	    cmocka_unit_test(test_structure_checks),
	    cmocka_unit_test(test_length_limit),
	    cmocka_unit_test(test_keys_from_config),
	    cmocka_unit_test(test_keys_from_config_errors),
	    cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
