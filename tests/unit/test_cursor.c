/* Unit tests for cursor: keyset cursors bound by HMAC to a scope and a key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kiln/cursor.h"
#include "kiln/util.h"

#define SECRET "test-secret-0123456789abcdefghijklmnop"
#define SCOPE  "GET /api/v1/exercises?category=sql&difficulty=2"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static struct kiln_cursor_key key_from(const char *secret)
{
	struct kiln_cursor_key k;

	assert_int_equal(kiln_cursor_key_init(&k, secret, strlen(secret)), 0);
	return k;
}

static int encode(const struct kiln_cursor_key *k, const char *scope, const int64_t *keys, int n,
                  char *out)
{
	int len = kiln_cursor_encode(k, scope, keys, n, out, KILN_CURSOR_TEXT_MAX);

	assert_true(len > 0 && len < KILN_CURSOR_TEXT_MAX);
	assert_int_equal(strlen(out), (size_t)len);
	return len;
}

/* A cursor text for an arbitrary payload, tagged as the header specifies
 * (HMAC-SHA256 over scope, NUL, payload; 16 bytes), computed here with
 * OpenSSL directly so the test pins the format, not the implementation. */
static void forge(const struct kiln_cursor_key *k, const char *scope, const unsigned char *payload,
                  size_t plen, char *out, size_t outlen)
{
	unsigned char msg[256], mac[32];
	unsigned int maclen = 0;
	size_t slen = strlen(scope) + 1;
	long a, b;

	assert_true(slen + plen <= sizeof(msg));
	memcpy(msg, scope, slen);
	memcpy(msg + slen, payload, plen);
	assert_non_null(HMAC(EVP_sha256(), k->key, sizeof(k->key), msg, slen + plen, mac, &maclen));
	a = kiln_b64url_encode(payload, plen, out, outlen);
	assert_true(a > 0);
	out[a] = '.';
	b = kiln_b64url_encode(mac, 16, out + a + 1, outlen - (size_t)a - 1);
	assert_true(b > 0);
}

static void test_round_trip(void **state)
{
	static const int64_t vals[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1700000000123, -255};
	struct kiln_cursor_key k = key_from(SECRET);
	int64_t keys[KILN_CURSOR_MAX_KEYS], got[KILN_CURSOR_MAX_KEYS];
	char text[KILN_CURSOR_TEXT_MAX];
	size_t i;
	int n, j;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(vals); i++)
		for (n = 1; n <= KILN_CURSOR_MAX_KEYS; n++) {
			for (j = 0; j < n; j++)
				keys[j] = vals[(i + (size_t)j) % KILN_ARRAY_LEN(vals)];
			memset(got, 0x5a, sizeof(got));
			encode(&k, SCOPE, keys, n, text);
			assert_null(strpbrk(text, "+/="));
			assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, n), 0);
			assert_memory_equal(got, keys, sizeof(keys[0]) * (size_t)n);
		}
}

/* The payload is version 1, the count, then big-endian two's complement
 * keys, and the tag is what the header says: a forged text made by the
 * spec's recipe decodes, and equals what encode wrote. */
static void test_wire_format(void **state)
{
	static const unsigned char payload[] = {
	    1, 2, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
	const int64_t keys[] = {258, -2};
	struct kiln_cursor_key k = key_from(SECRET);
	char text[KILN_CURSOR_TEXT_MAX], spec[KILN_CURSOR_TEXT_MAX];
	int64_t got[2];

	(void)state;
	encode(&k, SCOPE, keys, 2, text);
	forge(&k, SCOPE, payload, sizeof(payload), spec, sizeof(spec));
	assert_string_equal(text, spec);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, spec, got, 2), 0);
	assert_int_equal(got[0], 258);
	assert_int_equal(got[1], -2);
}

static void test_key_derivation(void **state)
{
	struct kiln_cursor_key a = key_from(SECRET), b = key_from(SECRET), c = key_from(SECRET "x");
	unsigned char raw[32] = {0};

	(void)state;
	assert_memory_equal(a.key, b.key, sizeof(a.key));
	assert_memory_not_equal(a.key, c.key, sizeof(a.key));
	/* The secret itself never signs: the key is derived from it. */
	memcpy(raw, SECRET, sizeof(raw));
	assert_memory_not_equal(a.key, raw, sizeof(raw));
	assert_int_equal(kiln_cursor_key_init(&a, "", 0), -1);
	assert_int_equal(kiln_cursor_key_init(&a, NULL, 4), -1);
	assert_int_equal(kiln_cursor_key_init(NULL, SECRET, 4), -1);
}

static void test_wrong_scope(void **state)
{
	static const char *const others[] = {
	    "",
	    "GET /api/v1/exercises?category=sql&difficulty=3",
	    "GET /api/v1/exercises?category=sql&difficulty=2 ",
	    "GET /api/v1/exercises?category=sql&difficulty=",
	    "get /api/v1/exercises?category=sql&difficulty=2",
	};
	struct kiln_cursor_key k = key_from(SECRET);
	const int64_t keys[] = {7, 9};
	char text[KILN_CURSOR_TEXT_MAX];
	int64_t got[2];
	size_t i;

	(void)state;
	encode(&k, SCOPE, keys, 2, text);
	for (i = 0; i < KILN_ARRAY_LEN(others); i++)
		if (kiln_cursor_decode(&k, others[i], text, got, 2) != -1)
			fail_msg("cursor for '%s' accepted for '%s'", SCOPE, others[i]);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, 2), 0);
}

/* Scope and payload are separated by a NUL in the MAC input, so moving a
 * byte from the end of the scope into the payload does not keep the tag. */
static void test_scope_payload_boundary(void **state)
{
	static const unsigned char payload[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 5};
	struct kiln_cursor_key k = key_from(SECRET);
	char text[KILN_CURSOR_TEXT_MAX];
	int64_t got;

	(void)state;
	/* Tagged for scope "s\x01": the bytes "s\x01\0\x01..." differ from
	 * scope "s" + payload "\x01\x01..." only by where the NUL sits. */
	forge(&k, "s\x01", payload + 1, sizeof(payload) - 1, text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, "s", text, &got, 1), -1);
	forge(&k, "s", payload, sizeof(payload), text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, "s", text, &got, 1), 0);
	assert_int_equal(got, 5);
}

/* Every single-character change anywhere in the text is refused: a
 * payload or tag bit flipped, a character swapped for any other, the dot
 * moved. */
static void test_altered_byte_anywhere(void **state)
{
	static const char extra[] = ".=+/ \x7f\x80\xff";
	struct kiln_cursor_key k = key_from(SECRET);
	const int64_t keys[] = {1234567, -89, 0};
	char text[KILN_CURSOR_TEXT_MAX], alt[KILN_CURSOR_TEXT_MAX];
	int64_t got[3];
	size_t i, j, len, tried = 0;
	char subs[80];

	(void)state;
	len = (size_t)encode(&k, SCOPE, keys, 3, text);
	snprintf(subs, sizeof(subs), "%s%s", b64_alphabet, extra);
	for (i = 0; i < len; i++)
		for (j = 0; j < strlen(subs); j++) {
			if (subs[j] == text[i])
				continue;
			memcpy(alt, text, len + 1);
			alt[i] = subs[j];
			tried++;
			if (kiln_cursor_decode(&k, SCOPE, alt, got, 3) != -1)
				fail_msg("accepted '%s' (position %zu altered)", alt, i);
		}
	assert_true(tried > len * 60);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, 3), 0);
}

static void test_truncated(void **state)
{
	struct kiln_cursor_key k = key_from(SECRET);
	const int64_t keys[] = {5, 6, 7, 8};
	char text[KILN_CURSOR_TEXT_MAX], cut[KILN_CURSOR_TEXT_MAX];
	int64_t got[4];
	size_t i, len;

	(void)state;
	len = (size_t)encode(&k, SCOPE, keys, 4, text);
	for (i = 0; i < len; i++) {
		memcpy(cut, text, i);
		cut[i] = '\0';
		if (kiln_cursor_decode(&k, SCOPE, cut, got, 4) != -1)
			fail_msg("accepted truncated '%s'", cut);
	}
	/* Dropping a whole payload group keeps valid base64url: still refused. */
	memcpy(cut, text + 4, len - 3);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, cut, got, 4), -1);
}

static void test_wrong_count(void **state)
{
	struct kiln_cursor_key k = key_from(SECRET);
	const int64_t keys[] = {1, 2, 3, 4};
	unsigned char payload[2 + 8 * 2] = {1, 1};
	char text[KILN_CURSOR_TEXT_MAX];
	int64_t got[KILN_CURSOR_MAX_KEYS + 1];
	int n, m;

	(void)state;
	for (n = 1; n <= KILN_CURSOR_MAX_KEYS; n++) {
		encode(&k, SCOPE, keys, n, text);
		for (m = 0; m <= KILN_CURSOR_MAX_KEYS + 1; m++)
			if (m != n && kiln_cursor_decode(&k, SCOPE, text, got, m) != -1)
				fail_msg("%d-key cursor accepted as %d keys", n, m);
	}
	/* A correctly tagged payload whose count byte disagrees with its
	 * length is refused too. */
	forge(&k, SCOPE, payload, sizeof(payload), text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, 2), -1);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, 1), -1);
	payload[1] = 2;
	forge(&k, SCOPE, payload, sizeof(payload), text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, got, 2), 0);
	/* Encode refuses counts outside 1..KILN_CURSOR_MAX_KEYS. */
	assert_int_equal(kiln_cursor_encode(&k, SCOPE, keys, 0, text, sizeof(text)), -1);
	assert_int_equal(
	    kiln_cursor_encode(&k, SCOPE, got, KILN_CURSOR_MAX_KEYS + 1, text, sizeof(text)), -1);
	assert_int_equal(kiln_cursor_encode(&k, SCOPE, keys, -1, text, sizeof(text)), -1);
}

static void test_other_version(void **state)
{
	unsigned char payload[2 + 8] = {2, 1, 0, 0, 0, 0, 0, 0, 0, 9};
	struct kiln_cursor_key k = key_from(SECRET);
	char text[KILN_CURSOR_TEXT_MAX];
	int64_t got;

	(void)state;
	forge(&k, SCOPE, payload, sizeof(payload), text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, &got, 1), -1);
	payload[0] = 1;
	forge(&k, SCOPE, payload, sizeof(payload), text, sizeof(text));
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, text, &got, 1), 0);
	assert_int_equal(got, 9);
}

static void test_too_long(void **state)
{
	struct kiln_cursor_key k = key_from(SECRET);
	const int64_t keys[] = {11};
	char text[KILN_CURSOR_TEXT_MAX], big[4 * KILN_CURSOR_TEXT_MAX];
	int64_t got;
	size_t len;

	(void)state;
	len = (size_t)encode(&k, SCOPE, keys, 1, text);
	/* Trailing bytes after a valid cursor. */
	snprintf(big, sizeof(big), "%sA", text);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, big, &got, 1), -1);
	snprintf(big, sizeof(big), "%s.", text);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, big, &got, 1), -1);
	/* Far past the limit, with a valid cursor at the start. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, text, len);
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, big, &got, 1), -1);
	/* Exactly KILN_CURSOR_TEXT_MAX bytes: over the limit. */
	big[KILN_CURSOR_TEXT_MAX] = '\0';
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, big, &got, 1), -1);
	/* An output buffer one byte too small is refused; exact size works. */
	assert_int_equal(kiln_cursor_encode(&k, SCOPE, keys, 1, big, len), -1);
	assert_int_equal(kiln_cursor_encode(&k, SCOPE, keys, 1, big, len + 1), (int)len);
	assert_string_equal(big, text);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
	    "",
	    ".",
	    "..",
	    "a.b",
	    "AQEAAAAAAAAACw",
	    "AQEAAAAAAAAACw.",
	    ".AQEAAAAAAAAACw",
	    "AQEAAAAAAAAACw.AAAAAAAAAAAAAAAAAAAAAA",
	    "AQEAAAAAAAAACw.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
	    "AQEAAAAAAAAACw==.AAAAAAAAAAAAAAAAAAAAAA",
	    "AQEAAAAAAAAAC w.AAAAAAAAAAAAAAAAAAAAAA",
	    "AQEAAAAAAAAAC\xc3\xa9.AAAAAAAAAAAAAAAAAAAAAA",
	    "null",
	    "{\"id\":1}",
	    "\xff\xfe\xfd",
	};
	struct kiln_cursor_key k = key_from(SECRET);
	int64_t got[2] = {0, 0};
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		if (kiln_cursor_decode(&k, SCOPE, bad[i], got, 1) != -1)
			fail_msg("accepted garbage '%s'", bad[i]);
		assert_int_equal(kiln_cursor_decode(&k, SCOPE, bad[i], got, 2), -1);
	}
	assert_int_equal(kiln_cursor_decode(&k, SCOPE, NULL, got, 1), -1);
	assert_int_equal(kiln_cursor_decode(&k, NULL, "a.b", got, 1), -1);
	assert_int_equal(got[0], 0); /* nothing written on failure */
}

static void test_other_key(void **state)
{
	struct kiln_cursor_key a = key_from(SECRET),
	                       b = key_from("another-secret-entirely-0123456789");
	const int64_t keys[] = {100, 200};
	char text[KILN_CURSOR_TEXT_MAX], text_b[KILN_CURSOR_TEXT_MAX];
	int64_t got[2];

	(void)state;
	encode(&a, SCOPE, keys, 2, text);
	encode(&b, SCOPE, keys, 2, text_b);
	assert_string_not_equal(text, text_b);
	assert_int_equal(kiln_cursor_decode(&b, SCOPE, text, got, 2), -1);
	assert_int_equal(kiln_cursor_decode(&a, SCOPE, text_b, got, 2), -1);
	assert_int_equal(kiln_cursor_decode(&b, SCOPE, text_b, got, 2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wire_format),
	    cmocka_unit_test(test_key_derivation),
	    cmocka_unit_test(test_wrong_scope),
	    cmocka_unit_test(test_scope_payload_boundary),
	    cmocka_unit_test(test_altered_byte_anywhere),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_wrong_count),
	    cmocka_unit_test(test_other_version),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_other_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
