/* log: one line per event to stderr (or a file), JSON by default, text for
 * development. Every line carries ts, level, app, pid, and during a request
 * its request_id and trace_id. Never pass secrets, passwords or tokens. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum kiln_log_level { KILN_LOG_DEBUG, KILN_LOG_INFO, KILN_LOG_WARN, KILN_LOG_ERROR };

/* Configure the logger. format: "json" or "text"; level: "debug".."error";
 * file: NULL or "" for stderr, else a path opened O_APPEND.
 * Returns 0, or -1 when the file cannot be opened (logging stays on stderr). */
int kiln_log_init(const char *app, const char *format, const char *level, const char *file);

/* Reopen the log file (SIGUSR1, after logrotate). Returns 0, or -1 on error. */
int kiln_log_reopen(void);

/* Set / clear the request context added to every line (NULL clears a field).
 * Values are copied; request_id is truncated to 64 bytes, trace_id to 32. */
void kiln_log_set_request(const char *request_id, const char *trace_id);

/* Is this level enabled? Lets callers skip building expensive fields. */
int kiln_log_enabled(enum kiln_log_level level);

/* Log msg with fields. fmt is a printf format made only of `key=%conv` pairs
 * separated by spaces, e.g. "pid=%d route=%s ms=%.1f" (conversions: %s %d %i
 * %u %ld %lu %lld %llu %zu %zd %f %.Nf %g %c; "%%" not allowed). In JSON mode
 * each pair becomes a typed JSON member; in text mode the line is printed as
 * formatted. fmt may be NULL. Each line is written with one write(2). */
void kiln_log(enum kiln_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define kiln_debug(msg, ...) kiln_log(KILN_LOG_DEBUG, msg, __VA_ARGS__)
#define kiln_info(msg, ...)  kiln_log(KILN_LOG_INFO, msg, __VA_ARGS__)
#define kiln_warn(msg, ...)  kiln_log(KILN_LOG_WARN, msg, __VA_ARGS__)
#define kiln_error(msg, ...) kiln_log(KILN_LOG_ERROR, msg, __VA_ARGS__)

#endif
