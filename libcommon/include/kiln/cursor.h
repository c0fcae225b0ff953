/* cursor: opaque, tamper-checked keyset-pagination cursors. A cursor carries
 * the sort key of the last row of a page (up to KILN_CURSOR_MAX_KEYS
 * integers) bound to the query it belongs to (a "scope" string: the route
 * and its filters), and an HMAC-SHA256 tag under a server key, so a client
 * can neither forge a position nor reuse a cursor with other filters.
 *
 * Text form: base64url(payload) "." base64url(first 16 bytes of the tag),
 * where payload = version byte 1, key count, the keys as 8-byte big-endian
 * two's complement. At most KILN_CURSOR_TEXT_MAX bytes. */
#ifndef KILN_CURSOR_H
#define KILN_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#define KILN_CURSOR_MAX_KEYS 4
#define KILN_CURSOR_TEXT_MAX 128

struct kiln_cursor_key {
	unsigned char key[32];
};

/* Derive the cursor key from a server secret (HMAC-SHA256 of a fixed label
 * under secret), so the secret itself never signs cursors. Returns 0, or -1. */
int kiln_cursor_key_init(struct kiln_cursor_key *k, const void *secret, size_t len);

/* Encode n keys (1..KILN_CURSOR_MAX_KEYS) for scope into out (at least
 * KILN_CURSOR_TEXT_MAX bytes). Returns the length, or -1 on bad arguments. */
int kiln_cursor_encode(const struct kiln_cursor_key *k, const char *scope, const int64_t *keys,
                       int n, char *out, size_t outlen);

/* Decode text (NUL-terminated) made for scope, expecting exactly n keys.
 * Returns 0 with keys filled, or -1 when the text is malformed, too long,
 * has another key count or version, or its tag does not match (forged,
 * altered, or made for another scope or key). Constant-time tag check. */
int kiln_cursor_decode(const struct kiln_cursor_key *k, const char *scope, const char *text,
                       int64_t *keys, int n);

#endif
