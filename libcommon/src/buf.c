/* buf: a small growable byte buffer (git's strbuf idea). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/buf.h"
#include "kiln/util.h"

static char kiln_buf_empty[1];

void kiln_buf_init(struct kiln_buf *b)
{
	b->data = kiln_buf_empty;
	b->len = 0;
	b->cap = 0;
}

void kiln_buf_free(struct kiln_buf *b)
{
	if (b->cap)
		free(b->data);
	kiln_buf_init(b);
}

void kiln_buf_reset(struct kiln_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

int kiln_buf_grow(struct kiln_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->cap ? b->data : NULL, cap);
	if (p == NULL)
		return -1;
	if (b->cap == 0)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

int kiln_buf_add(struct kiln_buf *b, const void *p, size_t n)
{
	if (kiln_buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kiln_buf_adds(struct kiln_buf *b, const char *s)
{
	return kiln_buf_add(b, s, strlen(s));
}

int kiln_buf_addc(struct kiln_buf *b, char c)
{
	return kiln_buf_add(b, &c, 1);
}

int kiln_buf_vprintf(struct kiln_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(b->data + b->len, b->cap ? b->cap - b->len : 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return -1;
	if (b->cap && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return 0;
	}
	if (kiln_buf_grow(b, (size_t)n) < 0)
		return -1;
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	if (n < 0)
		return -1;
	b->len += (size_t)n;
	return 0;
}

int kiln_buf_printf(struct kiln_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = kiln_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int kiln_buf_add_json_str(struct kiln_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, k;

	while (i < n) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char hex[8];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++, run++;
			continue;
		}
		if (c >= 0x80) {
			k = kiln_utf8_len(p + i, n - i);
			if (k) {
				i += k, run += k;
				continue;
			}
		}
		if (run && kiln_buf_add(b, p + i - run, run) < 0)
			return -1;
		run = 0;
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c >= 0x80)
			esc = "\xef\xbf\xbd";
		else {
			snprintf(hex, sizeof(hex), "\\u%04x", c);
			esc = hex;
		}
		if (kiln_buf_adds(b, esc) < 0)
			return -1;
		i++;
	}
	if (run && kiln_buf_add(b, p + n - run, run) < 0)
		return -1;
	return 0;
}
