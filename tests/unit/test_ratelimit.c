/* test_ratelimit: GCRA limits in-process (r = NULL) and against a real
 * redis-server that this test starts in a temporary directory (servers.h),
 * stops (SIGSTOP, SIGKILL) and restarts. A Redis that cannot be started
 * fails the test: the script is only proven against the real thing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/ratelimit.h"
#include "kiln/redis.h"
#include "servers.h"

#define CONNECT_MS 500
#define COMMAND_MS 300

/* T = 100 ms, 3 at once. */
static const struct kiln_ratelimit rl_fast = {.rate = 10, .period_ms = 1000, .burst = 3};
/* T = 10 s: nothing refills while a test runs. */
static const struct kiln_ratelimit rl_slow = {.rate = 1, .period_ms = 10000, .burst = 2};

static struct kiln_redis *new_redis(void)
{
	struct kiln_cfg_redis cfg;
	struct kiln_redis *r;

	srv_redis_cfg(&cfg);
	cfg.connect_timeout_ms = CONNECT_MS;
	cfg.command_timeout_ms = COMMAND_MS;
	r = kiln_redis_new(&cfg);
	assert_non_null(r);
	return r;
}

static int group_teardown(void **state)
{
	(void)state;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (srv_init("test_ratelimit") < 0 || srv_start(SRV_REDIS) < 0) {
		group_teardown(NULL);
		return -1;
	}
	return 0;
}

/* ---- helpers ---- */

static struct kiln_ratelimit_result take(struct kiln_redis *r, const struct kiln_ratelimit *rl,
                                         const char *key)
{
	struct kiln_ratelimit_result res;

	assert_int_equal(kiln_ratelimit_take(r, rl, key, &res), 0);
	return res;
}

static void assert_take(struct kiln_redis *r, const struct kiln_ratelimit *rl, const char *key,
                        int allowed, int fallback)
{
	struct kiln_ratelimit_result res = take(r, rl, key);

	assert_int_equal(res.allowed, allowed);
	assert_int_equal(res.fallback, fallback);
	if (allowed)
		assert_int_equal(res.retry_after_ms, 0);
	else
		assert_true(res.retry_after_ms >= 1);
}

/* Take rl's whole burst back to back (all allowed), then one more, which
 * is rejected. Returns its retry_after_ms. */
static int64_t drain(struct kiln_redis *r, const struct kiln_ratelimit *rl, const char *key,
                     int fallback)
{
	struct kiln_ratelimit_result res;
	int64_t i;

	for (i = 0; i < rl->burst; i++)
		assert_take(r, rl, key, 1, fallback);
	res = take(r, rl, key);
	assert_int_equal(res.allowed, 0);
	assert_int_equal(res.fallback, fallback);
	return res.retry_after_ms;
}

/* rl_fast's burst, a rejection saying "about T", then exactly one more
 * request once that wait has passed. */
static void check_burst_and_retry(struct kiln_redis *r, const char *key, int fallback)
{
	int64_t retry = drain(r, &rl_fast, key, fallback);
	struct kiln_ratelimit_result res;

	assert_in_range(retry, 50, 100);
	srv_msleep(retry);
	assert_take(r, &rl_fast, key, 1, fallback);
	res = take(r, &rl_fast, key);
	assert_int_equal(res.allowed, 0);
	assert_in_range(res.retry_after_ms, 50, 100);
}

/* ---- in-process ---- */

static void test_local_burst_reject_retry(void **state)
{
	(void)state;
	check_burst_and_retry(NULL, "local:burst", 1);
}

static void test_local_keys_are_independent(void **state)
{
	(void)state;
	drain(NULL, &rl_slow, "local:a", 1);
	drain(NULL, &rl_slow, "local:b", 1);
	assert_take(NULL, &rl_slow, "local:a", 0, 1);
	assert_take(NULL, &rl_slow, "local:c", 1, 1);
}

static void test_invalid_limits_and_keys(void **state)
{
	const struct kiln_ratelimit bad[] = {
	    {.rate = 0, .period_ms = 1000, .burst = 1},
	    {.rate = 1, .period_ms = 0, .burst = 1},
	    {.rate = 1, .period_ms = 1000, .burst = 0},
	    {.rate = -1, .period_ms = 1000, .burst = 1},
	    {.rate = 2000, .period_ms = 1, .burst = 1}, /* T = 0.5 us */
	    {.rate = 1, .period_ms = INT64_MAX, .burst = 1},
	    {.rate = 1, .period_ms = 1000, .burst = INT64_MAX},
	};
	struct kiln_ratelimit_result res;
	char key[202];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++)
		assert_int_equal(kiln_ratelimit_take(NULL, &bad[i], "k", &res), -1);
	assert_int_equal(kiln_ratelimit_take(NULL, NULL, "k", &res), -1);
	assert_int_equal(kiln_ratelimit_take(NULL, &rl_fast, NULL, &res), -1);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(kiln_ratelimit_take(NULL, &rl_fast, key, &res), -1);
	key[200] = '\0';
	assert_take(NULL, &rl_fast, key, 1, 1);
	/* T = 1 us is the finest interval. */
	assert_take(NULL, &(struct kiln_ratelimit){1000, 1, 1}, "local:fine", 1, 1);
}

/* 100k distinct keys through a 4096-slot table: no growth, and the hot key,
 * whose tat lies furthest ahead, is never the one evicted. */
static void test_local_table_bounded_under_key_flood(void **state)
{
	char key[64];
	int i;

	(void)state;
	drain(NULL, &rl_slow, "local:hot", 1);
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "local:flood:%d", i);
		assert_take(NULL, &rl_slow, key, 1, 1);
		if (i % 1000 == 0)
			assert_take(NULL, &rl_slow, "local:hot", 0, 1);
	}
	assert_take(NULL, &rl_slow, "local:hot", 0, 1);
	drain(NULL, &rl_slow, "local:after-flood", 1);
}

/* ---- Redis ---- */

static void test_redis_eval_falls_back_to_eval_on_noscript(void **state)
{
	struct kiln_redis_script s = {.source = "return {KEYS[1], ARGV[1]}"};
	struct kiln_redis_script bad = {.source = "return redis.error_reply('boom')"};
	const char *argv[] = {"k", "v"};
	struct kiln_redis *r = new_redis();
	char err[256] = "";
	redisReply *reply;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		/* First pass: unknown script; second: flushed after loading. */
		reply = kiln_redis_command(r, err, sizeof(err), "SCRIPT FLUSH");
		assert_non_null(reply);
		freeReplyObject(reply);
		reply = kiln_redis_eval(r, &s, 1, 2, argv, err, sizeof(err));
		assert_non_null(reply);
		assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
		assert_int_equal(reply->elements, 2);
		assert_string_equal(reply->element[0]->str, "k");
		assert_string_equal(reply->element[1]->str, "v");
		freeReplyObject(reply);
	}
	/* The local SHA1 is the one Redis computes. */
	reply = kiln_redis_command(r, err, sizeof(err), "SCRIPT LOAD %s", s.source);
	assert_non_null(reply);
	assert_string_equal(reply->str, s.sha);
	freeReplyObject(reply);
	reply = kiln_redis_eval(r, &bad, 0, 0, NULL, err, sizeof(err));
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_ERROR);
	freeReplyObject(reply);
	assert_null(kiln_redis_eval(r, &s, 3, 2, argv, err, sizeof(err)));
	assert_non_null(strstr(err, "3 keys of 2"));
	kiln_redis_free(r);
}

static void test_redis_burst_reject_retry(void **state)
{
	struct kiln_redis *r = new_redis();

	(void)state;
	check_burst_and_retry(r, "redis:burst", 0);
	kiln_redis_free(r);
}

/* Two handles are two workers: one limit between them, stored under
 * kiln:rl: and expiring once it no longer matters. */
static void test_redis_workers_share_the_limit(void **state)
{
	struct kiln_redis *w1 = new_redis(), *w2 = new_redis();
	struct kiln_ratelimit rl = {.rate = 1, .period_ms = 10000, .burst = 4};
	char err[256] = "";
	redisReply *reply;

	(void)state;
	assert_take(w1, &rl, "redis:shared", 1, 0);
	assert_take(w2, &rl, "redis:shared", 1, 0);
	assert_take(w1, &rl, "redis:shared", 1, 0);
	assert_take(w2, &rl, "redis:shared", 1, 0);
	assert_take(w1, &rl, "redis:shared", 0, 0);
	assert_take(w2, &rl, "redis:shared", 0, 0);
	reply = kiln_redis_command(w1, err, sizeof(err), "PTTL %s", "kiln:rl:redis:shared");
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
	assert_in_range(reply->integer, 39000, 40000); /* 4 x T */
	freeReplyObject(reply);
	kiln_redis_free(w1);
	kiln_redis_free(w2);
}

static void assert_cmdstat(struct kiln_redis *r, const char *want)
{
	char err[256] = "";
	redisReply *reply = kiln_redis_command(r, err, sizeof(err), "INFO commandstats");

	assert_non_null(reply);
	if (strstr(reply->str, want) == NULL)
		fail_msg("no '%s' in:\n%s", want, reply->str);
	freeReplyObject(reply);
}

static void test_redis_script_flush_still_limits(void **state)
{
	struct kiln_redis *r = new_redis();
	char err[256] = "";
	redisReply *reply;

	(void)state;
	assert_take(r, &rl_slow, "redis:flush", 1, 0);
	reply = kiln_redis_command(r, err, sizeof(err), "SCRIPT FLUSH");
	assert_non_null(reply);
	freeReplyObject(reply);
	reply = kiln_redis_command(r, err, sizeof(err), "CONFIG RESETSTAT");
	assert_non_null(reply);
	freeReplyObject(reply);
	assert_take(r, &rl_slow, "redis:flush", 1, 0);
	assert_take(r, &rl_slow, "redis:flush", 0, 0);
	/* EVALSHA, NOSCRIPT, EVAL once, then EVALSHA again. */
	assert_cmdstat(r, "cmdstat_evalsha:calls=2,");
	assert_cmdstat(r, "cmdstat_eval:calls=1,");
	kiln_redis_free(r);
}

/* A script error is Redis failing, not the request. */
static void test_redis_error_reply_falls_back(void **state)
{
	struct kiln_redis *r = new_redis();
	char err[256] = "";
	redisReply *reply;

	(void)state;
	reply = kiln_redis_command(r, err, sizeof(err), "HSET %s f v", "kiln:rl:redis:wrongtype");
	assert_non_null(reply);
	freeReplyObject(reply);
	drain(r, &rl_slow, "redis:wrongtype", 1);
	assert_take(r, &rl_slow, "redis:ok", 1, 0);
	kiln_redis_free(r);
}

/* Returns how long one take took, in ms. */
static int64_t timed_take(struct kiln_redis *r, const char *key, int allowed, int fallback)
{
	int64_t t0 = kiln_now_ms();

	assert_take(r, &rl_slow, key, allowed, fallback);
	return kiln_now_ms() - t0;
}

static void test_redis_down_falls_back_then_recovers(void **state)
{
	struct kiln_redis *r = new_redis();
	struct kiln_ratelimit_result res = {0};
	int64_t t0, took;

	(void)state;
	assert_take(r, &rl_slow, "redis:down", 1, 0);
	/* Hung: the command times out. */
	kill(SRV.pid[SRV_REDIS], SIGSTOP);
	took = timed_take(r, "redis:down", 1, 1);
	assert_in_range(took, COMMAND_MS - 50, 2 * COMMAND_MS - 1);
	/* Gone: refused at once, or not even tried during the backoff. The
	 * in-process table still holds the limit: its burst is 2. */
	srv_stop(SRV_REDIS, SIGKILL);
	assert_in_range(timed_take(r, "redis:down", 1, 1), 0, 2 * COMMAND_MS - 1);
	srv_msleep(120);
	assert_in_range(timed_take(r, "redis:down", 0, 1), 0, 2 * COMMAND_MS - 1);
	assert_in_range(timed_take(r, "redis:other", 1, 1), 0, 2 * COMMAND_MS - 1);
	assert_int_equal(srv_start(SRV_REDIS), 0);
	t0 = kiln_now_ms();
	while (kiln_now_ms() - t0 < 5000) {
		res = take(r, &rl_slow, "redis:back");
		if (!res.fallback)
			break;
		srv_msleep(10);
	}
	assert_int_equal(res.fallback, 0);
	assert_true(kiln_now_ms() - t0 <= 2500);
	kiln_redis_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_local_burst_reject_retry),
	    cmocka_unit_test(test_local_keys_are_independent),
	    cmocka_unit_test(test_invalid_limits_and_keys),
	    cmocka_unit_test(test_local_table_bounded_under_key_flood),
	    cmocka_unit_test(test_redis_eval_falls_back_to_eval_on_noscript),
	    cmocka_unit_test(test_redis_burst_reject_retry),
	    cmocka_unit_test(test_redis_workers_share_the_limit),
	    cmocka_unit_test(test_redis_script_flush_still_limits),
	    cmocka_unit_test(test_redis_error_reply_falls_back),
	    cmocka_unit_test(test_redis_down_falls_back_then_recovers),
	};
	int64_t t0 = kiln_now_ms();
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

	fprintf(stderr, "test_ratelimit: %lld ms\n", (long long)(kiln_now_ms() - t0));
	return rc;
}
