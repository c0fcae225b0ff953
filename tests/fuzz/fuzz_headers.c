/* libFuzzer: kiln-api's request headers that carry client syntax, in
 * apps/api/validate.c: the entity-tag lists of If-Match / If-None-Match and
 * the Idempotency-Key. The first byte picks the weak flag of the ETag
 * comparison; the rest is the header value.
 *
 * Invariants, checked with a model written here rather than the
 * validator's own code:
 *  - Idempotency-Key: accepted exactly when it is 1..255 bytes of 0x21..0x7e.
 *  - ETag: a header that names neither a known tag nor "*" never matches; a
 *    strong comparison (If-Match) never matches through a weak tag, so a
 *    header whose every "W/"-free occurrence of the tags is absent does not
 *    match; each tag alone, "*" alone, and a tag after a list of other
 *    well-formed tags always match; a weak tag matches for If-None-Match. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/api/validate.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_tags[] = {"\"e7v4\"", "\"e7v4a\""};

/* The Idempotency-Key rule, independently. */
static int key_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > 255)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Does s hold tag t not directly after "W/"? */
static int strong_occurrence(const char *s, const char *t)
{
	const char *p;

	for (p = strstr(s, t); p != NULL; p = strstr(p + 1, t))
		if (p - s < 2 || p[-2] != 'W' || p[-1] != '/')
			return 1;
	return 0;
}

static int match(const char *h, int weak)
{
	return api_validate_etag_match(h, fuzz_tags, 2, weak);
}

static void check_etag(const char *h, int weak)
{
	int m = match(h, weak), named = 0, strong = 0, i;

	if (m != 0 && m != 1)
		abort();
	for (i = 0; i < 2; i++) {
		named |= strstr(h, fuzz_tags[i]) != NULL;
		strong |= strong_occurrence(h, fuzz_tags[i]);
	}
	if (m && !named && strchr(h, '*') == NULL)
		abort(); /* matched a tag it does not name */
	if (m && !weak && !strong && strchr(h, '*') == NULL)
		abort(); /* If-Match through a weak tag */
}

/* Well-formed lists built around the input (when it is a plain opaque-tag
 * body: no quote, no NUL) must match as RFC 9110 says. */
static void check_lists(const char *body)
{
	char *h;
	size_t n = strlen(body), cap = n + 64;
	int i;

	if (strchr(body, '"') != NULL || (h = malloc(cap)) == NULL)
		return;
	for (i = 0; i < 2; i++) {
		snprintf(h, cap, "\"%s\", %s", body, fuzz_tags[i]);
		if (!match(h, 0) || !match(h, 1))
			abort();
		snprintf(h, cap, "W/\"%s\",W/%s", body, fuzz_tags[i]);
		if (match(h, 0) || !match(h, 1))
			abort();
		snprintf(h, cap, "\"%s\"", body);
		if (match(h, 0) != (strcmp(h, fuzz_tags[0]) == 0 || strcmp(h, fuzz_tags[1]) == 0))
			abort();
	}
	free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	const char *why;
	size_t n;
	int weak;

	if (size == 0)
		return 0;
	weak = data[0] & 1;
	n = size - 1;
	if ((text = malloc(n + 1)) == NULL)
		return 0;
	memcpy(text, data + 1, n);
	text[n] = '\0';
	why = api_validate_idempotency_key(text);
	if ((why == NULL) != key_ok(text, strlen(text)))
		abort();
	check_etag(text, weak);
	check_lists(text);
	if (!match("*", weak) || !match(" *\t", weak) || !match(fuzz_tags[0], weak))
		abort();
	free(text);
	return 0;
}
