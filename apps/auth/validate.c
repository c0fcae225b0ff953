/* Validation of kiln-auth's request bodies: pure functions (no I/O, no
 * server state) so tests/fuzz/fuzz_auth_input.c can drive them directly. */
#include <string.h>

#include "kiln/email.h"
#include "kiln/json.h"
#include "kiln/password.h"
#include "kiln/util.h"
#include "auth.h"

const char *auth_validate_name(const char *in, char *name, size_t namelen)
{
	size_t len = strlen(in), i, k;

	while (len && (*in == ' ' || *in == '\t'))
		in++, len--;
	while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
		len--;
	if (len == 0 || len > 100 || len >= namelen)
		return "must be 1 to 100 bytes";
	for (i = 0; i < len; i += k) {
		k = kiln_utf8_len((const unsigned char *)in + i, len - i);
		const unsigned char *u = (const unsigned char *)in + i;
		/* C0, DEL, and C1 (U+0080..U+009F, encoded C2 80..C2 9F) */
		if (k == 0 || (k == 1 && (u[0] < 0x20 || u[0] == 0x7f)) ||
		    (k == 2 && u[0] == 0xc2 && u[1] <= 0x9f))
			return "must be UTF-8 text without control characters";
	}
	memcpy(name, in, len);
	name[len] = '\0';
	return NULL;
}

void auth_validate_register(json_object *obj, int common_check, char *email, char *name,
                            const char **pw, struct kiln_field_errors *errs)
{
	const char *e = NULL, *n = NULL, *why;

	*pw = NULL;
	kiln_json_string(obj, "email", 1, 1, 1024, &e, errs);
	kiln_json_string(obj, "password", 1, 0, 4096, pw, errs);
	kiln_json_string(obj, "display_name", 1, 0, 1024, &n, errs);
	if (e && (why = kiln_email_normalize(e, strlen(e), email, KILN_EMAIL_MAX + 1)))
		kiln_field_error_add(errs, "email", why);
	if (*pw && (why = kiln_password_policy(*pw, strlen(*pw), common_check)))
		kiln_field_error_add(errs, "password", why);
	if (n && (why = auth_validate_name(n, name, 101)))
		kiln_field_error_add(errs, "display_name", why);
}
