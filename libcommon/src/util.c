/* util: bounded parsers, clocks, small file reading. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln/util.h"

int kiln_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Split "123unit" into its number and unit. Returns 0, or -1. */
static int split_number(const char *s, int64_t *num, const char **unit)
{
	int64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*num = v;
	*unit = p;
	return 0;
}

int kiln_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *unit;
	int64_t v;
	size_t i;

	if (s == NULL || split_number(s, &v, &unit) < 0)
		return -1;
	for (i = 0; i < KILN_ARRAY_LEN(units); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (v > INT64_MAX / units[i].ms)
			return -1;
		*out_ms = v * units[i].ms;
		return 0;
	}
	return -1;
}

int kiln_parse_size(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t mul;
	} units[] = {
	    {"", 1}, {"k", 1024}, {"K", 1024}, {"M", 1024 * 1024}, {"G", 1024LL * 1024 * 1024}};
	const char *unit;
	int64_t v;
	size_t i;

	if (s == NULL || split_number(s, &v, &unit) < 0)
		return -1;
	for (i = 0; i < KILN_ARRAY_LEN(units); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (v > INT64_MAX / units[i].mul)
			return -1;
		*out = v * units[i].mul;
		return 0;
	}
	return -1;
}

int kiln_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
	const char *colon, *hend, *hbeg = addr;
	int64_t p;

	if (addr[0] == '/') {
		*port = -1;
		return kiln_strlcpy(host, addr, hostlen) < hostlen ? 0 : -1;
	}
	if (addr[0] == '[') {
		hbeg = addr + 1;
		hend = strchr(hbeg, ']');
		if (hend == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)))
			return -1;
		hend = colon;
	}
	if (hend == hbeg || (size_t)(hend - hbeg) >= hostlen ||
	    kiln_parse_int(colon + 1, 1, 65535, &p) < 0)
		return -1;
	memcpy(host, hbeg, (size_t)(hend - hbeg));
	host[hend - hbeg] = '\0';
	*port = (int)p;
	return 0;
}

size_t kiln_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int kiln_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int64_t kiln_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kiln_now_ms(void)
{
	return kiln_now_ns() / 1000000;
}

int64_t kiln_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *kiln_rfc3339(int64_t wall_ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(wall_ms % 1000));
	return out;
}

size_t kiln_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t n = strlen(src);

	if (dstlen) {
		size_t c = n < dstlen - 1 ? n : dstlen - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

const char *kiln_proc_stat_fields(int pid, char *buf, size_t len)
{
	char path[64], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p + 2 : NULL;
}

int kiln_pid_alive(int pid)
{
	const char *f;
	char buf[1024];

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return 0;
	f = kiln_proc_stat_fields(pid, buf, sizeof(buf));
	return f && *f != 'Z' && *f != 'X';
}

char *kiln_read_file(const char *path, size_t max, size_t *len_out)
{
	struct stat st;
	char *data;
	ssize_t n;
	size_t len = 0;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
		saved = errno ? errno : EFBIG;
		if ((size_t)st.st_size > max)
			saved = EFBIG;
		close(fd);
		errno = saved;
		return NULL;
	}
	data = malloc(max + 1);
	if (data == NULL) {
		close(fd);
		return NULL;
	}
	while (len < max && (n = read(fd, data + len, max - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			free(data);
			close(fd);
			errno = saved;
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = '\0';
	if (len_out)
		*len_out = len;
	return data;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

long kiln_b64url_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *s = in;
	size_t need, i, o = 0;
	uint32_t v;

	if (len / 3 >= ((size_t)LONG_MAX - 4) / 4)
		return -1;
	need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	if (outlen <= need)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		out[o++] = b64url_alphabet[s[i] >> 2];
		out[o++] = b64url_alphabet[(s[i] & 3) << 4];
	} else if (len - i == 2) {
		v = (uint32_t)s[i] << 8 | s[i + 1];
		out[o++] = b64url_alphabet[v >> 10];
		out[o++] = b64url_alphabet[(v >> 4) & 63];
		out[o++] = b64url_alphabet[(v & 15) << 2];
	}
	out[o] = '\0';
	return (long)o;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decoding is canonical: the unused low bits of a final partial group must be
 * zero, so each byte string has exactly one accepted encoding and a token
 * cannot be altered into a different string that still verifies. */
long kiln_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), i, o = 0;
	uint32_t v = 0;
	int d, bits = 0;

	if (len % 4 == 1 || need > outlen || need > (size_t)LONG_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		d = b64url_value((unsigned char)in[i]);
		if (d < 0)
			return -1;
		v = (v << 6 | (uint32_t)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if (v & ((1u << bits) - 1))
		return -1;
	return (long)o;
}

int kiln_tmpfile_beside(const char *path, unsigned mode, char *tmp, size_t tmplen)
{
	int fd, saved;

	if ((size_t)snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path) >= tmplen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* 0600, O_EXCL */
	if (fd < 0)
		return -1;
	if (fchmod(fd, (mode_t)mode) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return fd;
}
