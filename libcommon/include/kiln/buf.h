/* buf: a small growable byte buffer, always NUL-terminated. */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kiln_buf {
	char *data; /* NUL-terminated; never NULL after kiln_buf_init */
	size_t len;
	size_t cap;
};

/* Initialise an empty buffer (no allocation until the first write). */
void kiln_buf_init(struct kiln_buf *b);

/* Release the memory; the buffer is empty and reusable afterwards. */
void kiln_buf_free(struct kiln_buf *b);

/* Forget the contents but keep the allocation (per-request reuse). */
void kiln_buf_reset(struct kiln_buf *b);

/* Make room for n more bytes. Returns 0, or -1 when out of memory. */
int kiln_buf_grow(struct kiln_buf *b, size_t n);

/* Append bytes / a C string / one byte. Return 0, or -1 when out of memory. */
int kiln_buf_add(struct kiln_buf *b, const void *p, size_t n);
int kiln_buf_adds(struct kiln_buf *b, const char *s);
int kiln_buf_addc(struct kiln_buf *b, char c);

/* Append printf-formatted text. Returns 0, or -1 on memory or format error. */
int kiln_buf_printf(struct kiln_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kiln_buf_vprintf(struct kiln_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Append s as the inside of a JSON string (quotes not included): escapes
 * '"', '\\' and control characters; invalid UTF-8 bytes become U+FFFD.
 * Returns 0, or -1 when out of memory. */
int kiln_buf_add_json_str(struct kiln_buf *b, const char *s, size_t n);

#endif
