/* json: json-c helpers for request bodies: bounded parsing and typed field
 * extraction that collects (field, reason) validation errors. */
#ifndef KILN_JSON_H
#define KILN_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define KILN_JSON_MAX_ERRORS 16
#define KILN_JSON_MAX_DEPTH  32

struct kiln_field_error {
	char field[64];
	char reason[160];
};

struct kiln_field_errors {
	int n;
	struct kiln_field_error e[KILN_JSON_MAX_ERRORS];
};

/* Record a validation error (silently drops beyond KILN_JSON_MAX_ERRORS). */
void kiln_field_error_add(struct kiln_field_errors *errs, const char *field, const char *reason);

/* Parse a complete JSON text of len bytes, nesting at most max_depth (0 =
 * KILN_JSON_MAX_DEPTH). Rejects trailing garbage, embedded NUL, invalid
 * UTF-8 and an object that repeats a member name. Returns a new object (json_object_put it), or
 * NULL with a reason in err such as "invalid JSON at byte 17". */
json_object *kiln_json_parse(const char *text, size_t len, int max_depth, char *err, size_t errlen);

/* Typed field getters on a JSON object. Each returns 0 when the field is
 * present and valid (*out set), 1 when it is absent and not required, and -1
 * after recording an error in errs (missing, wrong type, out of bounds). */
int kiln_json_string(json_object *obj, const char *field, int required, size_t min_len,
                     size_t max_len, const char **out, struct kiln_field_errors *errs);
int kiln_json_int(json_object *obj, const char *field, int required, int64_t min, int64_t max,
                  int64_t *out, struct kiln_field_errors *errs);
int kiln_json_bool(json_object *obj, const char *field, int required, int *out,
                   struct kiln_field_errors *errs);

/* Record an error for every member of obj not named in allowed (a
 * NULL-terminated list). Returns the number of unknown members. */
int kiln_json_only(json_object *obj, const char *const *allowed, struct kiln_field_errors *errs);

/* Serialize compactly. The string belongs to obj. */
const char *kiln_json_text(json_object *obj, size_t *len);

#endif
