/* email: normalisation and validation of account emails. Deliberately
 * stricter than RFC 5322 (no quoted local parts, no IP literals): the
 * address is an account name people type, not a routing instruction. */
#include <ctype.h>
#include <string.h>

#include "kiln/email.h"

static const char invalid[] = "must be a valid email address";

static int label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int domain_ok(const char *d, size_t n)
{
	size_t start = 0, i, labels = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		if (!label_ok(d + start, i - start))
			return 0;
		labels++;
		start = i + 1;
	}
	return labels >= 2;
}

static int local_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '@')
			return 0;
	return 1;
}

const char *kiln_email_normalize(const char *in, size_t len, char *out, size_t outlen)
{
	const char *at;
	size_t i, local;

	while (len && isspace((unsigned char)in[0]))
		in++, len--;
	while (len && isspace((unsigned char)in[len - 1]))
		len--;
	if (len == 0)
		return "must not be empty";
	if (len > KILN_EMAIL_MAX || len >= outlen)
		return "must be at most 254 bytes";
	at = memchr(in, '@', len);
	if (at == NULL)
		return invalid;
	local = (size_t)(at - in);
	if (!local_ok(in, local) || !domain_ok(at + 1, len - local - 1))
		return invalid;
	for (i = 0; i < len; i++)
		out[i] = i > local ? (char)tolower((unsigned char)in[i]) : in[i];
	out[len] = '\0';
	return NULL;
}
