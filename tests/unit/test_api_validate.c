/* Unit tests for kiln-api's input validation (apps/api/validate.c): each
 * member's bounds, the answer rules per kind, the choice and tolerance
 * rules, PATCH laid over a stored row, the list's filters and cursor scope,
 * the text[] literal of choices, and If-Match / If-None-Match lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../apps/api/validate.c"

#define BASE                                                                                       \
	"\"slug\":\"sum-of-squares\",\"title\":\"Sum of squares\",\"category\":\"math\","          \
	"\"difficulty\":2,\"points\":10,"
#define EXACT   "{" BASE "\"answer_kind\":\"exact\",\"answer\":\"forty two\"}"
#define NUMERIC "{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"42\",\"tolerance\":0.5}"
#define REGEX   "{" BASE "\"answer_kind\":\"regex\",\"answer\":\"[0-9]+\"}"
#define CHOICE                                                                                     \
	"{" BASE "\"answer_kind\":\"choice\",\"answer\":\"b\",\"choices\":[\"a\",\"b\",\"c\"]}"

/* The JSON objects parsed by a test, released after it. */
static json_object *parsed[64];
static int nparsed;

static int release(void **state)
{
	(void)state;
	while (nparsed > 0)
		json_object_put(parsed[--nparsed]);
	return 0;
}

static json_object *parse(const char *text)
{
	char err[128] = "";
	json_object *o = kiln_json_parse(text, strlen(text), 0, err, sizeof(err));

	if (o == NULL)
		fail_msg("parse of %s failed: %s", text, err);
	if (nparsed == (int)KILN_ARRAY_LEN(parsed))
		fail_msg("too many parsed objects in one test");
	parsed[nparsed++] = o;
	return o;
}

/* Validate text as a POST body into ex; errs gets what was refused. */
static int create(const char *text, struct api_exercise *ex, struct kiln_field_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	api_validate_init(ex);
	return api_validate_exercise(parse(text), ex, 0, errs);
}

/* The reason recorded for field, or NULL. */
static const char *reason(const struct kiln_field_errors *errs, const char *field)
{
	int i;

	for (i = 0; i < errs->n; i++) {
		if (strcmp(errs->e[i].field, field) == 0)
			return errs->e[i].reason;
	}
	return NULL;
}

/* Exactly one error, for field, whose reason contains want. */
static void assert_only_error(const struct kiln_field_errors *errs, const char *field,
                              const char *want)
{
	if (errs->n != 1)
		fail_msg("expected one error (%s), got %d, first %s: %s", field, errs->n,
		         errs->n ? errs->e[0].field : "-", errs->n ? errs->e[0].reason : "-");
	assert_string_equal(errs->e[0].field, field);
	if (strstr(errs->e[0].reason, want) == NULL)
		fail_msg("reason for %s is \"%s\", wanted \"%s\"", field, errs->e[0].reason, want);
}

/* A POST body of BASE with member (a JSON member text such as
 * "\"slug\":\"x\"") replacing or adding to the exact-kind body. */
static int create_with(const char *member, struct api_exercise *ex, struct kiln_field_errors *errs)
{
	char text[24000];
	json_object *obj, *over;
	int n = snprintf(text, sizeof(text), "{%s}", member);

	assert_true(n > 0 && (size_t)n < sizeof(text));
	/* A JSON text may not repeat a member (kiln_json_parse refuses it):
	 * member replaces the base's in the parsed object. */
	obj = parse("{\"slug\":\"s\",\"title\":\"T\",\"category\":\"c\",\"difficulty\":1,"
	            "\"points\":0,\"answer_kind\":\"exact\",\"answer\":\"x\"}");
	over = parse(text);
	json_object_object_foreach(over, key, v)
	{
		json_object_object_add(obj, key, json_object_get(v));
	}
	memset(errs, 0, sizeof(*errs));
	api_validate_init(ex);
	return api_validate_exercise(obj, ex, 0, errs);
}

/* "\"name\":\"<c repeated n times>\"" */
static const char *member_of_len(const char *name, char c, size_t n)
{
	static char text[24000];
	int k = snprintf(text, sizeof(text), "\"%s\":\"", name);

	assert_true(k > 0 && (size_t)k + n + 2 < sizeof(text));
	memset(text + k, c, n);
	strcpy(text + k + n, "\"");
	return text;
}

static void test_valid_body_of_each_kind(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create(EXACT, &ex, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(ex.slug, "sum-of-squares");
	assert_string_equal(ex.title, "Sum of squares");
	assert_string_equal(ex.category, "math");
	assert_int_equal(ex.difficulty, 2);
	assert_int_equal(ex.points, 10);
	assert_string_equal(ex.body, ""); /* default */
	assert_int_equal(ex.kind, KILN_ANSWER_EXACT);
	assert_string_equal(ex.answer, "forty two");
	assert_int_equal(ex.has_tolerance, 0);
	assert_int_equal(ex.nchoices, 0);
	assert_int_equal(ex.published, 1); /* default */

	assert_int_equal(create(NUMERIC, &ex, &errs), 0);
	assert_int_equal(ex.kind, KILN_ANSWER_NUMERIC);
	assert_int_equal(ex.has_tolerance, 1);
	assert_true(ex.tolerance == 0.5);

	assert_int_equal(create(REGEX, &ex, &errs), 0);
	assert_int_equal(ex.kind, KILN_ANSWER_REGEX);

	assert_int_equal(create(CHOICE, &ex, &errs), 0);
	assert_int_equal(ex.kind, KILN_ANSWER_CHOICE);
	assert_int_equal(ex.nchoices, 3);
	assert_string_equal(ex.choices[0], "a");
	assert_string_equal(ex.choices[2], "c");
}

static void test_post_requires_the_core_members(void **state)
{
	static const char *const required[] = {"slug",   "title",       "category", "difficulty",
	                                       "points", "answer_kind", "answer"};
	struct kiln_field_errors errs;
	struct api_exercise ex;
	size_t i;

	(void)state;
	assert_int_equal(create("{}", &ex, &errs), -1);
	assert_int_equal(errs.n, (int)KILN_ARRAY_LEN(required));
	for (i = 0; i < KILN_ARRAY_LEN(required); i++)
		assert_string_equal(reason(&errs, required[i]), "is required");
	assert_null(reason(&errs, "body"));
	assert_null(reason(&errs, "published"));
	assert_null(reason(&errs, "tolerance"));
}

static void test_non_object_refused(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create("[1]", &ex, &errs), -1);
	assert_only_error(&errs, "", "must be a JSON object");
}

static void test_slug_form_and_bounds(void **state)
{
	static const char *const good[] = {"a", "0", "a-b", "ab1-2c-d3"};
	static const char *const bad[] = {"",    "-a",  "a-",  "a--b",    "A",
	                                  "a_b", "a b", "a.b", "\xc3\xa9"};
	struct kiln_field_errors errs;
	struct api_exercise ex;
	char member[64];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(good); i++) {
		snprintf(member, sizeof(member), "\"slug\":\"%s\"", good[i]);
		assert_int_equal(create_with(member, &ex, &errs), 0);
		assert_string_equal(ex.slug, good[i]);
	}
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		snprintf(member, sizeof(member), "\"slug\":\"%s\"", bad[i]);
		assert_int_equal(create_with(member, &ex, &errs), -1);
		assert_only_error(&errs, "slug", "lowercase letters and digits");
	}
	assert_int_equal(create_with(member_of_len("slug", 'a', 100), &ex, &errs), 0);
	assert_int_equal(create_with(member_of_len("slug", 'a', 101), &ex, &errs), -1);
	assert_only_error(&errs, "slug", "1 to 100");
	assert_int_equal(create_with("\"slug\":7", &ex, &errs), -1);
	assert_only_error(&errs, "slug", "must be a string");
	assert_int_equal(create_with("\"slug\":\"a\\u0000b\"", &ex, &errs), -1);
	assert_only_error(&errs, "slug", "NUL");
}

static void test_category_form_and_bounds(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with(member_of_len("category", 'z', 50), &ex, &errs), 0);
	assert_int_equal(create_with(member_of_len("category", 'z', 51), &ex, &errs), -1);
	assert_only_error(&errs, "category", "1 to 50");
	assert_int_equal(create_with("\"category\":\"Math\"", &ex, &errs), -1);
	assert_only_error(&errs, "category", "lowercase");
	assert_int_equal(create_with("\"category\":\"\"", &ex, &errs), -1);
	assert_only_error(&errs, "category", "1 to 50");
}

static void test_title_trimmed_and_bounded(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with("\"title\":\" \\t Caf\xc3\xa9 au lait \\n\"", &ex, &errs), 0);
	assert_string_equal(ex.title, "Caf\xc3\xa9 au lait");
	assert_ptr_equal(ex.title, ex.title_buf);

	assert_int_equal(create_with(member_of_len("title", 'T', 200), &ex, &errs), 0);
	assert_int_equal(strlen(ex.title), 200);
	assert_int_equal(create_with(member_of_len("title", 'T', 201), &ex, &errs), -1);
	assert_only_error(&errs, "title", "1 to 200 bytes");

	assert_int_equal(create_with("\"title\":\"   \"", &ex, &errs), -1);
	assert_only_error(&errs, "title", "1 to 200 bytes");

	assert_int_equal(create_with("\"title\":\"a\\u0001b\"", &ex, &errs), -1);
	assert_only_error(&errs, "title", "control characters");
	assert_int_equal(create_with("\"title\":\"a\\tb\"", &ex, &errs), -1);
	assert_only_error(&errs, "title", "control characters");
	assert_int_equal(create_with("\"title\":\"a\\u0085b\"", &ex, &errs), -1); /* C1 */
	assert_only_error(&errs, "title", "control characters");
	assert_int_equal(create_with("\"title\":\"a\\u007fb\"", &ex, &errs), -1); /* DEL */
	assert_only_error(&errs, "title", "control characters");
}

static void test_title_counts_bytes_after_trimming(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;
	char member[300];
	int n;

	(void)state;
	n = snprintf(member, sizeof(member), "\"title\":\"  ");
	memset(member + n, 'T', 200);
	strcpy(member + n + 200, "  \"");
	assert_int_equal(create_with(member, &ex, &errs), 0);
	assert_int_equal(strlen(ex.title), 200);
}

static void test_difficulty_and_points_bounds(void **state)
{
	static const struct {
		const char *member;
		int ok;
		const char *field;
	} cases[] = {
	    {"\"difficulty\":1", 1, NULL},
	    {"\"difficulty\":5", 1, NULL},
	    {"\"difficulty\":0", 0, "difficulty"},
	    {"\"difficulty\":6", 0, "difficulty"},
	    {"\"difficulty\":2.0", 0, "difficulty"},
	    {"\"difficulty\":\"3\"", 0, "difficulty"},
	    {"\"difficulty\":null", 0, "difficulty"},
	    {"\"points\":0", 1, NULL},
	    {"\"points\":1000", 1, NULL},
	    {"\"points\":-1", 0, "points"},
	    {"\"points\":1001", 0, "points"},
	    {"\"points\":true", 0, "points"},
	};
	struct kiln_field_errors errs;
	struct api_exercise ex;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		if (cases[i].ok) {
			assert_int_equal(create_with(cases[i].member, &ex, &errs), 0);
			continue;
		}
		assert_int_equal(create_with(cases[i].member, &ex, &errs), -1);
		assert_only_error(&errs, cases[i].field, "must be an integer from");
	}
	assert_int_equal(create_with("\"difficulty\":5,\"points\":1000", &ex, &errs), 0);
	assert_int_equal(ex.difficulty, 5);
	assert_int_equal(ex.points, 1000);
}

static void test_body_bounds_and_text(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with(member_of_len("body", 'b', 20000), &ex, &errs), 0);
	assert_int_equal(strlen(ex.body), 20000);
	assert_int_equal(create_with(member_of_len("body", 'b', 20001), &ex, &errs), -1);
	assert_only_error(&errs, "body", "at most 20000 bytes");
	assert_int_equal(create_with("\"body\":\"line 1\\r\\n\\tline 2\\n\"", &ex, &errs), 0);
	assert_string_equal(ex.body, "line 1\r\n\tline 2\n");
	assert_int_equal(create_with("\"body\":\"\"", &ex, &errs), 0);
	assert_int_equal(create_with("\"body\":\"bell\\u0007\"", &ex, &errs), -1);
	assert_only_error(&errs, "body", "control characters");
	assert_int_equal(create_with("\"body\":null", &ex, &errs), -1);
	assert_only_error(&errs, "body", "must be a string");
}

static void test_answer_kind_names(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with("\"answer_kind\":\"fuzzy\"", &ex, &errs), -1);
	/* The kind is unknown: no rule depending on it is judged. */
	assert_only_error(&errs, "answer_kind", "exact, numeric, regex or choice");
	assert_int_equal(create_with("\"answer_kind\":1", &ex, &errs), -1);
	assert_only_error(&errs, "answer_kind", "exact, numeric, regex or choice");
	assert_int_equal(create_with("\"answer_kind\":\"exact\\u0000x\"", &ex, &errs), -1);
	assert_only_error(&errs, "answer_kind", "exact, numeric, regex or choice");
	assert_int_equal(create_with("\"answer_kind\":\"fuzzy\",\"tolerance\":1", &ex, &errs), -1);
	assert_only_error(&errs, "answer_kind", "exact");
}

static void test_answer_bounds(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with(member_of_len("answer", 'a', 500), &ex, &errs), 0);
	assert_int_equal(create_with(member_of_len("answer", 'a', 501), &ex, &errs), -1);
	assert_only_error(&errs, "answer", "1 to 500 bytes");
	assert_int_equal(create_with("\"answer\":\"\"", &ex, &errs), -1);
	assert_only_error(&errs, "answer", "1 to 500 bytes");
	assert_int_equal(create_with("\"answer\":[\"x\"]", &ex, &errs), -1);
	assert_only_error(&errs, "answer", "must be a string");
	/* exact: blank once trimmed is no rule (kiln_answer_rule_check). */
	assert_int_equal(create_with("\"answer\":\"   \"", &ex, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(reason(&errs, "answer"));
}

static void test_numeric_rules(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"-1.5e3\","
	                        "\"tolerance\":0}",
	                        &ex, &errs),
	                 0);
	assert_true(ex.has_tolerance && ex.tolerance == 0);
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"7\","
	                        "\"tolerance\":2}",
	                        &ex, &errs),
	                 0);
	assert_true(ex.tolerance == 2.0);

	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"forty\","
	                        "\"tolerance\":1}",
	                        &ex, &errs),
	                 -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(reason(&errs, "answer"));
	assert_int_equal(
	    create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"1\"}", &ex, &errs), -1);
	assert_only_error(&errs, "tolerance", "is required when answer_kind is numeric");
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"1\","
	                        "\"tolerance\":null}",
	                        &ex, &errs),
	                 -1);
	assert_only_error(&errs, "tolerance", "is required when answer_kind is numeric");
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"1\","
	                        "\"tolerance\":-0.1}",
	                        &ex, &errs),
	                 -1);
	assert_only_error(&errs, "tolerance", "must be a number >= 0");
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"1\","
	                        "\"tolerance\":\"1\"}",
	                        &ex, &errs),
	                 -1);
	assert_only_error(&errs, "tolerance", "must be a number >= 0");
	assert_int_equal(create("{" BASE "\"answer_kind\":\"numeric\",\"answer\":\"1\","
	                        "\"tolerance\":1e999}",
	                        &ex, &errs),
	                 -1);
	assert_only_error(&errs, "tolerance", "must be a number >= 0");
}

static void test_tolerance_only_for_numeric(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with("\"tolerance\":0.5", &ex, &errs), -1);
	assert_only_error(&errs, "tolerance", "is only allowed when answer_kind is numeric");
	assert_int_equal(create_with("\"tolerance\":null", &ex, &errs), 0);
	assert_int_equal(ex.has_tolerance, 0);
}

static void test_regex_rules(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;
	char text[600];

	(void)state;
	assert_int_equal(
	    create("{" BASE "\"answer_kind\":\"regex\",\"answer\":\"(a|b\"}", &ex, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(reason(&errs, "answer"));
	snprintf(text, sizeof(text), "{" BASE "\"answer_kind\":\"regex\",%s}",
	         member_of_len("answer", 'a', KILN_ANSWER_REGEX_MAX));
	assert_int_equal(create(text, &ex, &errs), 0);
	snprintf(text, sizeof(text), "{" BASE "\"answer_kind\":\"regex\",%s}",
	         member_of_len("answer", 'a', KILN_ANSWER_REGEX_MAX + 1));
	assert_int_equal(create(text, &ex, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(reason(&errs, "answer"));
}

static void test_choice_rules(void **state)
{
	static const struct {
		const char *choices;
		const char *want;
	} bad[] = {
	    {"\"b\"", "must be an array of 2 to 10 strings"},
	    {"[\"b\"]", "must be an array of 2 to 10 strings"},
	    {"[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]",
	     "must be an array of 2 to 10 strings"},
	    {"[\"b\",\"b\"]", "must be distinct"},
	    {"[\"b\",\"\"]", "1 to 200 bytes"},
	    {"[\"b\",2]", "1 to 200 bytes"},
	    {"[\"b\",null]", "1 to 200 bytes"},
	};
	struct kiln_field_errors errs;
	struct api_exercise ex;
	char text[1024];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		snprintf(text, sizeof(text),
		         "{" BASE "\"answer_kind\":\"choice\",\"answer\":\"b\",\"choices\":%s}",
		         bad[i].choices);
		assert_int_equal(create(text, &ex, &errs), -1);
		assert_only_error(&errs, "choices", bad[i].want);
	}
	snprintf(text, sizeof(text),
	         "{" BASE "\"answer_kind\":\"choice\",\"answer\":\"b\","
	         "\"choices\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\","
	         "\"i\",\"j\"]}");
	assert_int_equal(create(text, &ex, &errs), 0);
	assert_int_equal(ex.nchoices, 10);
	snprintf(text, sizeof(text),
	         "{" BASE "\"answer_kind\":\"choice\",\"answer\":\"b\","
	         "\"choices\":[\"b\",%s]}",
	         member_of_len("x", 'c', 201) + strlen("\"x\":"));
	assert_int_equal(create(text, &ex, &errs), -1);
	assert_only_error(&errs, "choices", "1 to 200 bytes");

	assert_int_equal(create("{" BASE "\"answer_kind\":\"choice\",\"answer\":\"z\","
	                        "\"choices\":[\"a\",\"b\"]}",
	                        &ex, &errs),
	                 -1);
	assert_only_error(&errs, "answer", "must be one of choices");
	assert_int_equal(
	    create("{" BASE "\"answer_kind\":\"choice\",\"answer\":\"b\"}", &ex, &errs), -1);
	assert_only_error(&errs, "choices", "is required when answer_kind is choice");
	assert_int_equal(create_with("\"choices\":[\"x\",\"y\"]", &ex, &errs), -1);
	assert_only_error(&errs, "choices", "is only allowed when answer_kind is choice");
	assert_int_equal(create_with("\"choices\":null", &ex, &errs), 0);
}

static void test_published_flag(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(create_with("\"published\":false", &ex, &errs), 0);
	assert_int_equal(ex.published, 0);
	assert_int_equal(create_with("\"published\":true", &ex, &errs), 0);
	assert_int_equal(ex.published, 1);
	assert_int_equal(create_with("\"published\":\"yes\"", &ex, &errs), -1);
	assert_only_error(&errs, "published", "true or false");
}

static void test_every_error_is_reported(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	assert_int_equal(
	    create("{\"slug\":\"A\",\"title\":\"\",\"category\":\"c\",\"difficulty\":9,"
	           "\"points\":-5,\"answer_kind\":\"exact\",\"answer\":\"x\"}",
	           &ex, &errs),
	    -1);
	assert_int_equal(errs.n, 4);
	assert_non_null(reason(&errs, "slug"));
	assert_non_null(reason(&errs, "title"));
	assert_non_null(reason(&errs, "difficulty"));
	assert_non_null(reason(&errs, "points"));
}

/* A stored row of the given kind, as exercises.c loads it. */
static void stored(struct api_exercise *ex, int kind)
{
	api_validate_init(ex);
	ex->slug = "old-slug";
	ex->title = "Old title";
	ex->category = "math";
	ex->difficulty = 3;
	ex->points = 20;
	ex->body = "old body";
	ex->kind = kind;
	ex->published = 1;
	if (kind == KILN_ANSWER_NUMERIC) {
		ex->answer = "42";
		ex->has_tolerance = 1;
		ex->tolerance = 0.25;
	} else if (kind == KILN_ANSWER_CHOICE) {
		ex->answer = "b";
		ex->choices[0] = "a";
		ex->choices[1] = "b";
		ex->choices[2] = "c";
		ex->nchoices = 3;
	} else {
		ex->answer = "abc";
	}
}

static int patch(const char *text, struct api_exercise *ex, struct kiln_field_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	return api_validate_exercise(parse(text), ex, 1, errs);
}

static void test_patch_changes_only_what_it_names(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"title\":\" New title \",\"points\":0}", &ex, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(ex.title, "New title");
	assert_int_equal(ex.points, 0);
	assert_string_equal(ex.slug, "old-slug");
	assert_string_equal(ex.category, "math");
	assert_int_equal(ex.difficulty, 3);
	assert_string_equal(ex.body, "old body");
	assert_int_equal(ex.kind, KILN_ANSWER_NUMERIC);
	assert_string_equal(ex.answer, "42");
	assert_true(ex.has_tolerance && ex.tolerance == 0.25);
	assert_int_equal(ex.published, 1);

	assert_int_equal(patch("{\"published\":false}", &ex, &errs), 0);
	assert_int_equal(ex.published, 0);
}

static void test_patch_must_name_a_member(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	stored(&ex, KILN_ANSWER_EXACT);
	assert_int_equal(patch("{}", &ex, &errs), -1);
	assert_only_error(&errs, "", "at least one field");
}

static void test_patch_refused_member_keeps_the_stored_value(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	stored(&ex, KILN_ANSWER_EXACT);
	assert_int_equal(patch("{\"difficulty\":9,\"slug\":\"Bad\"}", &ex, &errs), -1);
	assert_int_equal(errs.n, 2);
	assert_int_equal(ex.difficulty, 3);
	assert_string_equal(ex.slug, "old-slug");
}

static void test_patch_result_must_be_valid(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	/* The stored answer "abc" is no number. */
	stored(&ex, KILN_ANSWER_EXACT);
	assert_int_equal(patch("{\"answer_kind\":\"numeric\",\"tolerance\":1}", &ex, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(reason(&errs, "answer"));
	stored(&ex, KILN_ANSWER_EXACT);
	assert_int_equal(
	    patch("{\"answer_kind\":\"numeric\",\"answer\":\"3.5\",\"tolerance\":1}", &ex, &errs),
	    0);
	assert_int_equal(ex.kind, KILN_ANSWER_NUMERIC);

	/* New choices without the stored answer. */
	stored(&ex, KILN_ANSWER_CHOICE);
	assert_int_equal(patch("{\"choices\":[\"x\",\"y\"]}", &ex, &errs), -1);
	assert_only_error(&errs, "answer", "must be one of choices");
	stored(&ex, KILN_ANSWER_CHOICE);
	assert_int_equal(patch("{\"answer\":\"z\"}", &ex, &errs), -1);
	assert_only_error(&errs, "answer", "must be one of choices");
	stored(&ex, KILN_ANSWER_CHOICE);
	assert_int_equal(patch("{\"answer\":\"c\"}", &ex, &errs), 0);
	assert_string_equal(ex.answer, "c");

	/* Moving to choice needs choices; numeric's tolerance cannot go. */
	stored(&ex, KILN_ANSWER_EXACT);
	assert_int_equal(patch("{\"answer_kind\":\"choice\"}", &ex, &errs), -1);
	assert_only_error(&errs, "choices", "is required when answer_kind is choice");
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"tolerance\":null}", &ex, &errs), -1);
	assert_only_error(&errs, "tolerance", "is required when answer_kind is numeric");
}

static void test_patch_to_another_kind_drops_stale_members(void **state)
{
	struct kiln_field_errors errs;
	struct api_exercise ex;

	(void)state;
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"answer_kind\":\"exact\"}", &ex, &errs), 0);
	assert_int_equal(ex.has_tolerance, 0);
	assert_string_equal(ex.answer, "42");

	stored(&ex, KILN_ANSWER_CHOICE);
	assert_int_equal(patch("{\"answer_kind\":\"exact\"}", &ex, &errs), 0);
	assert_int_equal(ex.nchoices, 0);

	/* Set explicitly, they are judged as given. */
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"answer_kind\":\"exact\",\"tolerance\":1}", &ex, &errs), -1);
	assert_only_error(&errs, "tolerance", "is only allowed when answer_kind is numeric");

	/* Same kind: nothing is dropped. */
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"answer_kind\":\"numeric\"}", &ex, &errs), 0);
	assert_true(ex.has_tolerance && ex.tolerance == 0.25);

	/* An unknown kind changes nothing and judges nothing else. */
	stored(&ex, KILN_ANSWER_NUMERIC);
	assert_int_equal(patch("{\"answer_kind\":\"fuzzy\"}", &ex, &errs), -1);
	assert_only_error(&errs, "answer_kind", "exact");
	assert_int_equal(ex.kind, KILN_ANSWER_NUMERIC);
	assert_int_equal(ex.has_tolerance, 1);
}

static void test_choices_from_a_stored_row(void **state)
{
	struct api_exercise ex;

	(void)state;
	api_validate_init(&ex);
	assert_null(api_validate_choices(parse("[\"x\",\"y \\\"q\\\"\"]"), &ex));
	assert_int_equal(ex.nchoices, 2);
	assert_string_equal(ex.choices[1], "y \"q\"");
	assert_null(api_validate_choices(NULL, &ex));
	assert_int_equal(ex.nchoices, 0);
}

static void test_fields_list_matches_the_rules(void **state)
{
	struct kiln_field_errors errs = {0};
	size_t i;

	(void)state;
	for (i = 0; api_validate_fields[i]; i++) {
		assert_true(i < KILN_ARRAY_LEN(member_rules));
		assert_string_equal(api_validate_fields[i], member_rules[i].name);
	}
	assert_int_equal(i, KILN_ARRAY_LEN(member_rules));
	assert_int_equal(kiln_json_only(parse(NUMERIC), api_validate_fields, &errs), 0);
	assert_int_equal(
	    kiln_json_only(parse("{\"id\":1,\"slug\":\"a\"}"), api_validate_fields, &errs), 1);
	assert_string_equal(reason(&errs, "id"), "unknown field");
}

static void test_choices_as_a_text_array_literal(void **state)
{
	struct api_exercise ex;
	struct kiln_buf b;

	(void)state;
	kiln_buf_init(&b);
	api_validate_init(&ex);
	assert_null(api_validate_choices(parse("[\"a\",\"b\\\"c\",\"d\\\\e\",\"{x,y}\",\"NULL\","
	                                       "\" sp \",\"\xc3\xa9\"]"),
	                                 &ex));
	assert_int_equal(api_validate_choices_sql(&ex, &b), 0);
	assert_string_equal(b.data, "{\"a\",\"b\\\"c\",\"d\\\\e\",\"{x,y}\",\"NULL\",\" sp \","
	                            "\"\xc3\xa9\"}");
	kiln_buf_free(&b);
}

static int list(const char *qs, struct api_list_filter *f, struct kiln_field_errors *errs)
{
	static struct kiln_query q;

	memset(errs, 0, sizeof(*errs));
	assert_int_equal(kiln_query_parse(&q, qs), 0);
	return api_validate_list(&q, f, errs);
}

static void test_list_filters(void **state)
{
	struct kiln_field_errors errs;
	struct api_list_filter f;

	(void)state;
	assert_int_equal(list("", &f, &errs), 0);
	assert_null(f.category);
	assert_null(f.q);
	assert_int_equal(f.difficulty, 0);
	assert_string_equal(f.scope, "ex|||");

	assert_int_equal(list("category=math&difficulty=3&q=50%25_off%5C&limit=5", &f, &errs), 0);
	assert_string_equal(f.category, "math");
	assert_int_equal(f.difficulty, 3);
	assert_string_equal(f.difficulty_text, "3");
	assert_string_equal(f.q, "50%_off\\");
	assert_string_equal(f.q_like, "50\\%\\_off\\\\");
	assert_string_equal(f.scope, "ex|math|3|50%_off\\");
}

static void test_list_scope_binds_the_filters(void **state)
{
	struct kiln_field_errors errs;
	struct api_list_filter f;
	char a[sizeof(f.scope)];

	(void)state;
	assert_int_equal(list("category=math", &f, &errs), 0);
	strcpy(a, f.scope);
	assert_int_equal(list("category=math&difficulty=1", &f, &errs), 0);
	assert_string_not_equal(a, f.scope);
	assert_int_equal(list("q=math", &f, &errs), 0);
	assert_string_not_equal(a, f.scope);
	assert_int_equal(list("difficulty=1&category=math&limit=3&cursor=x", &f, &errs), 0);
	assert_string_equal(f.scope, "ex|math|1|");
}

static void test_list_bad_filters_named(void **state)
{
	static const struct {
		const char *qs, *field;
	} bad[] = {
	    {"category=Math", "category"},
	    {"category=", "category"},
	    {"category=a--b", "category"},
	    {"difficulty=0", "difficulty"},
	    {"difficulty=6", "difficulty"},
	    {"difficulty=x", "difficulty"},
	    {"difficulty=", "difficulty"},
	    {"q=", "q"},
	    {"q=%FF", "q"},
	};
	struct kiln_field_errors errs;
	struct api_list_filter f;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		assert_int_equal(list(bad[i].qs, &f, &errs), -1);
		assert_int_equal(errs.n, 1);
		assert_string_equal(errs.e[0].field, bad[i].field);
	}
	assert_int_equal(list("category=X&difficulty=9&q=", &f, &errs), -1);
	assert_int_equal(errs.n, 3);
}

static void test_list_q_counts_characters(void **state)
{
	struct kiln_field_errors errs;
	struct api_list_filter f;
	char qs[2048];
	int i, n;

	(void)state;
	n = snprintf(qs, sizeof(qs), "q=");
	for (i = 0; i < API_Q_MAX; i++)
		n +=
		    snprintf(qs + n, sizeof(qs) - (size_t)n, "%%F0%%9F%%94%%A5"); /* 4-byte emoji */
	assert_int_equal(list(qs, &f, &errs), 0);
	assert_int_equal(strlen(f.q), 4 * API_Q_MAX);
	assert_string_equal(f.q_like, f.q);
	n += snprintf(qs + n, sizeof(qs) - (size_t)n, "x");
	assert_int_equal(list(qs, &f, &errs), -1);
	assert_string_equal(errs.e[0].field, "q");

	/* 100 characters that each need escaping fit too. */
	n = snprintf(qs, sizeof(qs), "q=");
	for (i = 0; i < API_Q_MAX; i++)
		n += snprintf(qs + n, sizeof(qs) - (size_t)n, "%%25");
	assert_int_equal(list(qs, &f, &errs), 0);
	assert_int_equal(strlen(f.q_like), 2 * API_Q_MAX);
}

/* 1..255 visible ASCII characters; the reason names what is wrong. */
static void test_idempotency_key(void **state)
{
	char key[258];

	(void)state;
	assert_null(api_validate_idempotency_key("a"));
	assert_null(api_validate_idempotency_key("k');DROP-TABLE-x;--~!"));
	memset(key, 'k', 255);
	key[255] = '\0';
	assert_null(api_validate_idempotency_key(key));
	key[255] = 'k';
	key[256] = '\0';
	assert_string_equal(api_validate_idempotency_key(key), "must be at most 255 characters");
	assert_string_equal(api_validate_idempotency_key(""), "must not be empty");
	assert_string_equal(api_validate_idempotency_key("a b"),
	                    "must be visible ASCII characters (no spaces)");
	assert_non_null(api_validate_idempotency_key("a\tb"));
	assert_non_null(api_validate_idempotency_key("a\rX-Injected: 1"));
	assert_non_null(api_validate_idempotency_key("\xc3\xa9"));
	assert_non_null(api_validate_idempotency_key("\x7f"));
}

static void test_etag_lists(void **state)
{
	static const char *const one[] = {"\"e7v4\""};
	static const char *const two[] = {"\"e7v4a\"", "\"e7v4\""};

	(void)state;
	/* If-None-Match: weak comparison. */
	assert_int_equal(api_validate_etag_match("\"e7v4\"", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match("W/\"e7v4\"", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match("\"e7v3\", W/\"e7v4\"", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match("\"e7v3\",\"e7v4\"", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match("*", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match(" * ", one, 1, 1), 1);
	assert_int_equal(api_validate_etag_match("\"e7v3\"", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("\"e7v4a\"", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("\"e7v40\"", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("\"e17v4\"", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("e7v4", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("\"e7v4", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("\"e7v3\"x, \"e7v4\"", one, 1, 1), 0);
	assert_int_equal(api_validate_etag_match("*x", one, 1, 1), 0);

	/* If-Match: strong comparison, either representation's tag. */
	assert_int_equal(api_validate_etag_match("\"e7v4a\"", two, 2, 0), 1);
	assert_int_equal(api_validate_etag_match("\"e7v4\"", two, 2, 0), 1);
	assert_int_equal(api_validate_etag_match("*", two, 2, 0), 1);
	assert_int_equal(api_validate_etag_match("W/\"e7v4\"", two, 2, 0), 0);
	assert_int_equal(api_validate_etag_match("\"e7v3a\"", two, 2, 0), 0);
	assert_int_equal(api_validate_etag_match("\"e7v3\", \"e7v4a\"", two, 2, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_valid_body_of_each_kind, release),
	    cmocka_unit_test_teardown(test_post_requires_the_core_members, release),
	    cmocka_unit_test_teardown(test_non_object_refused, release),
	    cmocka_unit_test_teardown(test_slug_form_and_bounds, release),
	    cmocka_unit_test_teardown(test_category_form_and_bounds, release),
	    cmocka_unit_test_teardown(test_title_trimmed_and_bounded, release),
	    cmocka_unit_test_teardown(test_title_counts_bytes_after_trimming, release),
	    cmocka_unit_test_teardown(test_difficulty_and_points_bounds, release),
	    cmocka_unit_test_teardown(test_body_bounds_and_text, release),
	    cmocka_unit_test_teardown(test_answer_kind_names, release),
	    cmocka_unit_test_teardown(test_answer_bounds, release),
	    cmocka_unit_test_teardown(test_numeric_rules, release),
	    cmocka_unit_test_teardown(test_tolerance_only_for_numeric, release),
	    cmocka_unit_test_teardown(test_regex_rules, release),
	    cmocka_unit_test_teardown(test_choice_rules, release),
	    cmocka_unit_test_teardown(test_published_flag, release),
	    cmocka_unit_test_teardown(test_every_error_is_reported, release),
	    cmocka_unit_test_teardown(test_patch_changes_only_what_it_names, release),
	    cmocka_unit_test_teardown(test_patch_must_name_a_member, release),
	    cmocka_unit_test_teardown(test_patch_refused_member_keeps_the_stored_value, release),
	    cmocka_unit_test_teardown(test_patch_result_must_be_valid, release),
	    cmocka_unit_test_teardown(test_patch_to_another_kind_drops_stale_members, release),
	    cmocka_unit_test_teardown(test_choices_from_a_stored_row, release),
	    cmocka_unit_test_teardown(test_fields_list_matches_the_rules, release),
	    cmocka_unit_test_teardown(test_choices_as_a_text_array_literal, release),
	    cmocka_unit_test(test_list_filters),
	    cmocka_unit_test(test_list_scope_binds_the_filters),
	    cmocka_unit_test(test_list_bad_filters_named),
	    cmocka_unit_test(test_list_q_counts_characters),
	    cmocka_unit_test(test_etag_lists),
	    cmocka_unit_test(test_idempotency_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
