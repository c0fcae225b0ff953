/* The optional bearer token of /metrics ([metrics] token_file). Both sides
 * are hashed before the constant-time compare, so neither the time nor an
 * early length check tells a caller anything about the token. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "kiln/http.h"
#include "metrics.h"

static unsigned char token_digest[SHA256_DIGEST_LENGTH];
static int token_required;

int metrics_token_check(const struct kiln_config *cfg, char *err, size_t errlen)
{
	const char *t = cfg->metrics.token;
	size_t i;

	/* It travels in a header: visible ASCII, no spaces (RFC 6750 b64token
	 * is narrower still, but any of these survives the trip). */
	for (i = 0; t[i]; i++) {
		if (t[i] <= ' ' || t[i] > '~') {
			snprintf(err, errlen,
			         "[metrics] token_file: the token may hold only printable "
			         "ASCII without spaces (byte %zu is not)",
			         i + 1);
			return -1;
		}
	}
	return 0;
}

void metrics_token_init(const struct kiln_config *cfg)
{
	const char *t = cfg->metrics.token;

	token_required = t[0] != '\0';
	if (token_required)
		SHA256((const unsigned char *)t, strlen(t), token_digest);
}

int metrics_token_allows(const struct kiln_req *req)
{
	unsigned char got[SHA256_DIGEST_LENGTH];
	const char *h;
	size_t len;

	if (!token_required)
		return 1;
	h = kiln_req_header(req, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (h += 7; *h == ' '; h++)
		;
	len = strlen(h);
	while (len > 0 && h[len - 1] == ' ')
		len--;
	SHA256((const unsigned char *)h, len, got);
	return CRYPTO_memcmp(got, token_digest, sizeof(got)) == 0;
}
