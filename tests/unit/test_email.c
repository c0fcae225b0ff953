/* Unit tests for the account email normaliser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/email.h"

static const char *norm(const char *in, char *out)
{
	return kiln_email_normalize(in, strlen(in), out, KILN_EMAIL_MAX + 1);
}

static void test_email_normalised(void **state)
{
	char out[KILN_EMAIL_MAX + 1];

	(void)state;
	assert_null(norm("  Alice@EXAMPLE.com \n", out));
	assert_string_equal(out, "Alice@example.com");
	assert_null(norm("a.b+tag@sub.example-host.org", out));
	assert_string_equal(out, "a.b+tag@sub.example-host.org");
}

static void test_email_rejected(void **state)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "plain",
	    "@example.com",
	    "a@",
	    "a@b",
	    "a@@b.com",
	    "a b@example.com",
	    "a@exa mple.com",
	    "a@-example.com",
	    "a@example-.com",
	    "a@example..com",
	    "a@.example.com",
	    "a@example.com.",
	    "\x01@example.com",
	    "a@ex_ample.com",
	    "a@[127.0.0.1]",
	    "caf\xc3\xa9@example.com",
	};
	char out[KILN_EMAIL_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_non_null(norm(bad[i], out));
}

static void test_email_lengths(void **state)
{
	char in[400], out[KILN_EMAIL_MAX + 1];

	(void)state;
	memset(in, 'a', 64);
	strcpy(in + 64, "@example.com");
	assert_null(norm(in, out));
	memset(in, 'a', 65);
	strcpy(in + 65, "@example.com");
	assert_non_null(norm(in, out)); /* local part over 64 */
	memset(in, 'a', 250);
	strcpy(in, "a@");
	memset(in + 2, 'b', 60);
	strcpy(in + 62, ".");
	memset(in + 63, 'c', 60);
	strcpy(in + 123, ".");
	memset(in + 124, 'd', 60);
	strcpy(in + 184, ".");
	memset(in + 185, 'e', 60);
	strcpy(in + 245, ".com");
	assert_int_equal(strlen(in), 249);
	assert_null(norm(in, out));
	strcpy(in + 245, ".commm1");
	assert_int_equal(strlen(in), 252);
	assert_null(norm(in, out));
	strcpy(in + 245, ".commmmm1");
	assert_int_equal(strlen(in), 254);
	assert_null(norm(in, out));
	strcpy(in + 245, ".commmmmm1");
	assert_int_equal(strlen(in), 255);
	assert_string_equal(norm(in, out), "must be at most 254 bytes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_email_normalised),
	    cmocka_unit_test(test_email_rejected),
	    cmocka_unit_test(test_email_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
