/* libFuzzer: kiln-api's exercise input validation (apps/api/validate.c)
 * over arbitrary bytes. Input beginning with '?' is a list query string
 * (the rest); anything else is a JSON body, validated as a POST and as a
 * PATCH over a stored row of each answer kind. Every input is also tried as
 * an If-Match / If-None-Match header.
 *
 * Invariants, checked independently of the validator's own helpers: an
 * accepted exercise satisfies every rule of docs/api.md (the slug and
 * category match the schema's CHECK regex, lengths and ranges hold, the
 * answer is a valid rule of its kind, tolerance and choices exist exactly
 * for their kind, the answer is one of distinct choices), and its choices
 * survive the text[] literal; accepted list filters unescape back to q and
 * scope a cursor by every filter. */
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/api/validate.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The slug form as the schema's CHECK writes it. */
static int slug_form(const char *s)
{
	static regex_t re;
	static int compiled;

	if (!compiled && regcomp(&re, "^[a-z0-9]+(-[a-z0-9]+)*$", REG_EXTENDED | REG_NOSUB) != 0)
		abort();
	compiled = 1;
	return regexec(&re, s, 0, NULL, 0) == 0;
}

/* The schema's slug CHECK, and length bounds. */
static void check_slug(const char *s, size_t max)
{
	if (s == NULL || strlen(s) < 1 || strlen(s) > max || !slug_form(s))
		abort();
}

/* Decode the text[] literal of api_validate_choices_sql and compare. */
static void check_choices_literal(const struct api_exercise *ex)
{
	struct kiln_buf b;
	const char *p;
	char elem[API_CHOICE_MAX + 1];
	size_t n;
	int i = 0;

	kiln_buf_init(&b);
	if (api_validate_choices_sql(ex, &b) < 0)
		abort();
	p = b.data;
	if (*p++ != '{')
		abort();
	while (*p == '"') {
		for (p++, n = 0; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			if (*p == '\0' || n == API_CHOICE_MAX)
				abort();
			elem[n++] = *p;
		}
		elem[n] = '\0';
		if (i >= ex->nchoices || strcmp(elem, ex->choices[i++]) != 0)
			abort();
		p++;
		if (*p == ',')
			p++;
	}
	if (i != ex->nchoices || strcmp(p, "}") != 0)
		abort();
	kiln_buf_free(&b);
}

static void check_choices(const struct api_exercise *ex)
{
	int i, j, found = 0;

	if ((ex->kind == KILN_ANSWER_CHOICE) != (ex->nchoices > 0))
		abort();
	if (ex->nchoices == 0)
		return;
	if (ex->nchoices < API_CHOICES_MIN || ex->nchoices > KILN_ANSWER_CHOICES)
		abort();
	for (i = 0; i < ex->nchoices; i++) {
		if (strlen(ex->choices[i]) < 1 || strlen(ex->choices[i]) > API_CHOICE_MAX)
			abort();
		for (j = 0; j < i; j++) {
			if (strcmp(ex->choices[i], ex->choices[j]) == 0)
				abort();
		}
		found |= strcmp(ex->choices[i], ex->answer) == 0;
	}
	if (!found)
		abort();
	check_choices_literal(ex);
}

static void check_exercise(const struct api_exercise *ex)
{
	char why[160];
	size_t tlen = strlen(ex->title);

	check_slug(ex->slug, API_SLUG_MAX);
	check_slug(ex->category, API_CATEGORY_MAX);
	if (tlen < 1 || tlen > API_TITLE_MAX || strchr(" \t\r\n", ex->title[0]) ||
	    strchr(" \t\r\n", ex->title[tlen - 1]))
		abort();
	if (ex->difficulty < 1 || ex->difficulty > 5 || ex->points < 0 || ex->points > 1000)
		abort();
	if (ex->body == NULL || strlen(ex->body) > API_BODY_MAX)
		abort();
	if (ex->kind < KILN_ANSWER_EXACT || ex->kind > KILN_ANSWER_CHOICE || ex->answer == NULL ||
	    strlen(ex->answer) < 1 || strlen(ex->answer) > KILN_ANSWER_RULE_MAX)
		abort();
	if (kiln_answer_rule_check(ex->kind, ex->answer, why, sizeof(why)) != NULL)
		abort();
	if ((ex->kind == KILN_ANSWER_NUMERIC) != ex->has_tolerance)
		abort();
	if (ex->has_tolerance && (!isfinite(ex->tolerance) || ex->tolerance < 0))
		abort();
	if (ex->published != 0 && ex->published != 1)
		abort();
	check_choices(ex);
}

/* A valid stored row of kind, as exercises.c loads one. */
static void stored(struct api_exercise *ex, int kind)
{
	static const char *const choices[] = {"a", "b", "c"};

	api_validate_init(ex);
	ex->slug = "stored-slug";
	ex->title = "Stored title";
	ex->category = "math";
	ex->difficulty = 3;
	ex->points = 20;
	ex->body = "body";
	ex->kind = kind;
	ex->answer = kind == KILN_ANSWER_NUMERIC ? "42" : kind == KILN_ANSWER_REGEX ? "a+" : "b";
	ex->has_tolerance = kind == KILN_ANSWER_NUMERIC;
	ex->tolerance = 0.5;
	if (kind == KILN_ANSWER_CHOICE) {
		memcpy(ex->choices, choices, sizeof(choices));
		ex->nchoices = 3;
	}
}

static void fuzz_body(const uint8_t *data, size_t size)
{
	struct kiln_field_errors errs = {0};
	struct api_exercise ex;
	char err[128];
	json_object *obj;
	int kind;

	obj = kiln_json_parse((const char *)data, size, 8, err, sizeof(err));
	if (obj == NULL)
		return;
	api_validate_init(&ex);
	if (api_validate_exercise(obj, &ex, 0, &errs) == 0)
		check_exercise(&ex);
	else if (errs.n == 0)
		abort(); /* refused without saying why */
	for (kind = KILN_ANSWER_EXACT; kind <= KILN_ANSWER_CHOICE; kind++) {
		memset(&errs, 0, sizeof(errs));
		stored(&ex, kind);
		if (api_validate_exercise(obj, &ex, 1, &errs) == 0)
			check_exercise(&ex);
		else if (errs.n == 0)
			abort();
	}
	json_object_put(obj);
}

/* q_like with its escapes removed. */
static void unescape_like(const char *s, char *out)
{
	for (; *s; s++) {
		if (*s == '\\') {
			s++;
			if (*s != '\\' && *s != '%' && *s != '_')
				abort();
		} else if (*s == '%' || *s == '_') {
			abort(); /* an unescaped wildcard */
		}
		*out++ = *s;
	}
	*out = '\0';
}

static void fuzz_list(const char *qs)
{
	static struct kiln_query q;
	struct kiln_field_errors errs = {0};
	struct api_list_filter f;
	char plain[sizeof(f.q_like)];

	if (kiln_query_parse(&q, qs) < 0)
		return;
	if (api_validate_list(&q, &f, &errs) < 0) {
		if (errs.n == 0)
			abort();
		return;
	}
	if (f.category)
		check_slug(f.category, API_CATEGORY_MAX);
	if (f.difficulty && (f.difficulty < 1 || f.difficulty > 5))
		abort();
	if (f.q) {
		unescape_like(f.q_like, plain);
		if (strcmp(plain, f.q) != 0)
			abort();
	}
	if (strncmp(f.scope, "ex|", 3) != 0 || (f.q && strstr(f.scope, f.q) == NULL) ||
	    (f.category && strstr(f.scope, f.category) == NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tags[] = {"\"e7v4a\"", "\"e7v4\""};
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	api_validate_etag_match(text, tags, 2, 0);
	api_validate_etag_match(text, tags, 2, 1);
	if (size > 0 && data[0] == '?')
		fuzz_list(text + 1);
	else
		fuzz_body(data, size);
	free(text);
	return 0;
}
