/* libFuzzer: kiln-auth's register-body validation over arbitrary bytes:
 * JSON parsing, closed member sets, typed getters, email normalisation,
 * password policy (without the cracklib lookup, which is slow and has its
 * own tests), display-name rules. Invariants: an accepted body yields a
 * normalised email that re-normalises to itself and a name within limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/auth/validate.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = {"email", "password", "display_name", NULL};
	struct kiln_field_errors errs = {0};
	char email[KILN_EMAIL_MAX + 1], again[KILN_EMAIL_MAX + 1], name[101], err[128];
	const char *pw = NULL;
	json_object *obj;

	obj = kiln_json_parse((const char *)data, size, 8, err, sizeof(err));
	if (obj == NULL)
		return 0;
	if (json_object_is_type(obj, json_type_object)) {
		kiln_json_only(obj, fields, &errs);
		auth_validate_register(obj, 0, email, name, &pw, &errs);
		if (errs.n == 0) {
			if (kiln_email_normalize(email, strlen(email), again, sizeof(again)) ||
			    strcmp(email, again) != 0)
				abort();
			if (strlen(name) == 0 || strlen(name) > 100 || pw == NULL ||
			    strlen(pw) < KILN_PASSWORD_MIN)
				abort();
		}
	}
	json_object_put(obj);
	return 0;
}
