/* Unit tests for json: bounded parsing and the typed field getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/json.h"
#include "kiln/util.h"

static json_object *parse(const char *text, char *err, size_t errlen)
{
	return kiln_json_parse(text, strlen(text), 0, err, errlen);
}

static json_object *parse_ok(const char *text)
{
	char err[128] = "";
	json_object *o = parse(text, err, sizeof(err));

	if (o == NULL)
		fail_msg("parse of %s failed: %s", text, err);
	return o;
}

static void assert_parse_error(const char *text, size_t len, const char *want)
{
	char err[128] = "";
	json_object *o = kiln_json_parse(text, len, 0, err, sizeof(err));

	if (o != NULL)
		fail_msg("parse of %s unexpectedly succeeded", text);
	assert_string_equal(err, want);
}

static void test_parse_accepts_any_value(void **state)
{
	static const char *const ok[] = {
	    "{}",     " {\"a\": [1, 2.5, -0, 1e3, \"x\", true, false, null]}\r\n",
	    "[]",     "\"text \\u00e9 \\ud83d\\ude00 \\/\"",
	    "42",     "-9223372036854775808",
	    "true",   "9223372036854775807",
	    "0.5e-3", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
	};
	json_object *o;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(ok); i++) {
		o = parse_ok(ok[i]);
		json_object_put(o);
	}
	o = parse_ok("{\"n\": 7}");
	assert_true(json_object_is_type(o, json_type_object));
	json_object_put(o);
}

static void test_parse_rejects_trailing_garbage(void **state)
{
	(void)state;
	assert_parse_error("{\"a\":1}x", 8, "invalid JSON at byte 7");
	assert_parse_error("{\"a\":1} x", 9, "invalid JSON at byte 8");
	assert_parse_error("[1] [2]", 7, "invalid JSON at byte 4");
	assert_parse_error("1 2", 3, "invalid JSON at byte 2");
}

static void test_parse_rejects_bad_syntax(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
	    {"{", "invalid JSON at byte 1"},       {"[1,]", "invalid JSON at byte 3"},
	    {"NaN", "invalid JSON at byte 0"},     {"[Infinity]", "invalid JSON at byte 1"},
	    {"[1.]", "invalid JSON at byte 3"},    {"01", "invalid JSON at byte 1"},
	    {"-01", "invalid JSON at byte 2"},     {"1e", "invalid JSON at byte 2"},
	    {"'a'", "invalid JSON at byte 0"},     {"\"a\tb\"", "invalid JSON at byte 2"},
	    {"\"\\x\"", "invalid JSON at byte 1"}, {"\"\\u12g4\"", "invalid JSON at byte 1"},
	    {"\"abc", "invalid JSON at byte 4"},   {"tru", "invalid JSON at byte 0"},
	    {"True", "invalid JSON at byte 0"},    {"{\"a\" 1}", "invalid JSON at byte 5"},
	    {"/*c*/1", "invalid JSON at byte 0"},  {"   ", "invalid JSON at byte 3"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(cases); i++)
		assert_parse_error(cases[i].text, strlen(cases[i].text), cases[i].err);
}

static void test_parse_rejects_empty_and_nul(void **state)
{
	(void)state;
	assert_parse_error("", 0, "empty JSON text");
	assert_parse_error("{\"a\":\"b\0c\"}", 11, "invalid JSON at byte 7");
	assert_parse_error("{}\0", 3, "invalid JSON at byte 2");
}

static void test_parse_rejects_bad_utf8(void **state)
{
	(void)state;
	assert_parse_error("\"ab\xff\"", 5, "invalid UTF-8 at byte 3");
	assert_parse_error("\"\xc0\xaf\"", 4, "invalid UTF-8 at byte 1");
	assert_parse_error("\"\xed\xa0\x80\"", 5, "invalid UTF-8 at byte 1");
	assert_parse_error("\"\xe2\x82\"", 4, "invalid UTF-8 at byte 1");
	assert_parse_error("[1, \xc3\xa9]", 7, "invalid JSON at byte 4");
}

static void test_parse_rejects_too_deep(void **state)
{
	char deep[2 * KILN_JSON_MAX_DEPTH + 3];
	char err[128];
	json_object *o;
	size_t n = KILN_JSON_MAX_DEPTH;

	(void)state;
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	o = kiln_json_parse(deep, 2 * n, 0, err, sizeof(err));
	assert_non_null(o);
	json_object_put(o);
	memset(deep, '[', n + 1);
	memset(deep + n + 1, ']', n + 1);
	assert_parse_error(deep, 2 * n + 2, "nesting deeper than 32");
	o = kiln_json_parse("[[1]]", 5, 1, err, sizeof(err));
	assert_null(o);
	assert_string_equal(err, "nesting deeper than 1");
	o = kiln_json_parse("[[1]]", 5, 2, err, sizeof(err));
	assert_non_null(o);
	json_object_put(o);
	/* Depth counts containers, not the scalars inside them. */
	o = kiln_json_parse("{\"a\":1,\"b\":\"[\"}", 15, 1, err, sizeof(err));
	assert_non_null(o);
	json_object_put(o);
}

static void test_parse_rejects_integer_overflow(void **state)
{
	(void)state;
	assert_parse_error("{\"n\":9223372036854775808}", 25, "integer out of range at byte 5");
	assert_parse_error("-9223372036854775809", 20, "integer out of range at byte 0");
	assert_parse_error("[99999999999999999999999]", 25, "integer out of range at byte 1");
}

/* A repeated name, at any depth, is refused: json-c would keep the last. */
static void test_parse_rejects_duplicate_members(void **state)
{
	static const char *const dup[] = {
	    "{\"role\":\"user\",\"role\":\"admin\"}",
	    "{\"a\":{\"x\":1},\"a\":{\"x\":1}}",
	    "[1,{\"b\":[{\"c\":1,\"d\":2,\"c\":3}]}]",
	    "{\"a\":1,\"\\u0061\":2}",
	};
	char err[128];
	json_object *o;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(dup); i++)
		assert_parse_error(dup[i], strlen(dup[i]),
		                   "duplicate member name in a JSON object");
	o = kiln_json_parse("{\"a\":{\"a\":1},\"b\":\"a:a\"}", 23, 0, err, sizeof(err));
	assert_non_null(o);
	json_object_put(o);
}

static void test_string_getter(void **state)
{
	json_object *o =
	    parse_ok("{\"title\":\"Loops\",\"n\":3,\"empty\":\"\",\"nul\":\"a\\u0000b\"}");
	struct kiln_field_errors errs = {0};
	const char *s = NULL;

	(void)state;
	assert_int_equal(kiln_json_string(o, "title", 1, 1, 200, &s, &errs), 0);
	assert_string_equal(s, "Loops");
	assert_int_equal(kiln_json_string(o, "missing", 0, 1, 200, &s, &errs), 1);
	assert_int_equal(errs.n, 0);
	assert_int_equal(kiln_json_string(o, "missing", 1, 1, 200, &s, &errs), -1);
	assert_string_equal(errs.e[0].field, "missing");
	assert_string_equal(errs.e[0].reason, "is required");
	assert_int_equal(kiln_json_string(o, "n", 1, 1, 200, &s, &errs), -1);
	assert_string_equal(errs.e[1].reason, "must be a string");
	assert_int_equal(kiln_json_string(o, "empty", 1, 1, 200, &s, &errs), -1);
	assert_string_equal(errs.e[2].field, "empty");
	assert_string_equal(errs.e[2].reason, "must be 1 to 200 bytes");
	assert_int_equal(kiln_json_string(o, "title", 1, 0, 4, &s, &errs), -1);
	assert_string_equal(errs.e[3].reason, "must be at most 4 bytes");
	assert_int_equal(kiln_json_string(o, "title", 1, 5, 5, &s, &errs), 0);
	assert_int_equal(kiln_json_string(o, "nul", 1, 0, 10, &s, &errs), -1);
	assert_int_equal(errs.n, 5);
	json_object_put(o);
}

static void test_int_getter(void **state)
{
	json_object *o = parse_ok("{\"d\":3,\"f\":3.0,\"s\":\"3\",\"big\":9223372036854775807,"
	                          "\"neg\":-9223372036854775808,\"nul\":null}");
	struct kiln_field_errors errs = {0};
	int64_t v = 0;

	(void)state;
	assert_int_equal(kiln_json_int(o, "d", 1, 1, 5, &v, &errs), 0);
	assert_int_equal(v, 3);
	assert_int_equal(kiln_json_int(o, "absent", 0, 1, 5, &v, &errs), 1);
	assert_int_equal(kiln_json_int(o, "absent", 1, 1, 5, &v, &errs), -1);
	assert_string_equal(errs.e[0].reason, "is required");
	assert_int_equal(kiln_json_int(o, "f", 1, 1, 5, &v, &errs), -1);
	assert_string_equal(errs.e[1].reason, "must be an integer");
	assert_int_equal(kiln_json_int(o, "s", 1, 1, 5, &v, &errs), -1);
	assert_string_equal(errs.e[2].reason, "must be an integer");
	assert_int_equal(kiln_json_int(o, "d", 1, 4, 5, &v, &errs), -1);
	assert_string_equal(errs.e[3].field, "d");
	assert_string_equal(errs.e[3].reason, "must be between 4 and 5");
	assert_int_equal(kiln_json_int(o, "nul", 0, 1, 5, &v, &errs), -1);
	assert_string_equal(errs.e[4].reason, "must be an integer");
	assert_int_equal(kiln_json_int(o, "big", 1, INT64_MIN, INT64_MAX, &v, &errs), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(kiln_json_int(o, "neg", 1, INT64_MIN, INT64_MAX, &v, &errs), 0);
	assert_true(v == INT64_MIN);
	json_object_put(o);
}

static void test_int_getter_rejects_saturated_uint64(void **state)
{
	json_object *o = json_object_new_object();
	struct kiln_field_errors errs = {0};
	int64_t v = 0;

	(void)state;
	json_object_object_add(o, "u", json_object_new_uint64(UINT64_MAX));
	assert_int_equal(kiln_json_int(o, "u", 1, INT64_MIN, INT64_MAX, &v, &errs), -1);
	assert_string_equal(errs.e[0].reason, "must be an integer");
	json_object_put(o);
}

static void test_bool_getter(void **state)
{
	json_object *o = parse_ok("{\"t\":true,\"f\":false,\"n\":1,\"s\":\"true\"}");
	struct kiln_field_errors errs = {0};
	int b = -1;

	(void)state;
	assert_int_equal(kiln_json_bool(o, "t", 1, &b, &errs), 0);
	assert_int_equal(b, 1);
	assert_int_equal(kiln_json_bool(o, "f", 1, &b, &errs), 0);
	assert_int_equal(b, 0);
	assert_int_equal(kiln_json_bool(o, "x", 0, &b, &errs), 1);
	assert_int_equal(kiln_json_bool(o, "x", 1, &b, &errs), -1);
	assert_string_equal(errs.e[0].reason, "is required");
	assert_int_equal(kiln_json_bool(o, "n", 1, &b, &errs), -1);
	assert_string_equal(errs.e[1].reason, "must be true or false");
	assert_int_equal(kiln_json_bool(o, "s", 1, &b, &errs), -1);
	assert_int_equal(errs.n, 3);
	json_object_put(o);
}

static void test_getters_need_an_object(void **state)
{
	json_object *o = parse_ok("[1]");
	struct kiln_field_errors errs = {0};
	const char *s;
	int64_t v;
	int b;

	(void)state;
	assert_int_equal(kiln_json_string(o, "a", 0, 0, 1, &s, &errs), -1);
	assert_int_equal(kiln_json_int(o, "a", 0, 0, 1, &v, &errs), -1);
	assert_int_equal(kiln_json_bool(o, "a", 0, &b, &errs), -1);
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.e[0].field, "");
	assert_string_equal(errs.e[0].reason, "must be a JSON object");
	json_object_put(o);
}

static void test_only_reports_unknown_members(void **state)
{
	static const char *const allowed[] = {"title", "points", NULL};
	json_object *o = parse_ok("{\"title\":\"x\",\"admin\":true,\"points\":1,\"role\":\"a\"}");
	struct kiln_field_errors errs = {0};

	(void)state;
	assert_int_equal(kiln_json_only(o, allowed, &errs), 2);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.e[0].field, "admin");
	assert_string_equal(errs.e[0].reason, "unknown field");
	assert_string_equal(errs.e[1].field, "role");
	json_object_put(o);
	o = parse_ok("{\"title\":\"x\"}");
	errs.n = 0;
	assert_int_equal(kiln_json_only(o, allowed, &errs), 0);
	assert_int_equal(errs.n, 0);
	json_object_put(o);
}

static void test_errors_stop_at_capacity(void **state)
{
	struct kiln_field_errors errs = {0};
	char name[16];
	int i;

	(void)state;
	for (i = 0; i < KILN_JSON_MAX_ERRORS + 5; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		kiln_field_error_add(&errs, name, "is required");
	}
	assert_int_equal(errs.n, KILN_JSON_MAX_ERRORS);
	assert_string_equal(errs.e[KILN_JSON_MAX_ERRORS - 1].field, "f15");
}

static void test_text_is_compact(void **state)
{
	json_object *o = parse_ok("{ \"a\" : [ 1 , \"x/y\" ] }");
	size_t len = 0;
	const char *s = kiln_json_text(o, &len);

	(void)state;
	assert_string_equal(s, "{\"a\":[1,\"x/y\"]}");
	assert_int_equal(len, strlen(s));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_accepts_any_value),
	    cmocka_unit_test(test_parse_rejects_trailing_garbage),
	    cmocka_unit_test(test_parse_rejects_bad_syntax),
	    cmocka_unit_test(test_parse_rejects_empty_and_nul),
	    cmocka_unit_test(test_parse_rejects_bad_utf8),
	    cmocka_unit_test(test_parse_rejects_too_deep),
	    cmocka_unit_test(test_parse_rejects_integer_overflow),
	    cmocka_unit_test(test_parse_rejects_duplicate_members),
	    cmocka_unit_test(test_string_getter),
	    cmocka_unit_test(test_int_getter),
	    cmocka_unit_test(test_int_getter_rejects_saturated_uint64),
	    cmocka_unit_test(test_bool_getter),
	    cmocka_unit_test(test_getters_need_an_object),
	    cmocka_unit_test(test_only_reports_unknown_members),
	    cmocka_unit_test(test_errors_stop_at_capacity),
	    cmocka_unit_test(test_text_is_compact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
