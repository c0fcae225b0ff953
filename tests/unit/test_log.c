/* Unit tests of log: lines go to a temp file and are read back. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "kiln/log.h"
#include "kiln/util.h"

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (strstr((hay), (needle)) == NULL)                                               \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                   \
	} while (0)

static char path[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/kiln-log-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	kiln_log_set_request(NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_log_init("test", "json", "info", NULL);
	kiln_log_set_request(NULL, NULL);
	unlink(path);
	return 0;
}

/* The whole file at p (free it). */
static char *slurp(const char *p)
{
	char *text = kiln_read_file(p, 1 << 20, NULL);

	assert_non_null(text);
	return text;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n + 1;
}

/* The one JSON line in the log file, parsed. */
static json_object *read_json_line(void)
{
	char *text = slurp(path);
	json_object *obj;

	assert_int_equal(count_lines(text), 1);
	obj = json_tokener_parse(text);
	if (obj == NULL)
		fail_msg("not JSON: %s", text);
	free(text);
	return obj;
}

static json_object *member(json_object *obj, const char *key, json_type type)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		fail_msg("no member '%s' in %s", key, json_object_to_json_string(obj));
	assert_int_equal(json_object_get_type(v), type);
	return v;
}

static void test_json_line_has_typed_fields(void **state)
{
	/* NULL at run time: gcc rejects a literal NULL for %s at compile time. */
	const char *null_str = getenv("KILN_TEST_NEVER_SET");
	json_object *obj;

	(void)state;
	assert_int_equal(kiln_log_init("health", "json", "info", path), 0);
	kiln_info("request \"done\"",
	          "status=%d route=%s ms=%.2f big=%lld n=%zu ch=%c none=%s ratio=%g bad=%f", 200,
	          "/a\"b\\c\n", 1.5, 1LL << 40, (size_t)7, 'x', null_str, 0.25, NAN);
	obj = read_json_line();
	assert_string_equal(json_object_get_string(member(obj, "level", json_type_string)), "info");
	assert_string_equal(json_object_get_string(member(obj, "app", json_type_string)), "health");
	assert_int_equal(json_object_get_int(member(obj, "pid", json_type_int)), getpid());
	assert_int_equal(strlen(json_object_get_string(member(obj, "ts", json_type_string))), 24);
	assert_string_equal(json_object_get_string(member(obj, "msg", json_type_string)),
	                    "request \"done\"");
	assert_int_equal(json_object_get_int(member(obj, "status", json_type_int)), 200);
	assert_string_equal(json_object_get_string(member(obj, "route", json_type_string)),
	                    "/a\"b\\c\n");
	assert_true(json_object_get_double(member(obj, "ms", json_type_double)) == 1.5);
	assert_int_equal(json_object_get_int64(member(obj, "big", json_type_int)), 1LL << 40);
	assert_int_equal(json_object_get_int(member(obj, "n", json_type_int)), 7);
	assert_string_equal(json_object_get_string(member(obj, "ch", json_type_string)), "x");
	member(obj, "none", json_type_null);
	assert_true(json_object_get_double(member(obj, "ratio", json_type_double)) == 0.25);
	member(obj, "bad", json_type_null);
	assert_false(json_object_object_get_ex(obj, "request_id", NULL));
	json_object_put(obj);
}

static void test_json_keeps_unknown_format_whole(void **state)
{
	json_object *obj;

	(void)state;
	kiln_log_init("health", "json", "info", path);
	kiln_warn("odd", "count: %d  hex=%x", 3, 255u);
	obj = read_json_line();
	assert_string_equal(json_object_get_string(member(obj, "fields", json_type_string)),
	                    "count: %d  hex=%x");
	assert_false(json_object_object_get_ex(obj, "count", NULL));
	json_object_put(obj);
}

static void test_json_null_fmt(void **state)
{
	json_object *obj;

	(void)state;
	kiln_log_init("health", "json", "info", path);
	kiln_error("plain", NULL);
	obj = read_json_line();
	assert_string_equal(json_object_get_string(member(obj, "level", json_type_string)),
	                    "error");
	assert_int_equal(json_object_object_length(obj), 5);
	json_object_put(obj);
}

static void test_request_id_set_and_cleared(void **state)
{
	char id[80], want[120], *text, *second;

	(void)state;
	kiln_log_init("api", "json", "info", path);
	memset(id, 'r', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	kiln_log_set_request(id, "trace-1");
	kiln_info("in request", "a=%d", 1);
	kiln_log_set_request(NULL, NULL);
	kiln_info("after request", "a=%d", 2);
	text = slurp(path);
	assert_int_equal(count_lines(text), 2);
	/* request_id is cut to 64 bytes. */
	snprintf(want, sizeof(want), "\"request_id\":\"%.64s\",\"trace_id\":\"trace-1\",", id);
	assert_contains(text, want);
	second = strchr(text, '\n') + 1;
	assert_contains(second, "after request");
	assert_null(strstr(second, "request_id"));
	assert_null(strstr(second, "trace_id"));
	free(text);
}

static void test_level_filter_drops_debug(void **state)
{
	char *text;

	(void)state;
	kiln_log_init("api", "json", "info", path);
	assert_false(kiln_log_enabled(KILN_LOG_DEBUG));
	assert_true(kiln_log_enabled(KILN_LOG_INFO));
	kiln_debug("hidden", "x=%d", 1);
	kiln_info("shown", "x=%d", 2);
	text = slurp(path);
	assert_int_equal(count_lines(text), 1);
	assert_null(strstr(text, "hidden"));
	assert_contains(text, "shown");
	free(text);
	kiln_log_init("api", "json", "debug", path);
	assert_true(kiln_log_enabled(KILN_LOG_DEBUG));
}

static void test_text_line(void **state)
{
	char *text, want[160];

	(void)state;
	kiln_log_init("health", "text", "info", path);
	kiln_log_set_request("r1", NULL);
	kiln_warn("slow\nquery", "ms=%.1f route=%s", 12.5, "/x");
	text = slurp(path);
	snprintf(want, sizeof(want), " WARN health[%ld] slow\\x0aquery req=r1 ms=12.5 route=/x",
	         (long)getpid());
	assert_int_equal(strlen(text), 24 + strlen(want));
	assert_string_equal(text + 24, want);
	assert_int_equal(text[10], 'T');
	assert_int_equal(text[23], 'Z');
	free(text);
}

static void test_reopen_after_rename(void **state)
{
	char old[80], *text;

	(void)state;
	kiln_log_init("api", "json", "info", path);
	kiln_info("first", NULL);
	snprintf(old, sizeof(old), "%s.1", path);
	assert_int_equal(rename(path, old), 0);
	kiln_info("second", NULL);
	assert_int_equal(kiln_log_reopen(), 0);
	kiln_info("third", NULL);
	text = slurp(old);
	assert_int_equal(count_lines(text), 2);
	assert_contains(text, "first");
	assert_contains(text, "second");
	free(text);
	text = slurp(path);
	assert_int_equal(count_lines(text), 1);
	assert_contains(text, "third");
	free(text);
	unlink(old);
}

static void test_unopenable_file_falls_back(void **state)
{
	(void)state;
	assert_int_equal(kiln_log_init("api", "json", "info", "/nonexistent/dir/kiln.log"), -1);
	assert_true(kiln_log_enabled(KILN_LOG_WARN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_json_line_has_typed_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_keeps_unknown_format_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_null_fmt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_id_set_and_cleared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_level_filter_drops_debug, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unopenable_file_falls_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
