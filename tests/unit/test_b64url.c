/* Unit tests for base64url without padding (RFC 4648 §5) in util. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/util.h"

/* RFC 4648 §10 test strings; their encodings use no '+' or '/', so the
 * url alphabet gives the same text, minus the padding. */
static const struct {
	const char *plain, *enc;
} vectors[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
	unsigned char dec[16];
	char enc[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(vectors); i++) {
		n = strlen(vectors[i].plain);
		assert_int_equal(kiln_b64url_encode(vectors[i].plain, n, enc, sizeof(enc)),
		                 (long)strlen(vectors[i].enc));
		assert_string_equal(enc, vectors[i].enc);
		assert_int_equal(
		    kiln_b64url_decode(vectors[i].enc, strlen(vectors[i].enc), dec, sizeof(dec)),
		    (long)n);
		assert_memory_equal(dec, vectors[i].plain, n);
	}
}

/* The two characters where base64url differs from base64: '-' and '_'. */
static void test_url_alphabet(void **state)
{
	static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
	unsigned char dec[8];
	char enc[8];

	(void)state;
	assert_int_equal(kiln_b64url_encode(bytes, sizeof(bytes), enc, sizeof(enc)), 4);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(kiln_b64url_decode("-_-_", 4, dec, sizeof(dec)), 3);
	assert_memory_equal(dec, bytes, 3);
	assert_int_equal(kiln_b64url_decode("-_8", 3, dec, sizeof(dec)), 2);
	assert_memory_equal(dec, bytes, 2);
}

static void test_decode_rejects_bad_characters(void **state)
{
	static const char *const bad[] = {"Zm9v=", "Zg==",   "Zm+v", "Zm/v",
	                                  "Zm9 v", "Zm9\nv", "Zm.v", "Z\xc3\xa9v"};
	unsigned char dec[16];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++)
		assert_int_equal(kiln_b64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
	/* An embedded NUL is just another bad character. */
	assert_int_equal(kiln_b64url_decode("Zm\0v", 4, dec, sizeof(dec)), -1);
}

static void test_decode_rejects_impossible_length(void **state)
{
	unsigned char dec[16];

	(void)state;
	assert_int_equal(kiln_b64url_decode("Z", 1, dec, sizeof(dec)), -1);
	assert_int_equal(kiln_b64url_decode("Zm9vY", 5, dec, sizeof(dec)), -1);
	assert_int_equal(kiln_b64url_decode("Zm9vYmFyZ", 9, dec, sizeof(dec)), -1);
	/* also when the lone character's bits are all zero */
	assert_int_equal(kiln_b64url_decode("A", 1, dec, sizeof(dec)), -1);
	assert_int_equal(kiln_b64url_decode("Zm9vA", 5, dec, sizeof(dec)), -1);
}

/* Unused low bits of the last group must be zero: "Zh" would otherwise
 * decode to the same "f" as "Zg", and a signature could be re-spelled. */
static void test_decode_rejects_noncanonical_tail(void **state)
{
	unsigned char dec[16];

	(void)state;
	assert_int_equal(kiln_b64url_decode("Zh", 2, dec, sizeof(dec)), -1);
	assert_int_equal(kiln_b64url_decode("Zm9", 3, dec, sizeof(dec)), -1);
	assert_int_equal(kiln_b64url_decode("Zm8", 3, dec, sizeof(dec)), 2);
}

static void test_out_too_small(void **state)
{
	unsigned char dec[8];
	char enc[16];

	(void)state;
	/* encode needs room for the NUL too */
	assert_int_equal(kiln_b64url_encode("foobar", 6, enc, 8), -1);
	assert_int_equal(kiln_b64url_encode("foobar", 6, enc, 9), 8);
	assert_int_equal(kiln_b64url_encode("fooba", 5, enc, 7), -1);
	assert_int_equal(kiln_b64url_encode("", 0, enc, 0), -1);
	assert_int_equal(kiln_b64url_encode("", 0, enc, 1), 0);
	assert_string_equal(enc, "");
	assert_int_equal(kiln_b64url_decode("Zm9vYmFy", 8, dec, 5), -1);
	assert_int_equal(kiln_b64url_decode("Zm9vYmE", 7, dec, 4), -1);
	assert_int_equal(kiln_b64url_decode("Zm9vYmE", 7, dec, 5), 5);
	assert_int_equal(kiln_b64url_decode("", 0, dec, 0), 0);
}

/* Every byte value at every tail length survives a round trip, and the
 * encoding is exactly as long as the formula says. */
static void test_round_trip_all_bytes(void **state)
{
	unsigned char in[256], dec[256];
	char enc[352];
	size_t len, i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i);
	for (len = 0; len <= sizeof(in); len++) {
		n = kiln_b64url_encode(in, len, enc, sizeof(enc));
		assert_int_equal(n, (long)(len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0)));
		assert_int_equal(strlen(enc), (size_t)n);
		assert_null(strpbrk(enc, "+/="));
		assert_int_equal(kiln_b64url_decode(enc, (size_t)n, dec, len), (long)len);
		assert_memory_equal(dec, in, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),
	    cmocka_unit_test(test_url_alphabet),
	    cmocka_unit_test(test_decode_rejects_bad_characters),
	    cmocka_unit_test(test_decode_rejects_impossible_length),
	    cmocka_unit_test(test_decode_rejects_noncanonical_tail),
	    cmocka_unit_test(test_out_too_small),
	    cmocka_unit_test(test_round_trip_all_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
