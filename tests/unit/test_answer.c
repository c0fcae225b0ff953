/* Unit tests for answer: kinds, rule checks and grading of every kind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/answer.h"

static char why[256];

/* Grade a NUL-terminated answer. */
static int grade(int kind, const char *rule, double tol, const char *answer)
{
	why[0] = '\0';
	return kiln_answer_grade(kind, rule, tol, answer, strlen(answer), why, sizeof(why));
}

static void test_kind_names(void **state)
{
	static const char *const names[] = {"exact", "numeric", "regex", "choice"};
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		assert_int_equal(kiln_answer_kind_parse(names[i]), i);
		assert_string_equal(kiln_answer_kind_name(i), names[i]);
	}
	assert_int_equal(kiln_answer_kind_parse("Exact"), -1);
	assert_int_equal(kiln_answer_kind_parse(""), -1);
	assert_int_equal(kiln_answer_kind_parse(NULL), -1);
	assert_null(kiln_answer_kind_name(4));
	assert_null(kiln_answer_kind_name(-1));
}

static void test_exact_whitespace_and_case(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_EXACT, "Hello World", 0, "hello world"), 1);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "Hello World", 0, "  HELLO \t\n  wORLD \r\n"), 1);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "  hello   world ", 0, "hello world"), 1);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "hello world", 0, "helloworld"), 0);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "hello world", 0, "hello world!"), 0);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "hello world", 0, "hello"), 0);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "hello", 0, ""), 0);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "hello", 0, "   "), 0);
	/* Only ASCII folds: the bytes of "É" and "é" differ and stay so. */
	assert_int_equal(grade(KILN_ANSWER_EXACT, "caf\xc3\xa9", 0, "CAF\xc3\xa9"), 1);
	assert_int_equal(grade(KILN_ANSWER_EXACT, "caf\xc3\xa9", 0, "caf\xc3\x89"), 0);
	/* A non-breaking space is not ASCII whitespace. */
	assert_int_equal(grade(KILN_ANSWER_EXACT, "a b", 0,
	                       "a\xc2\xa0"
	                       "b"),
	                 0);
}

static void test_exact_answer_not_nul_terminated(void **state)
{
	const char buf[] = {'y', 'e', 's', 'X'};

	(void)state;
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_EXACT, "yes", 0, buf, 3, why, sizeof(why)),
	                 1);
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_EXACT, "yes", 0, buf, 4, why, sizeof(why)),
	                 0);
	/* An embedded NUL is a character like any other, not an end. */
	assert_int_equal(
	    kiln_answer_grade(KILN_ANSWER_EXACT, "yes", 0, "yes\0no", 6, why, sizeof(why)), 0);
}

static void test_numeric_forms(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "42", 0, "42"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "42", 0, "42.0"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "12", 0, " 12 "), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "12", 0, "\t12\n"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1000", 0, "1e3"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1000", 0, "1E+3"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0.5", 0, ".5"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "-3", 0, "-3"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "3", 0, "+3"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "-3", 0, "3"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "42", 0, "43"), 0);
}

static void test_numeric_refuses_junk(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "16", 0, "0x10"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "16", 1000, "0x10"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e300, "nan"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e300, "NaN"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e300, "inf"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e300, "-Infinity"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e300, "1e999"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "12", 0, "12abc"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "12", 0, "12 3"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "12", 0, "1 2"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1", 0, "1e"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1.5", 0, "1,5"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1, ""), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1, "  "), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1, "-"), 0);
	assert_int_equal(
	    kiln_answer_grade(KILN_ANSWER_NUMERIC, "12", 0, "12\0", 3, why, sizeof(why)), 0);
	/* Underflow is a tiny number, not an error. */
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0", 1e-300, "1e-400"), 1);
}

/* "1.000...0": 100 bytes are a number, 101 are not. */
static void test_numeric_length_limit(void **state)
{
	char num[102];

	(void)state;
	memset(num, '0', 101);
	num[0] = '1';
	num[1] = '.';
	num[101] = '\0';
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1", 0, num), 0);
	num[100] = '\0';
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1", 0, num), 1);
}

static void test_numeric_tolerance_boundary(void **state)
{
	(void)state;
	/* Inclusive, and decimal: 3.15 - 3.14 is 0.010000000000000231 in doubles. */
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "3.14", 0.01, "3.15"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "3.14", 0.01, "3.13"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "3.14", 0.01, "3.1501"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "3.14", 0.01, "3.1299"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "100", 0.5, "100.5"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "100", 0.5, "100.50001"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0.1", 0, "0.10"), 1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0.3", 0, "0.30000001"), 0);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1e308", 0, "-1e308"), 0);
}

static void test_numeric_rule_cannot_apply(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "abc", 0, "1"), -1);
	assert_string_equal(why, "is not a number");
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "0x10", 0, "16"), -1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "inf", 0, "inf"), -1);
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1", -1, "1"), -1);
	assert_non_null(strstr(why, "tolerance"));
	assert_int_equal(grade(KILN_ANSWER_NUMERIC, "1", 0.0 / 0.0, "1"), -1);
}

static void test_regex_anchored(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a|b", 0, "a"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a|b", 0, "b"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a|b", 0, "ab"), 0);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a|b", 0, "xa"), 0);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "cat", 0, "concatenate"), 0);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[0-9]{4}-[0-9]{2}", 0, "2024-05"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[0-9]{4}-[0-9]{2}", 0, "2024-05\n"), 0);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "colou?r", 0, "color"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "colou?r", 0, "Colour"), 0);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[Cc]olou?r", 0, "Colour"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "x*", 0, ""), 1);
	/* An answer holding a NUL never matches, even a rule matching anything. */
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_REGEX, ".*", 0, "a\0b", 3, why, sizeof(why)),
	                 0);
}

/* A rule that closes the anchoring group early must not escape it. */
static void test_regex_rule_cannot_escape_anchors(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a)|(.*", 0, "anything"), -1);
	assert_string_equal(why, "has an unmatched )");
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a)|(.*)", 0, "anything"), -1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a)(b", 0, "ab"), -1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(a", 0, "a"), -1);
	assert_string_equal(why, "has an unmatched (");
	/* Escaped or bracketed parentheses are literal, not groups. */
	assert_int_equal(grade(KILN_ANSWER_REGEX, "f\\(x\\)", 0, "f(x)"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[)]+|[(]", 0, "))"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[)]+|[(]", 0, ")("), 0);
}

static void test_regex_invalid_rules(void **state)
{
	char big[KILN_ANSWER_REGEX_MAX + 2];

	(void)state;
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[b-a]", 0, "a"), -1);
	assert_non_null(strstr(why, "does not compile: "));
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[a-", 0, "a"), -1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "", 0, ""), -1);
	assert_string_equal(why, "is empty");
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(a)\\1", 0, "aa"), -1);
	assert_non_null(strstr(why, "back-reference"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(grade(KILN_ANSWER_REGEX, big, 0, big), -1);
	assert_string_equal(why, "is longer than 200 bytes");
	big[KILN_ANSWER_REGEX_MAX] = '\0';
	assert_int_equal(grade(KILN_ANSWER_REGEX, big, 0, big), 1);
}

/* Nested intervals compile to their product of states: refused before
 * regcomp, which would take seconds (or run out of memory) on them. */
static void test_regex_nested_intervals_refused(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_REGEX, "((a{0,100}){0,100}){0,100}", 0, "a"), -1);
	assert_non_null(strstr(why, "too costly"));
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(a{1,255}){1,255}", 0, "a"), -1);
	assert_int_equal(
	    grade(KILN_ANSWER_REGEX, "(((((((((a{2}){2}){2}){2}){2}){2}){2}){2}){2})", 0, "a"), -1);
	assert_string_equal(why, "is too costly to match (it repeats too much)");
	/* glibc reads "{,n}" as "{0,n}" (found by fuzz_answer: all memory). */
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[0-9]{,30011}", 0, "1"), -1);
	assert_string_equal(why, "is too costly to match (it repeats too much)");
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a{99999999999999999999}", 0, "a"), -1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a{,3}", 0, "aaa"), 1);
	/* Realistic intervals pass. */
	assert_int_equal(grade(KILN_ANSWER_REGEX, "([0-9]{1,3}\\.){3}[0-9]{1,3}", 0, "10.0.0.255"),
	                 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[a-z]{1,64}", 0, "kiln"), 1);
	/* Bracket expressions are one state, whatever they hold; a ']' and
	 * "{" inside one are literal. */
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[]{(]+", 0, "]{("), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "[[:digit:]]+", 0, "123"), 1);
}

/* Found by fuzz_answer: "a???...?" and "a+++...+" took seconds to compile
 * (or all memory). POSIX leaves a quantified quantifier undefined anyway. */
static void test_regex_stacked_quantifiers_refused(void **state)
{
	static const char *const stacked[] = {
	    "a**", "a+?", "a?*", "(a)*+", "a{2}*", "a*{2}", "a{1,300}{1,300}"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(stacked) / sizeof(stacked[0]); i++) {
		assert_int_equal(grade(KILN_ANSWER_REGEX, stacked[i], 0, "a"), -1);
		assert_non_null(strstr(why, "repeats a repetition"));
	}
	assert_int_equal(grade(KILN_ANSWER_REGEX, "a*b+c?", 0, "bbc"), 1);
}

/* Found by fuzz_answer: "((a{0}){0,100}){0,}" took all memory. A group that
 * repeats inside may be repeated a bounded number of times, not without
 * bound. */
static void test_regex_unbounded_nested_repetition_refused(void **state)
{
	static const char *const nested[] = {"(a*)*", "(ab+)+", "((a{0}){0,100}){0,}", "(x(a?)y)*",
	                                     "((a)+b){2,}"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
		assert_int_equal(grade(KILN_ANSWER_REGEX, nested[i], 0, "a"), -1);
		assert_non_null(strstr(why, "repeats a group that itself repeats"));
	}
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(ab+)?c", 0, "abbc"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "((ab)c)*", 0, "abcabc"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(a+b){2}", 0, "aabab"), 1);
}

/* Nested repeated groups compile in steeply growing time: ten levels. */
static void test_regex_depth_limit(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_REGEX, "((((((((((a))))))))))", 0, "a"), 1);
	assert_int_equal(grade(KILN_ANSWER_REGEX, "(((((((((((a)))))))))))", 0, "a"), -1);
	assert_string_equal(why, "nests groups more than 10 deep");
}

static void test_choice_trimmed_exact(void **state)
{
	(void)state;
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "Paris", 0, "Paris"), 1);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "Paris", 0, "  Paris\n"), 1);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, " Paris ", 0, "Paris"), 1);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "Paris", 0, "paris"), 0);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "New York", 0, "New  York"), 0);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "Paris", 0, "Pari"), 0);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "Paris", 0, "Parisx"), 0);
	assert_int_equal(grade(KILN_ANSWER_CHOICE, "   ", 0, ""), -1);
}

static void test_overlong_answer_incorrect(void **state)
{
	static char ans[KILN_ANSWER_MAX + 2];

	(void)state;
	memset(ans, 'a', KILN_ANSWER_MAX + 1);
	assert_int_equal(
	    kiln_answer_grade(KILN_ANSWER_REGEX, "a*", 0, ans, KILN_ANSWER_MAX, why, sizeof(why)),
	    1);
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_REGEX, "a*", 0, ans, KILN_ANSWER_MAX + 1,
	                                   why, sizeof(why)),
	                 0);
	/* Whitespace padding past the limit does not make a right answer right. */
	memset(ans, ' ', KILN_ANSWER_MAX + 1);
	ans[0] = 'x';
	assert_int_equal(
	    kiln_answer_grade(KILN_ANSWER_EXACT, "x", 0, ans, KILN_ANSWER_MAX, why, sizeof(why)),
	    1);
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_EXACT, "x", 0, ans, KILN_ANSWER_MAX + 1, why,
	                                   sizeof(why)),
	                 0);
	assert_int_equal(
	    kiln_answer_grade(KILN_ANSWER_CHOICE, "x", 0, ans, KILN_ANSWER_MAX, why, sizeof(why)),
	    1);
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_CHOICE, "x", 0, ans, KILN_ANSWER_MAX + 1,
	                                   why, sizeof(why)),
	                 0);
	ans[0] = '1';
	assert_int_equal(kiln_answer_grade(KILN_ANSWER_NUMERIC, "1", 0, ans, KILN_ANSWER_MAX + 1,
	                                   why, sizeof(why)),
	                 0);
}

static void test_rule_check(void **state)
{
	char big[KILN_ANSWER_RULE_MAX + 2];

	(void)state;
	assert_null(kiln_answer_rule_check(KILN_ANSWER_EXACT, "x", why, sizeof(why)));
	assert_string_equal(kiln_answer_rule_check(KILN_ANSWER_EXACT, " \t", why, sizeof(why)),
	                    "is empty");
	assert_null(kiln_answer_rule_check(KILN_ANSWER_NUMERIC, " -2.5e1 ", why, sizeof(why)));
	assert_string_equal(kiln_answer_rule_check(KILN_ANSWER_NUMERIC, "nan", why, sizeof(why)),
	                    "is not a number");
	assert_null(kiln_answer_rule_check(KILN_ANSWER_REGEX, "[a-z]+", why, sizeof(why)));
	assert_non_null(kiln_answer_rule_check(KILN_ANSWER_REGEX, "a{2,1}", why, sizeof(why)));
	assert_non_null(kiln_answer_rule_check(KILN_ANSWER_REGEX, "*a", why, sizeof(why)));
	assert_null(kiln_answer_rule_check(KILN_ANSWER_CHOICE, "B", why, sizeof(why)));
	assert_non_null(kiln_answer_rule_check(7, "x", why, sizeof(why)));
	assert_int_equal(grade(7, "x", 0, "x"), -1);
	/* 500 bytes after trimming are fine, 501 are not. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_string_equal(kiln_answer_rule_check(KILN_ANSWER_EXACT, big, why, sizeof(why)),
	                    "is longer than 500 bytes");
	big[0] = ' ';
	assert_null(kiln_answer_rule_check(KILN_ANSWER_CHOICE, big, why, sizeof(why)));
	/* A compile error lands in why; without why a static reason is given. */
	assert_ptr_equal(kiln_answer_rule_check(KILN_ANSWER_REGEX, "[b-a]", why, sizeof(why)), why);
	assert_string_equal(kiln_answer_rule_check(KILN_ANSWER_REGEX, "[b-a]", NULL, 0),
	                    "does not compile");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_exact_whitespace_and_case),
	    cmocka_unit_test(test_exact_answer_not_nul_terminated),
	    cmocka_unit_test(test_numeric_forms),
	    cmocka_unit_test(test_numeric_refuses_junk),
	    cmocka_unit_test(test_numeric_length_limit),
	    cmocka_unit_test(test_numeric_tolerance_boundary),
	    cmocka_unit_test(test_numeric_rule_cannot_apply),
	    cmocka_unit_test(test_regex_anchored),
	    cmocka_unit_test(test_regex_rule_cannot_escape_anchors),
	    cmocka_unit_test(test_regex_invalid_rules),
	    cmocka_unit_test(test_regex_nested_intervals_refused),
	    cmocka_unit_test(test_regex_stacked_quantifiers_refused),
	    cmocka_unit_test(test_regex_unbounded_nested_repetition_refused),
	    cmocka_unit_test(test_regex_depth_limit),
	    cmocka_unit_test(test_choice_trimmed_exact),
	    cmocka_unit_test(test_overlong_answer_incorrect),
	    cmocka_unit_test(test_rule_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
