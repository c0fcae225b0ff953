/* Unit tests for util (bounded parsers) and buf (growable buffer, JSON escaping). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kiln/buf.h"
#include "kiln/util.h"

static void test_parse_int_bounds(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(kiln_parse_int("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(kiln_parse_int("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(kiln_parse_int("101", 0, 100, &v), -1);
	assert_int_equal(kiln_parse_int("", 0, 100, &v), -1);
	assert_int_equal(kiln_parse_int(" 1", 0, 100, &v), -1);
	assert_int_equal(kiln_parse_int("1x", 0, 100, &v), -1);
	assert_int_equal(kiln_parse_int("99999999999999999999", 0, INT64_MAX, &v), -1);
}

static void test_parse_duration_units(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(kiln_parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(kiln_parse_duration_ms("30s", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(kiln_parse_duration_ms("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(kiln_parse_duration_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(kiln_parse_duration_ms("7", &ms), 0);
	assert_int_equal(ms, 7);
	assert_int_equal(kiln_parse_duration_ms("5 s", &ms), -1);
	assert_int_equal(kiln_parse_duration_ms("5d", &ms), -1);
	assert_int_equal(kiln_parse_duration_ms("-1s", &ms), -1);
	assert_int_equal(kiln_parse_duration_ms("9999999999999999999h", &ms), -1);
}

static void test_parse_size_units(void **state)
{
	int64_t b;

	(void)state;
	assert_int_equal(kiln_parse_size("64k", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(kiln_parse_size("8M", &b), 0);
	assert_int_equal(b, 8 << 20);
	assert_int_equal(kiln_parse_size("1G", &b), 0);
	assert_int_equal(b, 1 << 30);
	assert_int_equal(kiln_parse_size("12x", &b), -1);
	assert_int_equal(kiln_parse_size("99999999999G", &b), -1);
}

static void test_parse_addr_forms(void **state)
{
	char host[64];
	int port;

	(void)state;
	assert_int_equal(kiln_parse_addr("/run/kiln/redis.sock", host, sizeof(host), &port), 0);
	assert_string_equal(host, "/run/kiln/redis.sock");
	assert_int_equal(port, -1);
	assert_int_equal(kiln_parse_addr("127.0.0.1:6379", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 6379);
	assert_int_equal(kiln_parse_addr("[::1]:11211", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 11211);
	assert_int_equal(kiln_parse_addr("::1:80", host, sizeof(host), &port), -1);
	assert_int_equal(kiln_parse_addr("host:0", host, sizeof(host), &port), -1);
	assert_int_equal(kiln_parse_addr("host:65536", host, sizeof(host), &port), -1);
	assert_int_equal(kiln_parse_addr(":80", host, sizeof(host), &port), -1);
	assert_int_equal(kiln_parse_addr("[::1]80", host, sizeof(host), &port), -1);
	assert_int_equal(kiln_parse_addr("averyveryverylonghostname:1", host, 8, &port), -1);
}

static void test_buf_grows_and_formats(void **state)
{
	struct kiln_buf b;
	int i;

	(void)state;
	kiln_buf_init(&b);
	assert_string_equal(b.data, "");
	for (i = 0; i < 1000; i++)
		assert_int_equal(kiln_buf_printf(&b, "%d,", i), 0);
	assert_true(b.len > 3000);
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	assert_int_equal(b.data[b.len], '\0');
	kiln_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	kiln_buf_free(&b);
}

static void test_buf_json_escaping(void **state)
{
	static const char in[] = "a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z";
	struct kiln_buf b;

	(void)state;
	kiln_buf_init(&b);
	assert_int_equal(kiln_buf_add_json_str(&b, in, sizeof(in) - 1), 0);
	/* quote, backslash, newline, control escaped; é kept; 0xff and the
	 * encoded surrogate (ED A0 80) replaced by U+FFFD each byte. */
	assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001\xc3\xa9\xef\xbf\xbd"
	                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	kiln_buf_free(&b);
}

static void test_rfc3339_utc(void **state)
{
	char out[40];

	(void)state;
	assert_string_equal(kiln_rfc3339(1795435200123LL, out, sizeof(out)),
	                    "2026-11-23T12:00:00.123Z");
}

/* A temporary file beside its target: same directory, the mode asked for
 * (not the umask's), unique; a name that does not fit leaves nothing. */
static void test_tmpfile_beside(void **state)
{
	char dir[] = "/tmp/kiln-util-XXXXXX", path[64], tmp[80], tmp2[80], small[8];
	struct stat st;
	int fd, fd2;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/target", dir);
	fd = kiln_tmpfile_beside(path, 0644, tmp, sizeof(tmp));
	assert_true(fd >= 0);
	assert_int_equal(strncmp(tmp, path, strlen(path)), 0);
	assert_non_null(strstr(tmp, ".tmp."));
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	fd2 = kiln_tmpfile_beside(path, 0600, tmp2, sizeof(tmp2));
	assert_true(fd2 >= 0);
	assert_string_not_equal(tmp, tmp2);
	assert_int_equal(fstat(fd2, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(rename(tmp, path), 0);
	assert_int_equal(kiln_tmpfile_beside(path, 0600, small, sizeof(small)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	close(fd);
	close(fd2);
	unlink(tmp2);
	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* nothing else was left behind */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_int_bounds),
	    cmocka_unit_test(test_parse_duration_units),
	    cmocka_unit_test(test_parse_size_units),
	    cmocka_unit_test(test_parse_addr_forms),
	    cmocka_unit_test(test_buf_grows_and_formats),
	    cmocka_unit_test(test_buf_json_escaping),
	    cmocka_unit_test(test_rfc3339_utc),
	    cmocka_unit_test(test_tmpfile_beside),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
