/* Validation of kiln-api's input: the body of POST and PATCH
 * /api/v1/exercises, the list's filters, the ETag lists of If-Match and
 * If-None-Match, and the Idempotency-Key header. Pure functions (no I/O, no
 * server state), so tests/unit/test_api_validate.c and tests/fuzz/ drive
 * them directly. */
#ifndef KILN_API_VALIDATE_H
#define KILN_API_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "kiln/answer.h"
#include "kiln/buf.h"
#include "kiln/http.h"
#include "kiln/json.h"

#define API_SLUG_MAX     100
#define API_TITLE_MAX    200
#define API_CATEGORY_MAX 50
#define API_BODY_MAX     20000
#define API_CHOICES_MIN  2
#define API_CHOICE_MAX   200 /* bytes of one choice */
#define API_Q_MAX        100 /* characters of the list's title search */
#define API_KEY_MAX      255 /* Idempotency-Key, and the column's check */

/* An exercise as it is to be written: on POST the body alone, on PATCH the
 * stored row with the body laid over it. Strings point into the JSON object
 * or the row they came from (keep both alive while ex is used), except a
 * title from a body, which is trimmed into title_buf. */
struct api_exercise {
	const char *slug, *title, *category, *body, *answer;
	int64_t difficulty, points;
	int kind; /* enum kiln_answer_kind, -1 when unknown */
	int has_tolerance;
	double tolerance;
	int nchoices; /* 0: no choices (SQL NULL) */
	const char *choices[KILN_ANSWER_CHOICES];
	int published;
	char title_buf[API_TITLE_MAX + 1];
};

/* The members a body may have (NULL-terminated), for kiln_input_begin. */
extern const char *const api_validate_fields[];

/* Reset ex to the defaults of a new exercise: no field set, kind -1, body
 * "", published. */
void api_validate_init(struct api_exercise *ex);

/* Lay the members of obj over ex and check the result; every problem is
 * recorded in errs under the member's name. POST (patch 0): ex fresh from
 * api_validate_init; slug, title, category, difficulty, points, answer_kind
 * and answer are required. PATCH (patch 1): ex holds the stored row; obj
 * must name at least one member; when it changes answer_kind, the old
 * kind's tolerance or choices are dropped unless it sets them. tolerance
 * and choices may be null (none). Then, on the merged result: numeric
 * requires tolerance and only numeric allows it, choice likewise choices;
 * answer must be a valid rule of its kind (kiln_answer_rule_check) and, for
 * choice, one of choices. Returns 0 when valid, else -1. */
int api_validate_exercise(json_object *obj, struct api_exercise *ex, int patch,
                          struct kiln_field_errors *errs);

/* Set ex's choices from v: a JSON array of 2..10 distinct strings of 1..200
 * bytes of UTF-8, or null (no choices). Used for a body's member and for a
 * stored row's array_to_json(choices). Returns NULL, or the reason. */
const char *api_validate_choices(json_object *v, struct api_exercise *ex);

/* Append ex's choices as a PostgreSQL text[] literal ({"a","b\"c"}, every
 * element quoted and escaped) to b. Returns 0, or -1 when out of memory. */
int api_validate_choices_sql(const struct api_exercise *ex, struct kiln_buf *b);

/* The list's filters, checked and ready as statement parameters. */
struct api_list_filter {
	const char *category; /* NULL: any */
	const char *q;        /* NULL: any */
	int64_t difficulty;   /* 0: any */
	char difficulty_text[4];
	char q_like[API_Q_MAX * 4 + 1]; /* q with \ % _ escaped for LIKE */
	char scope[512];                /* the cursor scope: "ex|<category>|<difficulty>|<q>" */
};

/* Read category (slug form, 1..50), difficulty (1..5) and q (1..100
 * characters of UTF-8) from qs into f and build the cursor scope, so a
 * cursor is bound to its filters. Bad values are recorded in errs under the
 * parameter's name. Returns 0, or -1. */
int api_validate_list(const struct kiln_query *qs, struct api_list_filter *f,
                      struct kiln_field_errors *errs);

/* Does the ETag list of an If-Match or If-None-Match header (a comma
 * separated list of entity tags, or "*") name one of the ntags tags (each
 * with its quotes, e.g. "\"e7v4\"")? weak 1 (If-None-Match) ignores a W/
 * prefix; weak 0 (If-Match) never matches a weak tag. Returns 1 when "*" or
 * a listed tag matches, 0 otherwise (also when the header is malformed). */
int api_validate_etag_match(const char *header, const char *const *tags, int ntags, int weak);

/* The Idempotency-Key header: 1..API_KEY_MAX visible ASCII
 * characters (0x21..0x7e). Returns NULL when valid, else the reason. */
const char *api_validate_idempotency_key(const char *key);

#endif
