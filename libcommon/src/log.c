/* log: each line is built in one reused buffer and leaves with one write(2),
 * so lines from prefork workers sharing the fd never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "kiln/buf.h"
#include "kiln/log.h"
#include "kiln/util.h"

#define LOG_OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)
#define LOG_KEEP_MAX   (64 * 1024) /* a buffer grown past this is given back */

enum log_arg {
	ARG_STR,
	ARG_CHAR,
	ARG_INT,
	ARG_UINT,
	ARG_LONG,
	ARG_ULONG,
	ARG_LLONG,
	ARG_ULLONG,
	ARG_SIZE,
	ARG_SSIZE,
	ARG_DOUBLE
};

/* The conversions of kiln_log's fmt, and the va_arg type each one takes. */
static const struct {
	const char *conv;
	enum log_arg arg;
} log_convs[] = {
    {"s", ARG_STR},     {"c", ARG_CHAR},    {"d", ARG_INT},      {"i", ARG_INT},
    {"u", ARG_UINT},    {"ld", ARG_LONG},   {"li", ARG_LONG},    {"lu", ARG_ULONG},
    {"lld", ARG_LLONG}, {"lli", ARG_LLONG}, {"llu", ARG_ULLONG}, {"zu", ARG_SIZE},
    {"zd", ARG_SSIZE},  {"f", ARG_DOUBLE},  {"g", ARG_DOUBLE},
};

static const char *const log_json_names[] = {"debug", "info", "warn", "error"};
static const char *const log_text_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static struct {
	char app[32];
	int text;
	enum kiln_log_level level;
	int fd;    /* STDERR_FILENO, or our file */
	int owned; /* fd is the file at path */
	char path[4096];
	char request_id[65];
	char trace_id[33];
	struct kiln_buf line;    /* reused for every line */
	struct kiln_buf scratch; /* text mode: formatted fields before escaping */
} lg = {.app = "kiln", .level = KILN_LOG_INFO, .fd = STDERR_FILENO};

/* One "key=%conv" of fmt. */
struct log_field {
	const char *key;
	size_t keylen;
	enum log_arg arg;
	int prec; /* %.Nf, %.Ng; -1 = printf's default */
	char conv;
};

/* The level named name, or KILN_LOG_INFO when name is not one. */
static enum kiln_log_level log_level_named(const char *name)
{
	size_t i;

	for (i = 0; name && i < KILN_ARRAY_LEN(log_json_names); i++)
		if (strcmp(log_json_names[i], name) == 0)
			return (enum kiln_log_level)i;
	return KILN_LOG_INFO;
}

int kiln_log_init(const char *app, const char *format, const char *level, const char *file)
{
	int fd;

	kiln_strlcpy(lg.app, app && *app ? app : "kiln", sizeof(lg.app));
	lg.text = format && strcmp(format, "text") == 0;
	lg.level = log_level_named(level);
	kiln_strlcpy(lg.path, file ? file : "", sizeof(lg.path));
	fd = lg.path[0] ? open(lg.path, LOG_OPEN_FLAGS, 0640) : -1;
	if (lg.owned)
		close(lg.fd);
	lg.fd = fd >= 0 ? fd : STDERR_FILENO;
	lg.owned = fd >= 0;
	return lg.path[0] && fd < 0 ? -1 : 0;
}

/* dup3 swaps the file under the same fd number in one step: a line written
 * meanwhile lands in the old file or the new one, never nowhere. */
int kiln_log_reopen(void)
{
	int fd;

	if (lg.path[0] == '\0')
		return 0;
	fd = open(lg.path, LOG_OPEN_FLAGS, 0640);
	if (fd < 0)
		return -1;
	if (!lg.owned) {
		lg.fd = fd;
		lg.owned = 1;
		return 0;
	}
	if (dup3(fd, lg.fd, O_CLOEXEC) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void kiln_log_set_request(const char *request_id, const char *trace_id)
{
	kiln_strlcpy(lg.request_id, request_id ? request_id : "", sizeof(lg.request_id));
	kiln_strlcpy(lg.trace_id, trace_id ? trace_id : "", sizeof(lg.trace_id));
}

int kiln_log_enabled(enum kiln_log_level level)
{
	return level >= lg.level && level <= KILN_LOG_ERROR;
}

/* Parse the "key=%conv" at *p and step over it and the space after it.
 * Returns 0, or -1 when fmt strays from that shape. */
static int log_field_next(const char **p, struct log_field *f)
{
	const char *s = *p, *conv;
	size_t i, n;

	f->key = s;
	while (*s && *s != '=' && *s != ' ' && *s != '%')
		s++;
	f->keylen = (size_t)(s - f->key);
	if (f->keylen == 0 || s[0] != '=' || s[1] != '%')
		return -1;
	s += 2;
	f->prec = -1;
	if (*s == '.') {
		for (f->prec = 0, s++; *s >= '0' && *s <= '9' && f->prec < 100; s++)
			f->prec = f->prec * 10 + (*s - '0');
		if (s[-1] == '.' || f->prec >= 100)
			return -1;
	}
	conv = s;
	n = strcspn(s, " ");
	for (i = 0; i < KILN_ARRAY_LEN(log_convs); i++)
		if (strlen(log_convs[i].conv) == n && memcmp(log_convs[i].conv, conv, n) == 0)
			break;
	if (i == KILN_ARRAY_LEN(log_convs) || (f->prec >= 0 && log_convs[i].arg != ARG_DOUBLE))
		return -1;
	f->arg = log_convs[i].arg;
	f->conv = conv[n - 1];
	s += n;
	if (*s == ' ' && (s[1] == '\0' || s[1] == ' '))
		return -1;
	*p = *s ? s + 1 : s;
	return 0;
}

static int log_fmt_ok(const char *fmt)
{
	struct log_field f;

	while (*fmt)
		if (log_field_next(&fmt, &f) < 0)
			return 0;
	return 1;
}

static int log_json_str(struct kiln_buf *b, const char *s, size_t n)
{
	if (kiln_buf_addc(b, '"') < 0 || kiln_buf_add_json_str(b, s, n) < 0)
		return -1;
	return kiln_buf_addc(b, '"');
}

/* ,"key":"value" */
static int log_json_member(struct kiln_buf *b, const char *key, const char *s)
{
	if (kiln_buf_printf(b, ",\"%s\":", key) < 0)
		return -1;
	return log_json_str(b, s, strlen(s));
}

static int log_json_value(struct kiln_buf *b, const struct log_field *f, va_list *ap)
{
	const char *s;
	double d;
	char c;

	switch (f->arg) {
	case ARG_STR:
		s = va_arg(*ap, const char *);
		return s ? log_json_str(b, s, strlen(s)) : kiln_buf_adds(b, "null");
	case ARG_CHAR:
		c = (char)va_arg(*ap, int);
		return log_json_str(b, &c, 1);
	case ARG_INT:
		return kiln_buf_printf(b, "%d", va_arg(*ap, int));
	case ARG_UINT:
		return kiln_buf_printf(b, "%u", va_arg(*ap, unsigned));
	case ARG_LONG:
		return kiln_buf_printf(b, "%ld", va_arg(*ap, long));
	case ARG_ULONG:
		return kiln_buf_printf(b, "%lu", va_arg(*ap, unsigned long));
	case ARG_LLONG:
		return kiln_buf_printf(b, "%lld", va_arg(*ap, long long));
	case ARG_ULLONG:
		return kiln_buf_printf(b, "%llu", va_arg(*ap, unsigned long long));
	case ARG_SIZE:
		return kiln_buf_printf(b, "%zu", va_arg(*ap, size_t));
	case ARG_SSIZE:
		return kiln_buf_printf(b, "%zd", va_arg(*ap, ssize_t));
	case ARG_DOUBLE:
		d = va_arg(*ap, double);
		if (!isfinite(d))
			return kiln_buf_adds(b, "null");
		if (f->conv == 'g')
			return kiln_buf_printf(b, "%.*g", f->prec < 0 ? 6 : f->prec, d);
		return kiln_buf_printf(b, "%.*f", f->prec < 0 ? 6 : f->prec, d);
	}
	return -1;
}

/* Each pair becomes a typed member; a fmt of another shape is kept whole as
 * "fields" and no argument is read, since its types are unknown. */
static int log_json_fields(struct kiln_buf *b, const char *fmt, va_list *ap)
{
	struct log_field f;
	int rc = 0;

	if (!log_fmt_ok(fmt))
		return log_json_member(b, "fields", fmt);
	while (*fmt && rc == 0) {
		log_field_next(&fmt, &f);
		if (kiln_buf_addc(b, ',') < 0 || log_json_str(b, f.key, f.keylen) < 0 ||
		    kiln_buf_addc(b, ':') < 0)
			return -1;
		rc = log_json_value(b, &f, ap);
	}
	return rc;
}

static int log_json_line(struct kiln_buf *b, const char *ts, enum kiln_log_level level,
                         const char *msg, const char *fmt, va_list *ap)
{
	if (kiln_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, log_json_names[level]) < 0 ||
	    log_json_member(b, "app", lg.app) < 0 ||
	    kiln_buf_printf(b, ",\"pid\":%ld", (long)getpid()) < 0)
		return -1;
	if (lg.request_id[0] && log_json_member(b, "request_id", lg.request_id) < 0)
		return -1;
	if (lg.trace_id[0] && log_json_member(b, "trace_id", lg.trace_id) < 0)
		return -1;
	if (log_json_member(b, "msg", msg) < 0)
		return -1;
	if (fmt && *fmt && log_json_fields(b, fmt, ap) < 0)
		return -1;
	return kiln_buf_adds(b, "}\n");
}

/* Text lines stay one line each: control characters from request data are
 * shown escaped instead of breaking the line. */
static int log_text_add(struct kiln_buf *b, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			rc = kiln_buf_printf(b, "\\x%02x", (unsigned char)*s);
		else
			rc = kiln_buf_addc(b, *s);
	}
	return rc;
}

static int log_text_line(struct kiln_buf *b, const char *ts, enum kiln_log_level level,
                         const char *msg, const char *fmt, va_list *ap)
{
	if (kiln_buf_printf(b, "%s %s %s[%ld] ", ts, log_text_names[level], lg.app,
	                    (long)getpid()) < 0 ||
	    log_text_add(b, msg) < 0)
		return -1;
	if (lg.request_id[0] &&
	    (kiln_buf_adds(b, " req=") < 0 || log_text_add(b, lg.request_id) < 0))
		return -1;
	if (lg.trace_id[0] && (kiln_buf_adds(b, " trace=") < 0 || log_text_add(b, lg.trace_id) < 0))
		return -1;
	if (fmt && *fmt) {
		kiln_buf_reset(&lg.scratch);
		if (kiln_buf_vprintf(&lg.scratch, fmt, *ap) < 0 || kiln_buf_addc(b, ' ') < 0 ||
		    log_text_add(b, lg.scratch.data) < 0)
			return -1;
	}
	return kiln_buf_addc(b, '\n');
}

static void log_write(const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(lg.fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

void kiln_log(enum kiln_log_level level, const char *msg, const char *fmt, ...)
{
	static const char oom[] = "{\"level\":\"error\",\"msg\":\"log: out of memory\"}\n";
	int saved = errno, rc;
	char ts[32];
	va_list ap;

	if (!kiln_log_enabled(level))
		return;
	if (lg.line.data == NULL) {
		kiln_buf_init(&lg.line);
		kiln_buf_init(&lg.scratch);
	}
	kiln_buf_reset(&lg.line);
	kiln_rfc3339(kiln_wall_ms(), ts, sizeof(ts));
	va_start(ap, fmt);
	if (lg.text)
		rc = log_text_line(&lg.line, ts, level, msg ? msg : "", fmt, &ap);
	else
		rc = log_json_line(&lg.line, ts, level, msg ? msg : "", fmt, &ap);
	va_end(ap);
	if (rc)
		log_write(oom, sizeof(oom) - 1);
	else
		log_write(lg.line.data, lg.line.len);
	if (lg.line.cap > LOG_KEEP_MAX)
		kiln_buf_free(&lg.line);
	if (lg.scratch.cap > LOG_KEEP_MAX)
		kiln_buf_free(&lg.scratch);
	errno = saved;
}
