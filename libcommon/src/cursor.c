/* cursor: keyset-pagination cursors a client can carry but not forge.
 *
 * payload = version (1) | key count | count * 8-byte big-endian keys
 * tag     = HMAC-SHA256(cursor key, scope "\0" payload), first 16 bytes
 * text    = base64url(payload) "." base64url(tag)
 *
 * The NUL ends the scope, so scope "a" with payload "\1..." and scope "a\1"
 * with payload "..." cannot sign the same bytes. Decoding checks every
 * length before copying and compares the tag in constant time; base64url
 * decoding is canonical, so one payload has exactly one accepted text. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kiln/cursor.h"
#include "kiln/util.h"

#define CURSOR_VERSION     1
#define CURSOR_TAG_LEN     16
#define CURSOR_PAYLOAD_MAX (2 + 8 * KILN_CURSOR_MAX_KEYS)
/* base64url of n bytes, without padding. */
#define CURSOR_B64_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
/* Fixed, so that the derived key is useless for anything but cursors. */
#define CURSOR_KEY_LABEL "kiln cursor key v1"

int kiln_cursor_key_init(struct kiln_cursor_key *k, const void *secret, size_t len)
{
	unsigned int outlen = 0;

	/* An empty secret would let anyone sign cursors. */
	if (k == NULL || secret == NULL || len == 0 || len > INT32_MAX)
		return -1;
	if (HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)CURSOR_KEY_LABEL,
	         strlen(CURSOR_KEY_LABEL), k->key, &outlen) == NULL ||
	    outlen != sizeof(k->key)) {
		OPENSSL_cleanse(k->key, sizeof(k->key));
		return -1;
	}
	return 0;
}

/* The first CURSOR_TAG_LEN bytes of HMAC-SHA256(k, scope "\0" payload),
 * streamed so a scope of any length needs no copy. Returns 0, or -1 when
 * OpenSSL fails. */
static int cursor_tag(const struct kiln_cursor_key *k, const char *scope,
                      const unsigned char *payload, size_t plen, unsigned char tag[CURSOR_TAG_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	size_t maclen = 0;
	int rc = -1;

	if (ctx && EVP_MAC_init(ctx, k->key, sizeof(k->key), params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)scope, strlen(scope) + 1) == 1 &&
	    EVP_MAC_update(ctx, payload, plen) == 1 &&
	    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1 && maclen >= CURSOR_TAG_LEN) {
		memcpy(tag, mac, CURSOR_TAG_LEN);
		rc = 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

/* Keys travel as the bytes of their two's complement, most significant
 * first. Signed to unsigned is defined modulo 2^64; the way back avoids the
 * implementation-defined cast of a value above INT64_MAX. */
static void cursor_put_key(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 7; i >= 0; i--, u >>= 8)
		p[i] = (unsigned char)(u & 0xff);
}

static int64_t cursor_get_key(const unsigned char *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = u << 8 | p[i];
	if (u <= (uint64_t)INT64_MAX)
		return (int64_t)u;
	return (int64_t)(u - (uint64_t)INT64_MAX - 1) + INT64_MIN;
}

int kiln_cursor_encode(const struct kiln_cursor_key *k, const char *scope, const int64_t *keys,
                       int n, char *out, size_t outlen)
{
	unsigned char payload[CURSOR_PAYLOAD_MAX], tag[CURSOR_TAG_LEN];
	size_t plen = 2 + 8 * (size_t)n;
	long a, b;
	int i;

	if (k == NULL || scope == NULL || keys == NULL || out == NULL || n < 1 ||
	    n > KILN_CURSOR_MAX_KEYS ||
	    outlen < CURSOR_B64_LEN(plen) + 1 + CURSOR_B64_LEN(CURSOR_TAG_LEN) + 1)
		return -1;
	payload[0] = CURSOR_VERSION;
	payload[1] = (unsigned char)n;
	for (i = 0; i < n; i++)
		cursor_put_key(payload + 2 + 8 * i, keys[i]);
	if (cursor_tag(k, scope, payload, plen, tag) < 0)
		return -1;
	a = kiln_b64url_encode(payload, plen, out, outlen);
	if (a < 0 || (size_t)a + 1 >= outlen)
		return -1;
	out[a] = '.';
	b = kiln_b64url_encode(tag, sizeof(tag), out + a + 1, outlen - (size_t)a - 1);
	if (b < 0)
		return -1;
	return (int)(a + 1 + b);
}

int kiln_cursor_decode(const struct kiln_cursor_key *k, const char *scope, const char *text,
                       int64_t *keys, int n)
{
	unsigned char payload[CURSOR_PAYLOAD_MAX], tag[CURSOR_TAG_LEN], want[CURSOR_TAG_LEN];
	size_t len, plen = 2 + 8 * (size_t)n, b64len;
	const char *dot;
	int i, ok;

	if (k == NULL || scope == NULL || text == NULL || keys == NULL || n < 1 ||
	    n > KILN_CURSOR_MAX_KEYS)
		return -1;
	len = strnlen(text, KILN_CURSOR_TEXT_MAX);
	if (len >= KILN_CURSOR_TEXT_MAX)
		return -1;
	/* Exact lengths for n keys: anything else is malformed or another
	 * count, and nothing is decoded past the buffers. */
	b64len = CURSOR_B64_LEN(plen);
	dot = memchr(text, '.', len);
	if (dot == NULL || (size_t)(dot - text) != b64len ||
	    len - b64len - 1 != CURSOR_B64_LEN(CURSOR_TAG_LEN))
		return -1;
	if (kiln_b64url_decode(text, b64len, payload, sizeof(payload)) != (long)plen ||
	    kiln_b64url_decode(dot + 1, len - b64len - 1, tag, sizeof(tag)) != CURSOR_TAG_LEN)
		return -1;
	if (cursor_tag(k, scope, payload, plen, want) < 0)
		return -1;
	ok = CRYPTO_memcmp(tag, want, CURSOR_TAG_LEN) == 0;
	if (!ok || payload[0] != CURSOR_VERSION || payload[1] != (unsigned char)n)
		return -1;
	for (i = 0; i < n; i++)
		keys[i] = cursor_get_key(payload + 2 + 8 * i);
	return 0;
}
