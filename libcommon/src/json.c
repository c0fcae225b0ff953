/* json: bounded parsing of request bodies and typed field extraction.
 *
 * json-c is lenient even with JSON_TOKENER_STRICT: it takes NaN, Infinity,
 * "1.", "-01", raw control characters inside strings and some invalid UTF-8,
 * and it silently saturates integers beyond 64 bits. A small lexical scan
 * runs first and rejects all of that with a byte offset. It also measures
 * container nesting, because json-c's own depth counts scalar leaves as a
 * level too ("[1]" needs 2). json-c then builds the tree and judges structure. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/json.h"
#include "kiln/util.h"

enum json_scan_kind {
	JSON_SCAN_OK,
	JSON_SCAN_SYNTAX,
	JSON_SCAN_UTF8,
	JSON_SCAN_RANGE,
	JSON_SCAN_DEPTH
};

struct json_scan {
	const unsigned char *s;
	size_t len;
	size_t pos; /* offending byte when kind != JSON_SCAN_OK */
	enum json_scan_kind kind;
	int max_depth, depth;
	size_t members; /* ':' tokens: the object members the text names */
};

void kiln_field_error_add(struct kiln_field_errors *errs, const char *field, const char *reason)
{
	struct kiln_field_error *e;

	if (errs == NULL || errs->n < 0 || errs->n >= KILN_JSON_MAX_ERRORS)
		return;
	e = &errs->e[errs->n++];
	kiln_strlcpy(e->field, field ? field : "", sizeof(e->field));
	kiln_strlcpy(e->reason, reason ? reason : "", sizeof(e->reason));
}

static void json_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void json_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

static int json_scan_fail(struct json_scan *sc, size_t pos, enum json_scan_kind kind)
{
	sc->pos = pos;
	sc->kind = kind;
	return -1;
}

static int json_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The escape at sc->s[i] ('\\' already seen). Returns its length, or 0. */
static size_t json_escape_len(const struct json_scan *sc, size_t i)
{
	size_t k;

	if (i + 1 >= sc->len || memchr("\"\\/bfnrtu", sc->s[i + 1], 9) == NULL)
		return 0;
	if (sc->s[i + 1] != 'u')
		return 2;
	for (k = 2; k < 6; k++) {
		if (i + k >= sc->len || !json_is_hex(sc->s[i + k]))
			return 0;
	}
	return 6;
}

/* A string starting at the opening quote at sc->pos; UTF-8 is already
 * checked. Leaves sc->pos after the closing quote. Returns 0, or -1. */
static int json_scan_string(struct json_scan *sc)
{
	size_t i = sc->pos + 1, k;

	while (i < sc->len) {
		if (sc->s[i] == '"') {
			sc->pos = i + 1;
			return 0;
		}
		if (sc->s[i] < 0x20)
			return json_scan_fail(sc, i, JSON_SCAN_SYNTAX);
		if (sc->s[i] != '\\') {
			i++;
			continue;
		}
		k = json_escape_len(sc, i);
		if (k == 0)
			return json_scan_fail(sc, i, JSON_SCAN_SYNTAX);
		i += k;
	}
	return json_scan_fail(sc, sc->len, JSON_SCAN_SYNTAX);
}

static size_t json_scan_digits(struct json_scan *sc, size_t i)
{
	while (i < sc->len && sc->s[i] >= '0' && sc->s[i] <= '9')
		i++;
	return i;
}

/* Whether the integer literal [b, e) (optional '-', digits) fits int64. */
static int json_int_fits(const unsigned char *b, const unsigned char *e)
{
	int neg = *b == '-';
	uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	unsigned int d;

	for (b += neg; b < e; b++) {
		d = (unsigned int)(*b - '0');
		if (v > (limit - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return 1;
}

/* A number per RFC 8259 at sc->pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * Integers must fit int64, because json-c would saturate them silently. */
static int json_scan_number(struct json_scan *sc)
{
	const unsigned char *s = sc->s;
	size_t start = sc->pos, i = sc->pos, d;
	int integer = 1;

	if (s[i] == '-')
		i++;
	if (i >= sc->len || s[i] < '0' || s[i] > '9')
		return json_scan_fail(sc, i, JSON_SCAN_SYNTAX);
	i = s[i] == '0' ? i + 1 : json_scan_digits(sc, i);
	if (i < sc->len && s[i] == '.') {
		integer = 0;
		d = json_scan_digits(sc, i + 1);
		if (d == i + 1)
			return json_scan_fail(sc, d, JSON_SCAN_SYNTAX);
		i = d;
	}
	if (i < sc->len && (s[i] == 'e' || s[i] == 'E')) {
		integer = 0;
		i++;
		if (i < sc->len && (s[i] == '+' || s[i] == '-'))
			i++;
		d = json_scan_digits(sc, i);
		if (d == i)
			return json_scan_fail(sc, d, JSON_SCAN_SYNTAX);
		i = d;
	}
	if (i < sc->len && memchr("0123456789.eE+-", s[i], 15) != NULL)
		return json_scan_fail(sc, i, JSON_SCAN_SYNTAX);
	if (integer && !json_int_fits(s + start, s + i))
		return json_scan_fail(sc, start, JSON_SCAN_RANGE);
	sc->pos = i;
	return 0;
}

/* true, false or null at sc->pos, spelled exactly. */
static int json_scan_literal(struct json_scan *sc)
{
	static const char *const words[] = {"true", "false", "null"};
	size_t i, n;

	for (i = 0; i < KILN_ARRAY_LEN(words); i++) {
		n = strlen(words[i]);
		if (sc->len - sc->pos >= n && memcmp(sc->s + sc->pos, words[i], n) == 0) {
			sc->pos += n;
			return 0;
		}
	}
	return json_scan_fail(sc, sc->pos, JSON_SCAN_SYNTAX);
}

/* Check every token of the text lexically; structure is left to json-c. */
static int json_scan_tokens(struct json_scan *sc)
{
	unsigned char c;
	int rc;

	while (sc->pos < sc->len) {
		c = sc->s[sc->pos];
		if (c == '[' || c == '{') {
			if (++sc->depth > sc->max_depth)
				return json_scan_fail(sc, sc->pos, JSON_SCAN_DEPTH);
			sc->pos++;
			continue;
		}
		if (c == ']' || c == '}') {
			sc->depth -= sc->depth > 0;
			sc->pos++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == ',') {
			sc->members += c == ':';
			sc->pos++;
			continue;
		}
		if (c == '"')
			rc = json_scan_string(sc);
		else if (c == '-' || (c >= '0' && c <= '9'))
			rc = json_scan_number(sc);
		else if (c == 't' || c == 'f' || c == 'n')
			rc = json_scan_literal(sc);
		else
			rc = json_scan_fail(sc, sc->pos, JSON_SCAN_SYNTAX);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* UTF-8 is checked over the whole text first so an ill-formed byte reads
 * "invalid UTF-8" wherever it is, and the token scan can trust it. */
static int json_scan_utf8(struct json_scan *sc)
{
	size_t i = 0, k;

	while (i < sc->len) {
		k = kiln_utf8_len(sc->s + i, sc->len - i);
		if (k == 0)
			return json_scan_fail(sc, i, JSON_SCAN_UTF8);
		i += k;
	}
	return 0;
}

static int json_scan_report(const struct json_scan *sc, char *err, size_t errlen)
{
	if (sc->kind == JSON_SCAN_DEPTH)
		json_err(err, errlen, "nesting deeper than %d", sc->max_depth);
	else if (sc->kind == JSON_SCAN_UTF8)
		json_err(err, errlen, "invalid UTF-8 at byte %zu", sc->pos);
	else if (sc->kind == JSON_SCAN_RANGE)
		json_err(err, errlen, "integer out of range at byte %zu", sc->pos);
	else
		json_err(err, errlen, "invalid JSON at byte %zu", sc->pos);
	return -1;
}

/* Run json-c over text already known to be lexically valid and within
 * max_depth containers; json-c needs one level more for the leaves. */
static json_object *json_build(const char *text, size_t len, int max_depth, char *err,
                               size_t errlen)
{
	struct json_tokener *tok = json_tokener_new_ex(max_depth + 1);
	enum json_tokener_error jerr;
	json_object *obj;
	size_t end;

	if (tok == NULL) {
		json_err(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A bare number or literal only ends at a delimiter: feed a NUL. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	while (jerr == json_tokener_success && end < len && memchr(" \t\r\n", text[end], 4))
		end++;
	if (jerr == json_tokener_error_depth) {
		json_err(err, errlen, "nesting deeper than %d", max_depth);
	} else if (jerr != json_tokener_success || end < len) {
		json_err(err, errlen, "invalid JSON at byte %zu", end);
	} else if (obj == NULL) {
		json_err(err, errlen, "JSON null is not accepted here");
		return NULL;
	} else {
		return obj;
	}
	json_object_put(obj);
	return NULL;
}

/* The members of every object in the tree under o. json-c keeps one
 * member per name (the last), so a text that repeats a name yields fewer
 * members than it has ':' tokens. */
static size_t json_count_members(json_object *o)
{
	size_t n = 0, i, len;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, v)
		{
			(void)key;
			n += 1 + json_count_members(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		len = json_object_array_length(o);
		for (i = 0; i < len; i++)
			n += json_count_members(json_object_array_get_idx(o, i));
	}
	return n;
}

json_object *kiln_json_parse(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
	struct json_scan sc = {(const unsigned char *)text, len, 0, JSON_SCAN_OK, 0, 0, 0};
	const char *nul;
	json_object *obj;

	if (text == NULL || len == 0) {
		json_err(err, errlen, "empty JSON text");
		return NULL;
	}
	if (len >= INT_MAX) {
		json_err(err, errlen, "JSON text too large");
		return NULL;
	}
	nul = memchr(text, '\0', len);
	if (nul != NULL) {
		json_err(err, errlen, "invalid JSON at byte %zu", (size_t)(nul - text));
		return NULL;
	}
	/* Nesting can never exceed len, which also bounds json-c's stack. */
	sc.max_depth = max_depth > 0 ? max_depth : KILN_JSON_MAX_DEPTH;
	if (json_scan_utf8(&sc) < 0 || json_scan_tokens(&sc) < 0) {
		json_scan_report(&sc, err, errlen);
		return NULL;
	}
	obj = json_build(text, len, sc.max_depth < (int)len ? sc.max_depth : (int)len, err, errlen);
	if (obj != NULL && json_count_members(obj) != sc.members) {
		/* Which of two equal names counts is a guess an attacker can
		 * exploit where two parsers disagree: refuse the text. */
		json_err(err, errlen, "duplicate member name in a JSON object");
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* The member named field of obj. Returns 0 with *v set when present, 1 when
 * absent and optional, -1 after recording the error. */
static int json_member(json_object *obj, const char *field, int required, json_object **v,
                       struct kiln_field_errors *errs)
{
	if (!json_object_is_type(obj, json_type_object)) {
		kiln_field_error_add(errs, "", "must be a JSON object");
		return -1;
	}
	if (json_object_object_get_ex(obj, field, v))
		return 0;
	if (!required)
		return 1;
	kiln_field_error_add(errs, field, "is required");
	return -1;
}

int kiln_json_string(json_object *obj, const char *field, int required, size_t min_len,
                     size_t max_len, const char **out, struct kiln_field_errors *errs)
{
	char reason[sizeof(errs->e[0].reason)];
	json_object *v;
	const char *s;
	size_t len;
	int rc = json_member(obj, field, required, &v, errs);

	if (rc != 0)
		return rc;
	if (!json_object_is_type(v, json_type_string)) {
		kiln_field_error_add(errs, field, "must be a string");
		return -1;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len) {
		kiln_field_error_add(errs, field, "must not contain NUL characters");
		return -1;
	}
	if (len < min_len || len > max_len) {
		if (min_len == 0)
			snprintf(reason, sizeof(reason), "must be at most %zu bytes", max_len);
		else
			snprintf(reason, sizeof(reason), "must be %zu to %zu bytes", min_len,
			         max_len);
		kiln_field_error_add(errs, field, reason);
		return -1;
	}
	*out = s;
	return 0;
}

/* json-c keeps integers above INT64_MAX as uint64 and reads them back
 * saturated through json_object_get_int64; such a value does not fit. */
static int json_int64_exact(json_object *v, int64_t *out)
{
	int64_t x = json_object_get_int64(v);

	if (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return -1;
	*out = x;
	return 0;
}

int kiln_json_int(json_object *obj, const char *field, int required, int64_t min, int64_t max,
                  int64_t *out, struct kiln_field_errors *errs)
{
	char reason[sizeof(errs->e[0].reason)];
	json_object *v;
	int64_t x;
	int rc = json_member(obj, field, required, &v, errs);

	if (rc != 0)
		return rc;
	if (!json_object_is_type(v, json_type_int) || json_int64_exact(v, &x) < 0) {
		kiln_field_error_add(errs, field, "must be an integer");
		return -1;
	}
	if (x < min || x > max) {
		snprintf(reason, sizeof(reason), "must be between %lld and %lld", (long long)min,
		         (long long)max);
		kiln_field_error_add(errs, field, reason);
		return -1;
	}
	*out = x;
	return 0;
}

int kiln_json_bool(json_object *obj, const char *field, int required, int *out,
                   struct kiln_field_errors *errs)
{
	json_object *v;
	int rc = json_member(obj, field, required, &v, errs);

	if (rc != 0)
		return rc;
	if (!json_object_is_type(v, json_type_boolean)) {
		kiln_field_error_add(errs, field, "must be true or false");
		return -1;
	}
	*out = json_object_get_boolean(v) ? 1 : 0;
	return 0;
}

static int json_name_allowed(const char *name, const char *const *allowed)
{
	for (; allowed && *allowed; allowed++) {
		if (strcmp(*allowed, name) == 0)
			return 1;
	}
	return 0;
}

int kiln_json_only(json_object *obj, const char *const *allowed, struct kiln_field_errors *errs)
{
	struct json_object_iterator it, end;
	const char *name;
	int unknown = 0;

	if (!json_object_is_type(obj, json_type_object)) {
		kiln_field_error_add(errs, "", "must be a JSON object");
		return 1;
	}
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		name = json_object_iter_peek_name(&it);
		if (json_name_allowed(name, allowed))
			continue;
		kiln_field_error_add(errs, name, "unknown field");
		unknown++;
	}
	return unknown;
}

const char *kiln_json_text(json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s;

	s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (len)
		*len = n;
	return s;
}
