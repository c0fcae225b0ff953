/* Unit tests for password: libargon2 against RFC 9106, PHC hashing and
 * verification, re-hash detection, and the policy for new passwords. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <argon2.h>
#include <cmocka.h>

#include "kiln/password.h"
#include "kiln/util.h"

static const struct kiln_password_params small = {64, 1, 1};

#define SALT22 "c2FsdHNhbHRzYWx0c2FsdA"
#define HASH43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* RFC 9106 §5.3: Argon2id with secret and associated data, through
 * argon2_ctx. kiln uses neither, but this pins the library and its linking
 * to the specification. */
static void test_rfc9106_argon2id_vector(void **state)
{
	static const uint8_t want[32] = {0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c,
	                                 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9,
	                                 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e,
	                                 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59};
	uint8_t out[32], pwd[32], salt[16], secret[8], ad[12];
	argon2_context ctx;

	(void)state;
	memset(pwd, 0x01, sizeof(pwd));
	memset(salt, 0x02, sizeof(salt));
	memset(secret, 0x03, sizeof(secret));
	memset(ad, 0x04, sizeof(ad));
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = out;
	ctx.outlen = sizeof(out);
	ctx.pwd = pwd;
	ctx.pwdlen = sizeof(pwd);
	ctx.salt = salt;
	ctx.saltlen = sizeof(salt);
	ctx.secret = secret;
	ctx.secretlen = sizeof(secret);
	ctx.ad = ad;
	ctx.adlen = sizeof(ad);
	ctx.t_cost = 3;
	ctx.m_cost = 32;
	ctx.lanes = 4;
	ctx.threads = 4;
	ctx.version = ARGON2_VERSION_13;
	ctx.flags = ARGON2_DEFAULT_FLAGS;
	assert_int_equal(argon2_ctx(&ctx, Argon2_id), ARGON2_OK);
	assert_memory_equal(out, want, sizeof(want));
}

/* A PHC string from the reference implementation's own tests (argon2id,
 * v=19, "password" / "somesalt"): kiln verifies what other Argon2
 * implementations wrote. */
static void test_verify_reference_phc(void **state)
{
	static const char phc[] = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$"
	                          "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

	(void)state;
	assert_int_equal(kiln_password_verify(phc, "password", 8), 1);
	assert_int_equal(kiln_password_verify(phc, "Password", 8), 0);
	assert_int_equal(kiln_password_verify(phc, "password", 7), 0);
}

static void test_hash_verify_round_trip(void **state)
{
	static const char pw[] = "correct horse battery staple";
	char a[KILN_PHC_MAX], b[KILN_PHC_MAX];

	(void)state;
	assert_int_equal(kiln_password_hash(&small, pw, strlen(pw), a, sizeof(a)), 0);
	assert_int_equal(strncmp(a, "$argon2id$v=19$m=64,t=1,p=1$", 28), 0);
	assert_true(strlen(a) < KILN_PHC_MAX);
	assert_int_equal(kiln_password_verify(a, pw, strlen(pw)), 1);
	assert_int_equal(kiln_password_verify(a, "correct horse battery stapl", strlen(pw) - 1), 0);
	assert_int_equal(kiln_password_verify(a, "Correct horse battery staple", strlen(pw)), 0);
	assert_int_equal(kiln_password_verify(a, "", 0), 0);
	/* a fresh salt each time */
	assert_int_equal(kiln_password_hash(&small, pw, strlen(pw), b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(kiln_password_verify(b, pw, strlen(pw)), 1);
	/* the length is what counts, not a NUL */
	assert_int_equal(kiln_password_hash(&small, "ab\0cd", 5, a, sizeof(a)), 0);
	assert_int_equal(kiln_password_verify(a, "ab\0cd", 5), 1);
	assert_int_equal(kiln_password_verify(a, "ab", 2), 0);
}

static void test_hash_refuses(void **state)
{
	const struct kiln_password_params too_little = {4, 1, 1};
	char out[KILN_PHC_MAX];

	(void)state;
	assert_int_equal(kiln_password_hash(&small, "x", 1, out, 60), -1);
	/* the 94-byte string and its NUL fit exactly */
	assert_int_equal(kiln_password_hash(&small, "x", 1, out, 94), -1);
	assert_int_equal(kiln_password_hash(&small, "x", 1, out, 95), 0);
	assert_int_equal(strlen(out), 94);
	assert_int_equal(kiln_password_hash(&too_little, "x", 1, out, sizeof(out)), -1);
	assert_int_equal(kiln_password_hash(&small, NULL, 3, out, sizeof(out)), -1);
}

/* One hash at the shipped defaults (19 MiB, t=2, p=1), timed. */
static void test_default_params(void **state)
{
	struct kiln_cfg_auth cfg;
	struct kiln_password_params p;
	char phc[KILN_PHC_MAX];
	int64_t t0, t1, t2;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.argon2_memory = 19 * 1024 * 1024;
	cfg.argon2_iterations = 2;
	cfg.argon2_parallelism = 1;
	kiln_password_params_from_config(&p, &cfg);
	assert_int_equal(p.m_kib, 19456);
	assert_int_equal(p.t, 2);
	assert_int_equal(p.p, 1);
	t0 = kiln_now_ns();
	assert_int_equal(
	    kiln_password_hash(&p, "correct horse battery staple", 28, phc, sizeof(phc)), 0);
	t1 = kiln_now_ns();
	assert_int_equal(strncmp(phc, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
	assert_int_equal(kiln_password_verify(phc, "correct horse battery staple", 28), 1);
	t2 = kiln_now_ns();
	print_message("argon2id m=19456 KiB t=2 p=1: hash %.1f ms, verify %.1f ms\n",
	              (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
	assert_int_equal(kiln_password_needs_rehash(phc, &p), 0);
	assert_int_equal(kiln_password_needs_rehash(phc, &small), 1);
}

static void test_needs_rehash(void **state)
{
	const struct kiln_password_params more_m = {128, 1, 1}, more_t = {64, 2, 1},
	                                  more_p = {64, 1, 2};
	char phc[KILN_PHC_MAX];

	(void)state;
	assert_int_equal(kiln_password_hash(&small, "pw", 2, phc, sizeof(phc)), 0);
	assert_int_equal(kiln_password_needs_rehash(phc, &small), 0);
	assert_int_equal(kiln_password_needs_rehash(phc, &more_m), 1);
	assert_int_equal(kiln_password_needs_rehash(phc, &more_t), 1);
	assert_int_equal(kiln_password_needs_rehash(phc, &more_p), 1);
	assert_int_equal(
	    kiln_password_needs_rehash("$argon2id$v=19$m=19456,t=2,p=1$" SALT22 "$" HASH43, &small),
	    1);
}

static const char *const malformed[] = {
    "",
    "argon2id$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2i$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2d$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=16$m=64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$m=64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=064,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=+64,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$t=1,m=64,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=0,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=101,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=0$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=17$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=8,t=1,p=2$" SALT22 "$" HASH43,
    /* memory that a planted row would make every login allocate */
    "$argon2id$v=19$m=4294967295,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=1048577,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=99999999999999999999,t=1,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 "$",
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 "$AAAAAAAAAAAAAAAAAAAAA",
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22,
    "$argon2id$v=19$m=64,t=1,p=1$$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43 "$",
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43 "=",
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRz-WxOc2FsdA$" HASH43,
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 "$" HASH43 HASH43 HASH43,
    /* longer than KILN_PHC_MAX although each part is within its bounds */
    "$argon2id$v=19$m=64,t=1,p=1$" SALT22 SALT22 SALT22 "$" HASH43 HASH43,
};

static void test_malformed_phc(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(malformed); i++) {
		if (kiln_password_verify(malformed[i], "pw", 2) != -1 ||
		    kiln_password_needs_rehash(malformed[i], &small) != -1)
			print_message("accepted: %s\n", malformed[i]);
		assert_int_equal(kiln_password_verify(malformed[i], "pw", 2), -1);
		assert_int_equal(kiln_password_needs_rehash(malformed[i], &small), -1);
	}
	assert_int_equal(kiln_password_verify(NULL, "pw", 2), -1);
	assert_int_equal(kiln_password_needs_rehash(NULL, &small), -1);
	/* well-formed to kiln, rejected by libargon2's decoder: still -1, not 0 */
	assert_int_equal(kiln_password_verify("$argon2id$v=19$m=64,t=1,p=1$" SALT22
	                                      "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
	                                      "pw", 2),
	                 -1);
}

static void expect_policy(const char *pw, size_t len, int common, const char *want)
{
	const char *got = kiln_password_policy(pw, len, common);

	if (want == NULL) {
		if (got != NULL)
			print_message("\"%.40s\" refused: %s\n", pw, got);
		assert_null(got);
		return;
	}
	if (got == NULL || strncmp(got, want, strlen(want)) != 0)
		print_message("\"%.40s\": got \"%s\", want \"%s...\"\n", pw, got ? got : "(null)",
		              want);
	assert_non_null(got);
	assert_int_equal(strncmp(got, want, strlen(want)), 0);
}

#define EXPECT_POLICY(s, common, want) expect_policy(s, sizeof(s) - 1, common, want)

static void test_policy_length_and_encoding(void **state)
{
	char big[KILN_PASSWORD_MAX + 2];

	(void)state;
	EXPECT_POLICY("Gv7#kq2!Zr9", 1, "must be at least 12 bytes");
	EXPECT_POLICY("", 1, "must be at least 12 bytes");
	EXPECT_POLICY("Gv7#kq2!Zr9w", 1, NULL);
	memset(big, 'x', sizeof(big));
	expect_policy(big, KILN_PASSWORD_MAX + 1, 1, "must be at most 1024 bytes");
	expect_policy(big, KILN_PASSWORD_MAX + 1, 0, "must be at most 1024 bytes");
	EXPECT_POLICY("Gv7#kq2!Zr9w\xff", 1, "must be valid UTF-8 without NUL characters");
	EXPECT_POLICY("Gv7#kq2!\xc0\xafZr9w", 1, "must be valid UTF-8 without NUL characters");
	EXPECT_POLICY("Gv7#kq2!\xed\xa0\x80Zr9w", 1, "must be valid UTF-8 without NUL characters");
	EXPECT_POLICY("Gv7#kq2!Zr9w\xe2\x82", 1, "must be valid UTF-8 without NUL characters");
	EXPECT_POLICY("Gv7#kq2\0!Zr9w", 1, "must be valid UTF-8 without NUL characters");
	EXPECT_POLICY("Gv7#kq2\0!Zr9w", 0, "must be valid UTF-8 without NUL characters");
	/* lengths are in bytes: 7 characters are 11 bytes here, 8 are 12 */
	EXPECT_POLICY("\xc3\x9f\xc3\xbc-Z\xc3\xa9"
	              "9\xc3\xb1",
	              1, "must be at least 12 bytes");
	EXPECT_POLICY("\xc3\x9f\xc3\xbc-Z\xc3\xa9"
	              "9\xc3\xb1x",
	              1, NULL);
}

static void test_policy_common_passwords(void **state)
{
	(void)state;
	/* cracklib alone passes these two: it strips at most three characters
	 * from either end of a word, and knows no keyboard walks */
	EXPECT_POLICY("password1234", 1, "is too common: it is based on a dictionary word");
	EXPECT_POLICY("qwertyuiopas", 1, "is too common: it is a keyboard or alphabet sequence");
	EXPECT_POLICY("Password1234!", 1, "is too common: ");
	EXPECT_POLICY("1234password", 1, "is too common: ");
	EXPECT_POLICY("qwerty123456", 1, "is too common: ");
	/* a walk with a break (10 of 11 pairs are neighbours) */
	EXPECT_POLICY("asdfghjk1234", 1, "is too common: it is a keyboard or alphabet sequence");
	EXPECT_POLICY("abcdefghijkl", 1, "is too common: ");
	EXPECT_POLICY("aaaaaaaaaaaa", 1, "is too common: ");
	EXPECT_POLICY("password123!", 1, "is too common: ");
	EXPECT_POLICY("kilnkilnkiln", 1, "is too common: ");
	/* the check is off: only length and encoding count */
	EXPECT_POLICY("password1234", 0, NULL);
	EXPECT_POLICY("qwertyuiopas", 0, NULL);
}

/* Pseudo-random printable ASCII (fixed LCG), len bytes. */
static void random_ascii(char *s, size_t len)
{
	static const char alpha[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_";
	uint32_t x = 12345;
	size_t i;

	for (i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		s[i] = alpha[(x >> 16) % (sizeof(alpha) - 1)];
	}
	s[len] = '\0';
}

static void test_policy_accepts_good_passwords(void **state)
{
	char big[KILN_PASSWORD_MAX + 1];

	(void)state;
	EXPECT_POLICY("correct horse battery staple", 1, NULL);
	EXPECT_POLICY("vivid-otter-canyon-42-lamp", 1, NULL);
	EXPECT_POLICY("\xd0\xb7\xd0\xb8\xd0\xbc\xd0\xb0 \xd1\x91\xd0\xbb\xd0\xba\xd0\xb0 42", 1,
	              NULL);
	/* cracklib sees only the first 255 bytes; a maximal password is safe
	 * to hand it (this runs under ASan in SANITIZE=1 builds) */
	random_ascii(big, KILN_PASSWORD_MAX);
	expect_policy(big, KILN_PASSWORD_MAX, 1, NULL);
	memset(big, 'a', KILN_PASSWORD_MAX);
	expect_policy(big, KILN_PASSWORD_MAX, 1, "is too common: ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc9106_argon2id_vector),
	    cmocka_unit_test(test_verify_reference_phc),
	    cmocka_unit_test(test_hash_verify_round_trip),
	    cmocka_unit_test(test_hash_refuses),
	    cmocka_unit_test(test_default_params),
	    cmocka_unit_test(test_needs_rehash),
	    cmocka_unit_test(test_malformed_phc),
	    cmocka_unit_test(test_policy_length_and_encoding),
	    cmocka_unit_test(test_policy_common_passwords),
	    cmocka_unit_test(test_policy_accepts_good_passwords),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
