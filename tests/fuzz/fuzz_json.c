/* libFuzzer harness for kiln_json_parse and the typed getters. The input is
 * copied to an exact-size buffer so any read past len is caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise_getters(json_object *obj)
{
	static const char *const allowed[] = {"title", "points", "public", NULL};
	struct kiln_field_errors errs = {0};
	const char *s;
	int64_t v;
	int b;

	kiln_json_string(obj, "title", 1, 1, 200, &s, &errs);
	kiln_json_string(obj, "slug", 0, 0, 64, &s, &errs);
	kiln_json_int(obj, "points", 1, 0, 1000, &v, &errs);
	kiln_json_int(obj, "id", 0, INT64_MIN, INT64_MAX, &v, &errs);
	kiln_json_bool(obj, "public", 0, &b, &errs);
	kiln_json_only(obj, allowed, &errs);
	if (errs.n < 0 || errs.n > KILN_JSON_MAX_ERRORS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	char *text = malloc(size ? size : 1);
	json_object *obj, *again;
	const char *out;
	size_t len;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	obj = kiln_json_parse(text, size, 8, err, sizeof(err));
	if (obj != NULL) {
		exercise_getters(obj);
		/* What json-c writes back must be JSON kiln accepts. */
		out = kiln_json_text(obj, &len);
		again = kiln_json_parse(out, len, 8, err, sizeof(err));
		if (again == NULL)
			abort();
		json_object_put(again);
		json_object_put(obj);
	} else if (err[0] == '\0') {
		abort();
	}
	free(text);
	return 0;
}
