/* Validation of kiln-api's exercise input: pure functions (no I/O, no
 * server state) so the unit tests and tests/fuzz/fuzz_api_input.c can drive
 * them directly. Each body member has one rule in a table; the rules that
 * tie members together (the answer and its kind) run once on the merged
 * result, which is what makes a PATCH valid or not. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kiln/util.h"
#include "validate.h"

/* One bit per body member, to skip the rules that need a member that was
 * itself refused (one error per cause). F_OTHER marks any other error. */
enum {
	F_SLUG = 1u << 0,
	F_TITLE = 1u << 1,
	F_CATEGORY = 1u << 2,
	F_DIFFICULTY = 1u << 3,
	F_POINTS = 1u << 4,
	F_BODY = 1u << 5,
	F_KIND = 1u << 6,
	F_ANSWER = 1u << 7,
	F_TOLERANCE = 1u << 8,
	F_CHOICES = 1u << 9,
	F_PUBLISHED = 1u << 10,
	F_OTHER = 1u << 11,
};

/* Which control characters a text may hold. */
enum text_kind {
	TEXT_ANY,   /* any valid UTF-8 */
	TEXT_LINES, /* no control characters but tab, CR and LF */
	TEXT_LINE,  /* no control characters at all */
};

struct validation {
	struct kiln_field_errors *errs;
	unsigned bad; /* F_* of every refused member */
};

static const char slug_reason[] =
    "must be 1 to 100 characters: lowercase letters and digits in '-'-separated words";
static const char category_reason[] =
    "must be 1 to 50 characters: lowercase letters and digits in '-'-separated words";

const char *const api_validate_fields[] = {"slug",      "title",   "category",    "difficulty",
                                           "points",    "body",    "answer_kind", "answer",
                                           "tolerance", "choices", "published",   NULL};

static void refuse(struct validation *v, unsigned flag, const char *field, const char *reason)
{
	kiln_field_error_add(v->errs, field, reason);
	v->bad |= flag;
}

/* Is s (len bytes) valid UTF-8 without the control characters kind
 * forbids? C1 controls (U+0080..U+009F) count as control characters. */
static int text_ok(const char *s, size_t len, enum text_kind kind)
{
	const unsigned char *u;
	size_t i, k;

	for (i = 0; i < len; i += k) {
		u = (const unsigned char *)s + i;
		k = kiln_utf8_len(u, len - i);
		if (k == 0)
			return 0;
		if (kind == TEXT_ANY)
			continue;
		if (k == 1 && (u[0] < 0x20 || u[0] == 0x7f) &&
		    (kind == TEXT_LINE || (u[0] != '\t' && u[0] != '\n' && u[0] != '\r')))
			return 0;
		if (k == 2 && u[0] == 0xc2 && u[1] <= 0x9f)
			return 0;
	}
	return 1;
}

/* Slug form: [a-z0-9]+ words joined by single '-', 1..max bytes. */
static int slug_ok(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (i = 0; i < len; i++) {
		int alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (!alnum && (s[i] != '-' || s[i + 1] == '-'))
			return 0;
	}
	return 1;
}

/* v as a string without NUL. Returns NULL with *s and *len set, or the reason. */
static const char *string_of(json_object *v, const char **s, size_t *len)
{
	if (!json_object_is_type(v, json_type_string))
		return "must be a string";
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return strlen(*s) == *len ? NULL : "must not contain NUL characters";
}

static const char *int_of(json_object *v, int64_t min, int64_t max, int64_t *out,
                          const char *reason)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return reason;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return reason;
	*out = x;
	return NULL;
}

static const char *set_slug(json_object *v, struct api_exercise *ex)
{
	const char *s, *why;
	size_t len;

	if ((why = string_of(v, &s, &len)) != NULL)
		return why;
	if (!slug_ok(s, len, API_SLUG_MAX))
		return slug_reason;
	ex->slug = s;
	return NULL;
}

static const char *set_title(json_object *v, struct api_exercise *ex)
{
	const char *s, *why;
	size_t len;

	if ((why = string_of(v, &s, &len)) != NULL)
		return why;
	while (len && strchr(" \t\r\n", *s))
		s++, len--;
	while (len && strchr(" \t\r\n", s[len - 1]))
		len--;
	if (len == 0 || len > API_TITLE_MAX || !text_ok(s, len, TEXT_LINE))
		return "must be 1 to 200 bytes of UTF-8 without control characters, once trimmed";
	memcpy(ex->title_buf, s, len);
	ex->title_buf[len] = '\0';
	ex->title = ex->title_buf;
	return NULL;
}

static const char *set_category(json_object *v, struct api_exercise *ex)
{
	const char *s, *why;
	size_t len;

	if ((why = string_of(v, &s, &len)) != NULL)
		return why;
	if (!slug_ok(s, len, API_CATEGORY_MAX))
		return category_reason;
	ex->category = s;
	return NULL;
}

static const char *set_difficulty(json_object *v, struct api_exercise *ex)
{
	return int_of(v, 1, 5, &ex->difficulty, "must be an integer from 1 to 5");
}

static const char *set_points(json_object *v, struct api_exercise *ex)
{
	return int_of(v, 0, 1000, &ex->points, "must be an integer from 0 to 1000");
}

static const char *set_body(json_object *v, struct api_exercise *ex)
{
	const char *s, *why;
	size_t len;

	if ((why = string_of(v, &s, &len)) != NULL)
		return why;
	if (len > API_BODY_MAX || !text_ok(s, len, TEXT_LINES))
		return "must be at most 20000 bytes of UTF-8 without control characters "
		       "(newlines and tabs allowed)";
	ex->body = s;
	return NULL;
}

static const char *set_kind(json_object *v, struct api_exercise *ex)
{
	const char *s;
	size_t len;
	int kind = string_of(v, &s, &len) == NULL ? kiln_answer_kind_parse(s) : -1;

	if (kind < 0)
		return "must be exact, numeric, regex or choice";
	ex->kind = kind;
	return NULL;
}

static const char *set_answer(json_object *v, struct api_exercise *ex)
{
	const char *s, *why;
	size_t len;

	if ((why = string_of(v, &s, &len)) != NULL)
		return why;
	if (len == 0 || len > KILN_ANSWER_RULE_MAX || !text_ok(s, len, TEXT_ANY))
		return "must be 1 to 500 bytes of UTF-8";
	ex->answer = s;
	return NULL;
}

static const char *set_tolerance(json_object *v, struct api_exercise *ex)
{
	double t;

	if (v == NULL) {
		ex->has_tolerance = 0;
		return NULL;
	}
	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		return "must be a number >= 0";
	t = json_object_get_double(v);
	if (!isfinite(t) || t < 0)
		return "must be a number >= 0";
	ex->tolerance = t == 0 ? 0 : t; /* no -0 */
	ex->has_tolerance = 1;
	return NULL;
}

static const char *set_published(json_object *v, struct api_exercise *ex)
{
	if (!json_object_is_type(v, json_type_boolean))
		return "must be true or false";
	ex->published = json_object_get_boolean(v) ? 1 : 0;
	return NULL;
}

const char *api_validate_choices(json_object *v, struct api_exercise *ex)
{
	const char *c[KILN_ANSWER_CHOICES];
	size_t n, i, j, len;

	if (v == NULL) {
		ex->nchoices = 0;
		return NULL;
	}
	if (!json_object_is_type(v, json_type_array))
		return "must be an array of 2 to 10 strings";
	n = json_object_array_length(v);
	if (n < API_CHOICES_MIN || n > KILN_ANSWER_CHOICES)
		return "must be an array of 2 to 10 strings";
	for (i = 0; i < n; i++) {
		if (string_of(json_object_array_get_idx(v, i), &c[i], &len) != NULL || len == 0 ||
		    len > API_CHOICE_MAX || !text_ok(c[i], len, TEXT_ANY))
			return "must be strings of 1 to 200 bytes of UTF-8";
		for (j = 0; j < i; j++) {
			if (strcmp(c[i], c[j]) == 0)
				return "must be distinct";
		}
	}
	memcpy(ex->choices, c, n * sizeof(c[0]));
	ex->nchoices = (int)n;
	return NULL;
}

/* The rules of the body's members, in api_validate_fields order. */
static const struct member_rule {
	const char *name;
	unsigned flag;
	int required; /* on POST */
	const char *(*set)(json_object *v, struct api_exercise *ex);
} member_rules[] = {
    {"slug", F_SLUG, 1, set_slug},
    {"title", F_TITLE, 1, set_title},
    {"category", F_CATEGORY, 1, set_category},
    {"difficulty", F_DIFFICULTY, 1, set_difficulty},
    {"points", F_POINTS, 1, set_points},
    {"body", F_BODY, 0, set_body},
    {"answer_kind", F_KIND, 1, set_kind},
    {"answer", F_ANSWER, 1, set_answer},
    {"tolerance", F_TOLERANCE, 0, set_tolerance},
    {"choices", F_CHOICES, 0, api_validate_choices},
    {"published", F_PUBLISHED, 0, set_published},
};

void api_validate_init(struct api_exercise *ex)
{
	memset(ex, 0, sizeof(*ex));
	ex->kind = -1;
	ex->body = "";
	ex->published = 1;
}

static int is_choice(const struct api_exercise *ex, const char *s)
{
	int i;

	for (i = 0; i < ex->nchoices; i++) {
		if (strcmp(ex->choices[i], s) == 0)
			return 1;
	}
	return 0;
}

/* Kind-specific members on the merged result: tolerance belongs to numeric
 * and choices to choice, each required there and refused elsewhere. */
static void check_kind_members(struct validation *v, const struct api_exercise *ex)
{
	int numeric = ex->kind == KILN_ANSWER_NUMERIC, choice = ex->kind == KILN_ANSWER_CHOICE;

	if (!(v->bad & F_TOLERANCE) && numeric != ex->has_tolerance)
		refuse(v, F_TOLERANCE, "tolerance",
		       numeric ? "is required when answer_kind is numeric"
		               : "is only allowed when answer_kind is numeric");
	if (!(v->bad & F_CHOICES) && choice != (ex->nchoices > 0))
		refuse(v, F_CHOICES, "choices",
		       choice ? "is required when answer_kind is choice"
		              : "is only allowed when answer_kind is choice");
}

/* The answer against its kind: a valid rule, and for choice one of choices. */
static void check_answer(struct validation *v, const struct api_exercise *ex)
{
	char why[sizeof(v->errs->e[0].reason)];
	const char *reason;

	if ((v->bad & F_ANSWER) || ex->answer == NULL)
		return;
	reason = kiln_answer_rule_check(ex->kind, ex->answer, why, sizeof(why));
	if (reason != NULL)
		refuse(v, F_ANSWER, "answer", reason);
	else if (ex->kind == KILN_ANSWER_CHOICE && !(v->bad & F_CHOICES) && ex->nchoices > 0 &&
	         !is_choice(ex, ex->answer))
		refuse(v, F_ANSWER, "answer", "must be one of choices");
}

/* A PATCH that moves to another kind drops the old kind's tolerance or
 * choices, unless it sets them itself (then they are checked as given). */
static void drop_stale_members(json_object *obj, struct api_exercise *ex, int old_kind)
{
	if (ex->kind == old_kind)
		return;
	if (ex->kind != KILN_ANSWER_NUMERIC && !json_object_object_get_ex(obj, "tolerance", NULL))
		ex->has_tolerance = 0;
	if (ex->kind != KILN_ANSWER_CHOICE && !json_object_object_get_ex(obj, "choices", NULL))
		ex->nchoices = 0;
}

int api_validate_exercise(json_object *obj, struct api_exercise *ex, int patch,
                          struct kiln_field_errors *errs)
{
	struct validation v = {errs, 0};
	const struct member_rule *r;
	json_object *m;
	const char *why;
	int old_kind = ex->kind;
	size_t i;

	if (!json_object_is_type(obj, json_type_object)) {
		refuse(&v, F_OTHER, "", "must be a JSON object");
		return -1;
	}
	if (patch && json_object_object_length(obj) == 0)
		refuse(&v, F_OTHER, "", "must name at least one field to change");
	for (i = 0; i < KILN_ARRAY_LEN(member_rules); i++) {
		r = &member_rules[i];
		if (!json_object_object_get_ex(obj, r->name, &m)) {
			if (r->required && !patch)
				refuse(&v, r->flag, r->name, "is required");
			continue;
		}
		if ((why = r->set(m, ex)) != NULL)
			refuse(&v, r->flag, r->name, why);
	}
	if (!(v.bad & F_KIND) && ex->kind >= 0) {
		if (patch)
			drop_stale_members(obj, ex, old_kind);
		check_kind_members(&v, ex);
		check_answer(&v, ex);
	}
	return v.bad ? -1 : 0;
}

int api_validate_choices_sql(const struct api_exercise *ex, struct kiln_buf *b)
{
	const char *s;
	int i, rc = 0;

	rc |= kiln_buf_addc(b, '{');
	for (i = 0; i < ex->nchoices; i++) {
		rc |= kiln_buf_adds(b, i ? ",\"" : "\"");
		for (s = ex->choices[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				rc |= kiln_buf_addc(b, '\\');
			rc |= kiln_buf_addc(b, *s);
		}
		rc |= kiln_buf_addc(b, '"');
	}
	rc |= kiln_buf_addc(b, '}');
	return rc ? -1 : 0;
}

/* Number of UTF-8 characters of s, or -1 when it is not valid UTF-8. */
static long utf8_chars(const char *s)
{
	size_t len = strlen(s), i, k;
	long n = 0;

	for (i = 0; i < len; i += k, n++) {
		k = kiln_utf8_len((const unsigned char *)s + i, len - i);
		if (k == 0)
			return -1;
	}
	return n;
}

/* s escaped for LIKE with the default escape character: \ % _ get a '\'.
 * A q of API_Q_MAX characters needs at most API_Q_MAX * 4 + 1 bytes. */
static void like_escape(const char *s, char *out, size_t outlen)
{
	size_t o = 0, esc;

	for (; *s; s++) {
		esc = *s == '\\' || *s == '%' || *s == '_';
		if (o + esc + 1 >= outlen)
			break;
		if (esc)
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
}

int api_validate_list(const struct kiln_query *qs, struct api_list_filter *f,
                      struct kiln_field_errors *errs)
{
	struct validation v = {errs, 0};
	const char *c = kiln_query_get(qs, "category"), *d = kiln_query_get(qs, "difficulty");
	const char *q = kiln_query_get(qs, "q");
	long chars;
	int n;

	memset(f, 0, sizeof(*f));
	if (c && !slug_ok(c, strlen(c), API_CATEGORY_MAX))
		refuse(&v, F_CATEGORY, "category", category_reason);
	else
		f->category = c;
	if (d && kiln_parse_int(d, 1, 5, &f->difficulty) < 0)
		refuse(&v, F_DIFFICULTY, "difficulty", "must be an integer from 1 to 5");
	else if (d)
		f->difficulty_text[0] = (char)('0' + f->difficulty);
	chars = q ? utf8_chars(q) : 0;
	if (q && (chars < 1 || chars > API_Q_MAX))
		refuse(&v, F_OTHER, "q", "must be 1 to 100 characters of UTF-8");
	else if (q)
		f->q = q;
	if (v.bad)
		return -1;
	if (f->q)
		like_escape(f->q, f->q_like, sizeof(f->q_like));
	n = snprintf(f->scope, sizeof(f->scope), "ex|%s|%s|%s", c ? c : "", f->difficulty_text,
	             q ? q : "");
	return n > 0 && (size_t)n < sizeof(f->scope) ? 0 : -1;
}

/* After an entity tag or "*": optional whitespace, then ',' or the end.
 * Returns the position after it, or NULL when something else follows. */
static const char *etag_next(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == ',')
		return p + 1;
	return *p == '\0' ? p : NULL;
}

int api_validate_etag_match(const char *header, const char *const *tags, int ntags, int weak)
{
	const char *p = header, *end;
	int is_weak, i;
	size_t n;

	while (p != NULL) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return etag_next(p + 1) != NULL;
		is_weak = strncmp(p, "W/", 2) == 0;
		p += is_weak ? 2 : 0;
		if (*p != '"' || (end = strchr(p + 1, '"')) == NULL)
			return 0;
		n = (size_t)(end + 1 - p);
		for (i = 0; i < ntags && (weak || !is_weak); i++) {
			if (strlen(tags[i]) == n && memcmp(tags[i], p, n) == 0)
				return 1;
		}
		p = etag_next(end + 1);
	}
	return 0;
}

const char *api_validate_idempotency_key(const char *key)
{
	size_t i;

	for (i = 0; key[i]; i++) {
		if (i == API_KEY_MAX)
			return "must be at most 255 characters";
		if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
			return "must be visible ASCII characters (no spaces)";
	}
	return i ? NULL : "must not be empty";
}
