/* libFuzzer harness for kiln_cursor_decode / kiln_cursor_encode with a
 * fixed key and scope.
 *
 * The first byte picks the mode:
 *   'r'  round trip: the next byte gives the key count (1..4), the next
 *        8 * count bytes the keys, the rest the scope. Encoding must
 *        succeed within KILN_CURSOR_TEXT_MAX and decode to the same keys;
 *        the text must be refused with any other count or scope.
 *   'f'  the rest is a payload, tagged here with the cursor key as the
 *        header specifies, so mutations get past the tag and exercise the
 *        version, count and length checks: decode may accept it only when
 *        it is version 1 with exactly n keys.
 *   else the rest is cursor text, decoded as is for every count; it is
 *        copied to an exact-size buffer so any read past its end is caught.
 *        An accepted text must be the canonical encoding of what it gave. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kiln/cursor.h"
#include "kiln/util.h"

#define FUZZ_SCOPE "GET /api/v1/exercises?category=sql"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct kiln_cursor_key *fuzz_key(void)
{
	static struct kiln_cursor_key k;
	static int ready;
	static const char secret[] = "fuzz-cursor-secret-0123456789abcdef";

	if (ready)
		return &k;
	if (kiln_cursor_key_init(&k, secret, strlen(secret)) < 0)
		abort();
	ready = 1;
	return &k;
}

/* A NUL-terminated copy of exactly len bytes (the fuzzer's data is not
 * terminated). */
static char *fuzz_str(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
	const struct kiln_cursor_key *k = fuzz_key();
	int64_t keys[KILN_CURSOR_MAX_KEYS] = {0}, got[KILN_CURSOR_MAX_KEYS];
	char text[KILN_CURSOR_TEXT_MAX], *scope, *other;
	size_t used, slen;
	int n, m, len;

	if (size < 1)
		return;
	n = data[0] % KILN_CURSOR_MAX_KEYS + 1;
	data++;
	size--;
	used = size < 8 * (size_t)n ? size : 8 * (size_t)n;
	memcpy(keys, data, used);
	scope = fuzz_str(data + used, size - used);
	len = kiln_cursor_encode(k, scope, keys, n, text, sizeof(text));
	if (len <= 0 || (size_t)len != strlen(text) || len >= KILN_CURSOR_TEXT_MAX)
		abort();
	if (kiln_cursor_decode(k, scope, text, got, n) != 0 ||
	    memcmp(got, keys, sizeof(keys[0]) * (size_t)n) != 0)
		abort();
	for (m = 0; m <= KILN_CURSOR_MAX_KEYS + 1; m++)
		if (m != n && kiln_cursor_decode(k, scope, text, got, m) != -1)
			abort();
	/* Another scope: one byte more, or one byte less. */
	slen = strlen(scope);
	other = malloc(slen + 2);
	if (other == NULL)
		abort();
	memcpy(other, scope, slen);
	other[slen] = 'x';
	other[slen + 1] = '\0';
	if (kiln_cursor_decode(k, other, text, got, n) != -1)
		abort();
	if (slen > 0) {
		other[slen - 1] = '\0';
		if (kiln_cursor_decode(k, other, text, got, n) != -1)
			abort();
	}
	free(other);
	free(scope);
}

/* Decode text for every count; whatever is accepted must re-encode to the
 * same text. */
static void fuzz_decode(const char *text)
{
	const struct kiln_cursor_key *k = fuzz_key();
	int64_t got[KILN_CURSOR_MAX_KEYS];
	char again[KILN_CURSOR_TEXT_MAX];
	int n;

	for (n = 0; n <= KILN_CURSOR_MAX_KEYS + 1; n++) {
		if (kiln_cursor_decode(k, FUZZ_SCOPE, text, got, n) != 0)
			continue;
		if (n < 1 || n > KILN_CURSOR_MAX_KEYS)
			abort();
		if (kiln_cursor_encode(k, FUZZ_SCOPE, got, n, again, sizeof(again)) < 0 ||
		    strcmp(again, text) != 0)
			abort();
	}
}

static void fuzz_forged(const uint8_t *payload, size_t plen)
{
	const struct kiln_cursor_key *k = fuzz_key();
	unsigned char msg[sizeof(FUZZ_SCOPE) + 64], mac[32];
	char text[2 * KILN_CURSOR_TEXT_MAX], *exact;
	int64_t got[KILN_CURSOR_MAX_KEYS];
	unsigned int maclen = 0;
	long a, b;
	int n;

	if (plen > 64)
		return;
	memcpy(msg, FUZZ_SCOPE, sizeof(FUZZ_SCOPE)); /* with its NUL */
	memcpy(msg + sizeof(FUZZ_SCOPE), payload, plen);
	if (HMAC(EVP_sha256(), k->key, sizeof(k->key), msg, sizeof(FUZZ_SCOPE) + plen, mac,
	         &maclen) == NULL)
		abort();
	a = kiln_b64url_encode(payload, plen, text, sizeof(text));
	if (a < 0)
		abort();
	text[a] = '.';
	b = kiln_b64url_encode(mac, 16, text + a + 1, sizeof(text) - (size_t)a - 1);
	if (b < 0)
		abort();
	exact = fuzz_str((const uint8_t *)text, (size_t)(a + 1 + b));
	for (n = 0; n <= KILN_CURSOR_MAX_KEYS + 1; n++) {
		if (kiln_cursor_decode(k, FUZZ_SCOPE, exact, got, n) != 0)
			continue;
		if (n < 1 || n > KILN_CURSOR_MAX_KEYS || plen != 2 + 8 * (size_t)n ||
		    payload[0] != 1 || payload[1] != n)
			abort();
	}
	fuzz_decode(exact);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size >= 1 && data[0] == 'r') {
		fuzz_round_trip(data + 1, size - 1);
		return 0;
	}
	if (size >= 1 && data[0] == 'f') {
		fuzz_forged(data + 1, size - 1);
		return 0;
	}
	text = fuzz_str(data, size);
	fuzz_decode(text);
	free(text);
	return 0;
}
