/* util: bounded parsers and clocks shared by every module. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse a whole decimal integer within [min, max] (OpenBSD strtonum idea).
 * Returns 0 and sets *out, or -1 when s is empty, has junk, or is out of range. */
int kiln_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parse a duration such as "250ms", "30s", "5m", "1h" (a bare number means
 * milliseconds) into milliseconds. Returns 0, or -1 on a bad value. */
int kiln_parse_duration_ms(const char *s, int64_t *out_ms);

/* Parse a size such as "1048576", "64k", "8M", "1G" (1024-based) into bytes.
 * Returns 0, or -1 on a bad value or overflow. */
int kiln_parse_size(const char *s, int64_t *out);

/* Split an address "/abs/path", "host:port" or "[v6]:port" (port 1..65535)
 * into host (the path for a unix socket) and port (-1 for a unix socket).
 * Returns 0, or -1 when malformed or host does not fit hostlen. */
int kiln_parse_addr(const char *addr, char *host, size_t hostlen, int *port);

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available): 1..4,
 * or 0 when s does not start a valid sequence (overlong forms, surrogates and
 * code points past U+10FFFF are invalid). */
size_t kiln_utf8_len(const unsigned char *s, size_t n);

/* Parse "on|off|true|false|yes|no|1|0". Returns 0, or -1 otherwise. */
int kiln_parse_bool(const char *s, int *out);

/* Monotonic clock in nanoseconds / milliseconds. */
int64_t kiln_now_ns(void);
int64_t kiln_now_ms(void);

/* Wall clock in milliseconds since the epoch. */
int64_t kiln_wall_ms(void);

/* Format a wall-clock time (ms since epoch) as RFC 3339 UTC with
 * milliseconds and 'Z', e.g. "2026-11-23T10:00:00.123Z" into out (>= 32 bytes).
 * Returns out. */
char *kiln_rfc3339(int64_t wall_ms, char *out, size_t outlen);

/* Copy src into dst (size dstlen), always NUL-terminating.
 * Returns strlen(src); a result >= dstlen means it was truncated. */
size_t kiln_strlcpy(char *dst, const char *src, size_t dstlen);

/* The fields of /proc/<pid>/stat after the command (which may hold spaces
 * and parentheses): the text after its last ") ", starting with field 3, the
 * state. Returns it (inside buf), or NULL when the process is gone. */
const char *kiln_proc_stat_fields(int pid, char *buf, size_t len);

/* Does pid name a process that has not exited? A zombie has: a stopped
 * master reparented to an init that reaps late still answers kill(pid, 0). */
int kiln_pid_alive(int pid);

/* Read a whole small file (at most max bytes) into a new NUL-terminated string;
 * trailing newlines are stripped. Returns the string (free it), or NULL with
 * errno set (EFBIG when larger than max). */
char *kiln_read_file(const char *path, size_t max, size_t *len_out);

/* Create a new file beside path ("<path>.tmp.XXXXXX": same filesystem, so it
 * can be rename(2)d over path atomically) with mode, close-on-exec; its name
 * goes to tmp (tmplen bytes). Returns the fd, or -1 with errno set
 * (ENAMETOOLONG when the name does not fit; nothing is left behind). */
int kiln_tmpfile_beside(const char *path, unsigned mode, char *tmp, size_t tmplen);

/* base64url without padding (RFC 4648 §5). encode writes a NUL-terminated
 * string and returns its length, or -1 when out is too small. decode returns
 * the number of bytes written, or -1 on a bad character, bad length or
 * overflow of outlen. */
long kiln_b64url_encode(const void *in, size_t len, char *out, size_t outlen);
long kiln_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

#define KILN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
