/* libFuzzer harness for kiln_jwt_verify with fixed keys and a fixed clock.
 *
 * The first byte picks the mode:
 *   'c' / 'p'  the rest is "<header JSON>\n<payload JSON>": it is encoded and
 *              signed with the current / previous key here, so mutations get
 *              past the signature and exercise the header and claim checks;
 *   otherwise  the rest is a token, verified as is (structure, base64url,
 *              alg pinning, kid lookup, signature).
 * Every accepted token must hold valid claims and survive a re-sign/verify
 * round trip; the token is copied to an exact-size buffer so any read past
 * len is caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/jwt.h"
#include "kiln/util.h"

#define FUZZ_NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct kiln_jwt_keys *fuzz_keys(void)
{
	static struct kiln_jwt_keys keys;
	static int ready;
	struct kiln_cfg_auth cfg;
	char err[128];

	if (ready)
		return &keys;
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.issuer, "https://kiln.test");
	strcpy(cfg.audience, "kiln-api");
	strcpy(cfg.jwt_key, "fuzz-current-key-0123456789abcdefghij");
	strcpy(cfg.jwt_key_id, "k2");
	strcpy(cfg.jwt_previous_key, "fuzz-previous-key-0123456789abcdefghi");
	strcpy(cfg.jwt_previous_key_id, "k1");
	cfg.leeway_ms = 30000;
	if (kiln_jwt_keys_from_config(&keys, &cfg, err, sizeof(err)) < 0)
		abort();
	ready = 1;
	return &keys;
}

/* What any accepted token must satisfy. */
static void check_accepted(const struct kiln_jwt_keys *keys, const struct kiln_jwt_claims *c)
{
	struct kiln_jwt_claims again;
	char tok[KILN_JWT_MAX + 1];
	size_t i, n = strnlen(c->role, sizeof(c->role));
	int len;

	if (c->sub < 1 || c->sv < 0 || c->sid < 1 || n == 0 || n >= sizeof(c->role))
		abort();
	for (i = 0; i < n; i++) {
		if (c->role[i] < 'a' || c->role[i] > 'z')
			abort();
	}
	if (c->iat > FUZZ_NOW + keys->leeway_s ||
	    (c->exp < INT64_MAX - keys->leeway_s && FUZZ_NOW > c->exp + keys->leeway_s))
		abort();
	/* kiln re-issues what it accepted, and accepts what it issues. */
	len = kiln_jwt_sign(keys, c, tok, sizeof(tok));
	if (len < 0 || kiln_jwt_verify(keys, tok, (size_t)len, FUZZ_NOW, &again) != KILN_JWT_OK ||
	    memcmp(&again, c, sizeof(again)) != 0)
		abort();
}

static void verify_exact(const char *tok, size_t len)
{
	const struct kiln_jwt_keys *keys = fuzz_keys();
	struct kiln_jwt_claims c;
	char *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		return;
	memcpy(copy, tok, len);
	memset(&c, 0, sizeof(c));
	rc = kiln_jwt_verify(keys, copy, len, FUZZ_NOW, &c);
	if (rc > 0 || rc < KILN_JWT_MISSING_CLAIM || kiln_jwt_strerror(rc) == NULL)
		abort();
	if (len > KILN_JWT_MAX && rc != KILN_JWT_MALFORMED)
		abort();
	if (rc == KILN_JWT_OK)
		check_accepted(keys, &c);
	free(copy);
}

/* base64url decoding is canonical: what decodes re-encodes to itself. */
static void check_b64url(const uint8_t *data, size_t size)
{
	unsigned char dec[KILN_JWT_MAX];
	char enc[KILN_JWT_MAX * 2];
	long n;

	if (size > KILN_JWT_MAX)
		return;
	n = kiln_b64url_decode((const char *)data, size, dec, sizeof(dec));
	if (n < 0)
		return;
	if (kiln_b64url_encode(dec, (size_t)n, enc, sizeof(enc)) != (long)size ||
	    memcmp(enc, data, size) != 0)
		abort();
}

/* Encode and sign "<header>\n<payload>" with key, then verify it. */
static void sign_and_verify(const struct kiln_jwt_key *key, const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl ? (size_t)(nl - data) : size, pos;
	unsigned char mac[32];
	char tok[KILN_JWT_MAX * 2];
	long n;

	n = kiln_b64url_encode(data, hlen, tok, sizeof(tok));
	if (n < 0)
		return;
	pos = (size_t)n;
	tok[pos++] = '.';
	if (nl != NULL) {
		n = kiln_b64url_encode(nl + 1, size - hlen - 1, tok + pos, sizeof(tok) - pos);
		if (n < 0)
			return;
		pos += (size_t)n;
	}
	kiln_jwt_hs256(key->key, key->len, tok, pos, mac);
	if (pos + 1 >= sizeof(tok))
		return;
	tok[pos++] = '.';
	n = kiln_b64url_encode(mac, sizeof(mac), tok + pos, sizeof(tok) - pos);
	if (n < 0)
		return;
	verify_exact(tok, pos + (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct kiln_jwt_keys *keys = fuzz_keys();

	if (size == 0)
		return 0;
	if (data[0] == 'c') {
		sign_and_verify(&keys->current, data + 1, size - 1);
	} else if (data[0] == 'p') {
		sign_and_verify(&keys->previous, data + 1, size - 1);
	} else {
		verify_exact((const char *)data + 1, size - 1);
		check_b64url(data + 1, size - 1);
	}
	return 0;
}
