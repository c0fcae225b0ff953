/* Unit tests of config: defaults, the INI syntax, every error class, the
 * [server.<app>] overlay, environment overrides and *_file secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/config.h"

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (strstr((hay), (needle)) == NULL)                                               \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                   \
	} while (0)

static struct kiln_config cfg;
static char err[512];

static int parse(const char *text, const char *app)
{
	err[0] = '\0';
	return kiln_config_parse(&cfg, "t.conf", text, strlen(text), app, err, sizeof(err));
}

/* Write text to a new temp file in dir; its path goes to path. */
static void write_temp(char *path, size_t pathlen, const char *dir, const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, pathlen, "%s/kiln-test-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void expect_error(const char *text, const char *line, const char *what)
{
	assert_int_equal(parse(text, "api"), -1);
	assert_contains(err, "t.conf:");
	assert_contains(err, line);
	assert_contains(err, what);
}

static void test_defaults(void **state)
{
	(void)state;
	kiln_config_defaults(&cfg);
	assert_int_equal(cfg.server.workers, 0);
	assert_int_equal(cfg.server.max_requests, 0);
	assert_int_equal(cfg.server.request_timeout_ms, 30000);
	assert_int_equal(cfg.server.shutdown_timeout_ms, 10000);
	assert_int_equal(cfg.server.max_body, 1024 * 1024);
	assert_int_equal(cfg.server.backlog, 1024);
	assert_string_equal(cfg.server.run_dir, "/run/kiln");
	assert_string_equal(cfg.log.format, "json");
	assert_string_equal(cfg.log.level, "info");
	assert_string_equal(cfg.log.file, "");
	assert_int_equal(cfg.log.access, 0);
	assert_string_equal(cfg.database.url, "postgresql:///kiln");
	assert_string_equal(cfg.database.password, "");
	assert_int_equal(cfg.database.connect_timeout_ms, 2000);
	assert_int_equal(cfg.database.statement_timeout_ms, 5000);
	assert_string_equal(cfg.redis.address, "127.0.0.1:6379");
	assert_int_equal(cfg.redis.db, 0);
	assert_int_equal(cfg.redis.connect_timeout_ms, 250);
	assert_int_equal(cfg.redis.command_timeout_ms, 250);
	assert_string_equal(cfg.memcached.servers, "127.0.0.1:11211");
	assert_int_equal(cfg.memcached.connect_timeout_ms, 100);
	assert_int_equal(cfg.memcached.command_timeout_ms, 100);
	assert_int_equal(cfg.health.check_timeout_ms, 250);
	assert_int_equal(cfg.health.cache_ms, 1000);
	assert_string_equal(cfg.health.disk_path, "/");
	assert_int_equal(cfg.health.disk_min_free, 100LL * 1024 * 1024);
	assert_int_equal(cfg.health.disk_warn_free, 1024LL * 1024 * 1024);
}

static void test_empty_text_gives_defaults(void **state)
{
	struct kiln_config def;

	(void)state;
	kiln_config_defaults(&def);
	assert_int_equal(parse("", "api"), 0);
	assert_string_equal(cfg.path, "t.conf");
	assert_string_equal(cfg.app, "api");
	memcpy(def.path, cfg.path, sizeof(def.path));
	memcpy(def.app, cfg.app, sizeof(def.app));
	assert_memory_equal(&cfg, &def, sizeof(cfg));
}

static void test_good_file(void **state)
{
	(void)state;
	assert_int_equal(parse("\xef\xbb\xbf# kiln\r\n"
	                       "  ; another comment\r\n"
	                       "\r\n"
	                       "[server]\r\n"
	                       "workers = 8\r\n"
	                       "  max_body=64k  \r\n"
	                       "request_timeout = 2m\n"
	                       "[log]\n"
	                       "level = debug\n"
	                       "access = yes\n"
	                       "file = \"  /var/log/kiln #1.log\"\n"
	                       "[database]\n"
	                       "url = host=db dbname=kiln # not a comment\n"
	                       "password = \"pa\\\"ss\\\\word\"\n"
	                       "[ health ]\n"
	                       "disk_min_free = 2G\n"
	                       "cache = 0\n"
	                       "[server]\n"
	                       "backlog = 16\n",
	                       "api"),
	                 0);
	assert_int_equal(cfg.server.workers, 8);
	assert_int_equal(cfg.server.max_body, 64 * 1024);
	assert_int_equal(cfg.server.request_timeout_ms, 120000);
	assert_int_equal(cfg.server.backlog, 16);
	assert_string_equal(cfg.log.level, "debug");
	assert_int_equal(cfg.log.access, 1);
	assert_string_equal(cfg.log.file, "  /var/log/kiln #1.log");
	assert_string_equal(cfg.database.url, "host=db dbname=kiln # not a comment");
	assert_string_equal(cfg.database.password, "pa\"ss\\word");
	assert_int_equal(cfg.health.disk_min_free, 2LL * 1024 * 1024 * 1024);
	assert_int_equal(cfg.health.cache_ms, 0);
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_error("[server]\nworkers = 2\nwrokers = 4\n",
	             ":3:", "unknown key 'wrokers' in [server]");
}

static void test_unknown_section(void **state)
{
	(void)state;
	expect_error("[server]\n\n[serer]\n", ":3:", "unknown section [serer]");
}

static void test_bad_program_section(void **state)
{
	(void)state;
	expect_error("[server.Api]\n", ":1:", "[server.Api]");
	expect_error("[server.]\n", ":1:", "[server.]");
	expect_error("[server.abcdefghijklmnopqrstuvwxyz0123456]\n", ":1:", "bad program name");
}

static void test_bad_int(void **state)
{
	(void)state;
	expect_error("[server]\nworkers = abc\n",
	             ":2:", "[server] workers: 'abc' is not an integer in 0..64");
	expect_error("[server]\nworkers = 8 \"x\"\n", ":2:", "[server] workers:");
}

static void test_int_out_of_range(void **state)
{
	(void)state;
	expect_error("[server]\nworkers = 65\n", ":2:", "[server] workers: '65' is not");
	expect_error("[redis]\ndb = -1\n", ":2:", "[redis] db: '-1' is not an integer in 0..15");
	expect_error("[server]\nbacklog = 0\n", ":2:", "[server] backlog:");
	expect_error("[server]\nmax_body = 2G\n",
	             ":2:", "[server] max_body: '2G' is not a size in 0..1G");
}

static void test_bad_duration(void **state)
{
	(void)state;
	expect_error("[server]\nrequest_timeout = 30 s\n",
	             ":2:", "[server] request_timeout: '30 s' is not a duration in 0..1h");
	expect_error("[server]\nshutdown_timeout = 11m\n", ":2:", "in 0..10m");
	expect_error("[redis]\nconnect_timeout = 0\n",
	             ":2:", "[redis] connect_timeout: '0' is not a duration in 1ms..60s");
}

static void test_bad_enum_and_bool(void **state)
{
	(void)state;
	expect_error("[log]\nformat = yaml\n",
	             ":2:", "[log] format: 'yaml' is not one of json|text");
	expect_error("[log]\nlevel = verbose-and-much-longer-than-sixteen\n",
	             ":2:", "is not one of debug|info|warn|error");
	expect_error("[log]\naccess = maybe\n", ":2:", "[log] access: 'maybe' is not a boolean");
}

static void test_string_too_long(void **state)
{
	char text[700];

	(void)state;
	snprintf(text, sizeof(text), "[server]\nrun_dir = /%0600d\n", 0);
	expect_error(text, ":2:", "[server] run_dir: value is 601 bytes");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("[server]\nworkers = 2\n[log]\n[server]\nworkers = 3\n",
	             ":5:", "[server] workers: set twice (first on line 2)");
	expect_error("[server.api]\nbacklog = 2\nbacklog = 2\n", ":3:", "[server.api] backlog");
}

static void test_missing_equals(void **state)
{
	(void)state;
	expect_error("[server]\nworkers 4\n", ":2:", "missing '=' after 'workers'");
	expect_error("[server]\n= 4\n", ":2:", "missing key");
}

static void test_unterminated_quote(void **state)
{
	(void)state;
	expect_error("[log]\nfile = \"/var/log/x\n",
	             ":2:", "[log] file: unterminated quoted value");
	expect_error("[log]\nfile = \"/var/log/x\\\"\n", ":2:", "unterminated");
	expect_error("[log]\nfile = \"a\" # note\n", ":2:", "[log] file: text after the closing");
	expect_error("[log]\nfile = \"a\\n\"\n", ":2:", "[log] file: unknown escape");
}

static void test_unterminated_section(void **state)
{
	(void)state;
	expect_error("[server]\nworkers = 1\n[log\n", ":3:", "unterminated section header");
	expect_error("[log] # x\n", ":1:", "unterminated section header");
}

static void test_key_outside_section(void **state)
{
	(void)state;
	expect_error("# top\nworkers = 4\n", ":2:", "key 'workers' outside any section");
}

static void test_long_line(void **state)
{
	char text[5000];

	(void)state;
	snprintf(text, sizeof(text), "[server]\n#%04200d\n", 0);
	expect_error(text, ":2:", "longer than 4096 bytes");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "[server]\nworkers = 4\0 junk\n";

	(void)state;
	assert_int_equal(
	    kiln_config_parse(&cfg, "t.conf", text, sizeof(text) - 1, "api", err, sizeof(err)), -1);
	assert_contains(err, "t.conf:2:");
	assert_contains(err, "NUL");
}

static void test_error_leaves_config_untouched(void **state)
{
	(void)state;
	assert_int_equal(parse("[server]\nworkers = 3\n", "api"), 0);
	assert_int_equal(parse("[server]\nworkers = 5\nbacklog = x\n", "api"), -1);
	assert_int_equal(cfg.server.workers, 3);
}

static void test_secret_value_not_in_message(void **state)
{
	char text[700];

	(void)state;
	snprintf(text, sizeof(text), "[database]\npassword = hunter2%0600d\n", 0);
	assert_int_equal(parse(text, "api"), -1);
	assert_contains(err, "[database] password:");
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(parse("[redis]\npassword hunter2\n", "api"), -1);
	assert_null(strstr(err, "hunter2"));
}

static const char overlay_after[] = "[server]\nworkers = 4\nbacklog = 10\n"
                                    "[server.health]\nworkers = 2\n"
                                    "[server.api]\nmax_body = 8M\n";
static const char overlay_before[] = "[server.api]\nmax_body = 8M\n"
                                     "[server.health]\nworkers = 2\n"
                                     "[server]\nworkers = 4\nbacklog = 10\n";

static void test_overlay_applies_to_its_app_only(void **state)
{
	const char *texts[] = {overlay_after, overlay_before};
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_int_equal(parse(texts[i], "health"), 0);
		assert_int_equal(cfg.server.workers, 2);
		assert_int_equal(cfg.server.backlog, 10);
		assert_int_equal(cfg.server.max_body, 1024 * 1024);
		assert_int_equal(parse(texts[i], "api"), 0);
		assert_int_equal(cfg.server.workers, 4);
		assert_int_equal(cfg.server.max_body, 8 * 1024 * 1024);
	}
}

static void test_overlay_of_other_app_is_validated(void **state)
{
	(void)state;
	expect_error("[server.health]\nworkers = 999\n", ":2:", "[server.health] workers:");
	expect_error("[server.health]\nurl = x\n", ":2:", "unknown key 'url' in [server.health]");
}

static void test_env_overrides_file(void **state)
{
	char path[256];

	(void)state;
	write_temp(path, sizeof(path), "/tmp", "[server]\nworkers = 4\n[log]\nlevel = warn\n");
	setenv("KILN_SERVER_WORKERS", "6", 1);
	setenv("KILN_DATABASE_URL", "postgresql://db/kiln", 1);
	assert_int_equal(kiln_config_load(&cfg, path, "api", err, sizeof(err)), 0);
	assert_int_equal(cfg.server.workers, 6);
	assert_string_equal(cfg.log.level, "warn");
	assert_string_equal(cfg.database.url, "postgresql://db/kiln");
	assert_string_equal(cfg.path, path);
	unsetenv("KILN_SERVER_WORKERS");
	unsetenv("KILN_DATABASE_URL");
	unlink(path);
}

static void test_bad_env_names_variable(void **state)
{
	(void)state;
	setenv("KILN_LOG_LEVEL", "loud", 1);
	assert_int_equal(kiln_config_load(&cfg, NULL, "api", err, sizeof(err)), -1);
	assert_contains(err, "KILN_LOG_LEVEL");
	assert_contains(err, "'loud' is not one of");
	unsetenv("KILN_LOG_LEVEL");
	assert_int_equal(kiln_config_load(&cfg, NULL, "api", err, sizeof(err)), 0);
}

static void test_missing_file_is_error(void **state)
{
	(void)state;
	assert_int_equal(kiln_config_load(&cfg, "/nonexistent/kiln.conf", "api", err, sizeof(err)),
	                 -1);
	assert_contains(err, "/nonexistent/kiln.conf");
}

static void test_password_file_in_credentials_directory(void **state)
{
	char dir[] = "/tmp/kiln-cred-XXXXXX", secret[256], conf[256], text[600];

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_temp(secret, sizeof(secret), dir, "s3cret\n\n");
	snprintf(text, sizeof(text), "[database]\npassword_file = %s\n", strrchr(secret, '/') + 1);
	write_temp(conf, sizeof(conf), "/tmp", text);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(kiln_config_load(&cfg, conf, "api", err, sizeof(err)), 0);
	assert_string_equal(cfg.database.password, "s3cret");
	unsetenv("CREDENTIALS_DIRECTORY");
	/* Without it, the name is relative to the config file's directory. */
	assert_int_equal(kiln_config_load(&cfg, conf, "api", err, sizeof(err)), -1);
	assert_contains(err, "[database] password_file: cannot read '/tmp/kiln-test-");
	unlink(conf);
	write_temp(conf, sizeof(conf), dir, text);
	assert_int_equal(kiln_config_load(&cfg, conf, "api", err, sizeof(err)), 0);
	assert_string_equal(cfg.database.password, "s3cret");
	unlink(secret);
	unlink(conf);
	rmdir(dir);
}

static void test_password_file_from_env(void **state)
{
	char secret[256];

	(void)state;
	write_temp(secret, sizeof(secret), "/tmp", "from-env");
	setenv("KILN_REDIS_PASSWORD_FILE", secret, 1);
	assert_int_equal(kiln_config_load(&cfg, NULL, "api", err, sizeof(err)), 0);
	assert_string_equal(cfg.redis.password, "from-env");
	setenv("KILN_REDIS_PASSWORD", "x", 1);
	assert_int_equal(kiln_config_load(&cfg, NULL, "api", err, sizeof(err)), -1);
	assert_contains(err, "KILN_REDIS_PASSWORD and KILN_REDIS_PASSWORD_FILE");
	unsetenv("KILN_REDIS_PASSWORD");
	unsetenv("KILN_REDIS_PASSWORD_FILE");
	unlink(secret);
}

static void test_password_and_password_file_is_error(void **state)
{
	(void)state;
	expect_error("[database]\npassword = x\npassword_file = pw\n",
	             ":3:", "[database] password_file: password is already set on line 2");
	expect_error("[redis]\npassword_file = pw\n\npassword = x\n", ":4:", "[redis] password:");
}

static void test_example_config_loads(void **state)
{
	struct kiln_config def;

	(void)state;
	err[0] = '\0';
	if (kiln_config_load(&cfg, "etc/kiln.conf.example", "api", err, sizeof(err)) < 0)
		fail_msg("%s", err);
	/* Every key in the reference is shown at its default. */
	kiln_config_defaults(&def);
	memcpy(def.path, cfg.path, sizeof(def.path));
	memcpy(def.app, cfg.app, sizeof(def.app));
	assert_memory_equal(&cfg, &def, sizeof(cfg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_empty_text_gives_defaults),
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_unknown_section),
	    cmocka_unit_test(test_bad_program_section),
	    cmocka_unit_test(test_bad_int),
	    cmocka_unit_test(test_int_out_of_range),
	    cmocka_unit_test(test_bad_duration),
	    cmocka_unit_test(test_bad_enum_and_bool),
	    cmocka_unit_test(test_string_too_long),
	    cmocka_unit_test(test_duplicate_key),
	    cmocka_unit_test(test_missing_equals),
	    cmocka_unit_test(test_unterminated_quote),
	    cmocka_unit_test(test_unterminated_section),
	    cmocka_unit_test(test_key_outside_section),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_error_leaves_config_untouched),
	    cmocka_unit_test(test_secret_value_not_in_message),
	    cmocka_unit_test(test_overlay_applies_to_its_app_only),
	    cmocka_unit_test(test_overlay_of_other_app_is_validated),
	    cmocka_unit_test(test_env_overrides_file),
	    cmocka_unit_test(test_bad_env_names_variable),
	    cmocka_unit_test(test_missing_file_is_error),
	    cmocka_unit_test(test_password_file_in_credentials_directory),
	    cmocka_unit_test(test_password_file_from_env),
	    cmocka_unit_test(test_password_and_password_file_is_error),
	    cmocka_unit_test(test_example_config_loads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
