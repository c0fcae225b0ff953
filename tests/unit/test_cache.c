/* test_cache: the object cache (and kiln_mc_add under it) against a real
 * memcached and Redis that this test starts in a temporary directory (see
 * servers.h), stops and restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/cache.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "servers.h"

static struct {
	struct kiln_mc *mc;
	struct kiln_redis *r;
} T;

static void redis_ok(const char *fmt, const char *arg)
{
	char err[256] = "";
	redisReply *reply = kiln_redis_command(T.r, err, sizeof(err), fmt, KILN_CACHE_NS_KEY, arg);

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", fmt, reply ? reply->str : err);
	freeReplyObject(reply);
}

static int group_teardown(void **state)
{
	(void)state;
	kiln_mc_free(T.mc);
	kiln_redis_free(T.r);
	T.mc = NULL;
	T.r = NULL;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (srv_init("test_cache") < 0 || srv_start(SRV_MC) < 0 || srv_start(SRV_REDIS) < 0) {
		group_teardown(NULL);
		return -1;
	}
	T.mc = srv_mc_new();
	T.r = srv_redis_new();
	return 0;
}

/* After a test that stops a server, even a failed one: the server back,
 * and fresh handles (no backoff or server timeout left over). */
static int restart_servers(void **state)
{
	(void)state;
	if (SRV.pid[SRV_MC] <= 0) {
		kiln_mc_free(T.mc);
		T.mc = NULL;
		if (srv_start(SRV_MC) < 0)
			return -1;
		T.mc = srv_mc_new();
	}
	if (SRV.pid[SRV_REDIS] <= 0) {
		kiln_redis_free(T.r);
		T.r = NULL;
		if (srv_start(SRV_REDIS) < 0)
			return -1;
		T.r = srv_redis_new();
	}
	return 0;
}

/* Each test starts in namespace 0. */
static int reset(void **state)
{
	(void)state;
	redis_ok("DEL %s", NULL);
	return 0;
}

/* The cache handle a process would have: caching on for a minute. */
static struct kiln_cache cache_on(void)
{
	struct kiln_cache c;

	kiln_cache_init(&c, T.mc, T.r, 60000);
	return c;
}

/* Pretend the namespace was read more than a second ago. */
static void age_ns(struct kiln_cache *c)
{
	c->ns_read_ms -= 1001;
}

static void assert_hit(struct kiln_cache *c, const char *kind, int64_t id, const char *want)
{
	char *v = NULL;
	size_t len = 0;

	assert_int_equal(kiln_cache_get(c, kind, id, &v, &len), 0);
	assert_non_null(v);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
	assert_int_equal(v[len], '\0');
	free(v);
}

static void assert_miss(struct kiln_cache *c, const char *kind, int64_t id)
{
	char *v = (char *)"untouched";
	size_t len = 99;

	assert_int_equal(kiln_cache_get(c, kind, id, &v, &len), 1);
	assert_null(v);
	assert_int_equal(len, 0);
}

/* ---- kiln_mc_add ---- */

static void test_mc_add_stores_only_when_absent(void **state)
{
	char *v = NULL;
	size_t len;

	(void)state;
	assert_int_equal(kiln_mc_add(T.mc, "add:1", 5, "first", 5, 60), 0);
	assert_int_equal(kiln_mc_add(T.mc, "add:1", 5, "second", 6, 60), 1);
	assert_int_equal(kiln_mc_get(T.mc, "add:1", 5, &v, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(v, "first", 5);
	free(v);
	/* Present again after a delete: add works once more. */
	assert_int_equal(kiln_mc_delete(T.mc, "add:1", 5), 0);
	assert_int_equal(kiln_mc_add(T.mc, "add:1", 5, "third", 5, 60), 0);
	/* A ttl past 30 days is sent as an absolute time: still stored. */
	assert_int_equal(kiln_mc_add(T.mc, "add:long", 8, "x", 1, 40 * 86400), 0);
	assert_int_equal(kiln_mc_get(T.mc, "add:long", 8, &v, &len), 0);
	free(v);
	/* Bad keys fail without I/O. */
	assert_int_equal(kiln_mc_add(T.mc, "a b", 3, "x", 1, 60), -1);
	assert_int_equal(kiln_mc_add(T.mc, "", 0, "x", 1, 60), -1);
}

/* ---- keys and namespaces ---- */

static void test_key_format(void **state)
{
	struct kiln_cache c = cache_on();
	char key[KILN_CACHE_KEY_MAX], kind[120];

	(void)state;
	assert_int_equal(kiln_cache_key(&c, "exercise", 42, key),
	                 (int)strlen("kiln:0:exercise:42"));
	assert_string_equal(key, "kiln:0:exercise:42");
	assert_int_equal(kiln_cache_key(&c, "progress", INT64_MIN, key),
	                 (int)strlen("kiln:0:progress:-9223372036854775808"));
	/* Kinds that would make a bad or ambiguous memcached key. */
	assert_int_equal(kiln_cache_key(&c, "", 1, key), -1);
	assert_int_equal(kiln_cache_key(&c, "a b", 1, key), -1);
	assert_int_equal(kiln_cache_key(&c, "a\nb", 1, key), -1);
	assert_int_equal(kiln_cache_key(&c, "a:b", 1, key), -1);
	assert_int_equal(kiln_cache_key(&c, NULL, 1, key), -1);
	memset(kind, 'k', sizeof(kind) - 1);
	kind[sizeof(kind) - 1] = '\0';
	assert_int_equal(kiln_cache_key(&c, kind, 1, key), -1);
	/* The longest kind that fits with the longest namespace and id. */
	c.ns = INT64_MAX;
	c.redis = NULL;
	kind[KILN_CACHE_KEY_MAX - 1 -
	     (int)strlen("kiln:9223372036854775807::-9223372036854775808")] = '\0';
	assert_int_equal(kiln_cache_key(&c, kind, INT64_MIN, key), KILN_CACHE_KEY_MAX - 1);
	kind[strlen(kind) + 1] = '\0';
	kind[strlen(kind)] = 'k';
	assert_int_equal(kiln_cache_key(&c, kind, INT64_MIN, key), -1);
}

/* The namespace comes from Redis, is re-read at most once a second, and a
 * value that is not a namespace is ignored. */
static void test_namespace_read_once_a_second(void **state)
{
	struct kiln_cache c = cache_on();
	char key[KILN_CACHE_KEY_MAX];

	(void)state;
	redis_ok("SET %s %s", "41");
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:41:exercise:1");
	redis_ok("SET %s %s", "42");
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:41:exercise:1"); /* read less than a second ago */
	age_ns(&c);
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:42:exercise:1");
	redis_ok("SET %s %s", "not-a-number");
	age_ns(&c);
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:42:exercise:1");
	redis_ok("SET %s %s", "-5");
	age_ns(&c);
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:42:exercise:1");
	/* No Redis at all: namespace 0. */
	kiln_cache_init(&c, T.mc, NULL, 60000);
	kiln_cache_key(&c, "exercise", 1, key);
	assert_string_equal(key, "kiln:0:exercise:1");
}

/* ---- read-through ---- */

static void test_miss_fill_hit(void **state)
{
	struct kiln_cache c = cache_on();
	static const char obj[] = "{\"id\":1,\"title\":\"x\"}";

	(void)state;
	assert_miss(&c, "exercise", 1);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 1, obj, strlen(obj)), 0);
	assert_hit(&c, "exercise", 1, obj);
	/* Another kind or id is another object. */
	assert_miss(&c, "progress", 1);
	assert_miss(&c, "exercise", 2);
	/* Another process sees it too. */
	{
		struct kiln_cache other = cache_on();

		assert_hit(&other, "exercise", 1, obj);
	}
}

static void test_fill_does_not_overwrite(void **state)
{
	struct kiln_cache c = cache_on();

	(void)state;
	assert_int_equal(kiln_cache_fill(&c, "exercise", 10, "old", 3), 0);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 10, "new", 3), 1);
	assert_hit(&c, "exercise", 10, "old");
	/* An empty value would read as a tombstone: refused. */
	assert_int_equal(kiln_cache_fill(&c, "exercise", 11, "", 0), -1);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 11, NULL, 3), -1);
	assert_miss(&c, "exercise", 11);
}

/* The race the tombstone closes: a reader fetched the old row before the
 * writer committed; after the writer's invalidate, the reader's fill must
 * fail until the tombstone expires, and then work. */
static void test_invalidate_blocks_fill_until_tombstone_expires(void **state)
{
	struct kiln_cache c = cache_on();
	char key[KILN_CACHE_KEY_MAX], *v = NULL;
	size_t len = 99;
	int64_t t0, waited;
	int rc;

	(void)state;
	assert_int_equal(kiln_cache_fill(&c, "exercise", 20, "v1", 2), 0);
	t0 = kiln_now_ms();
	assert_int_equal(kiln_cache_invalidate(&c, "exercise", 20), 0);
	assert_miss(&c, "exercise", 20);
	/* The tombstone is the empty value, stored in memcached. */
	kiln_cache_key(&c, "exercise", 20, key);
	assert_int_equal(kiln_mc_get(T.mc, key, strlen(key), &v, &len), 0);
	assert_int_equal(len, 0);
	free(v);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 20, "stale v1", 8), 1);
	assert_miss(&c, "exercise", 20);
	/* Invalidating an object nobody cached also blocks fills. */
	assert_int_equal(kiln_cache_invalidate(&c, "exercise", 21), 0);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 21, "stale", 5), 1);
	assert_true(kiln_now_ms() - t0 < 500);
	/* memcached's clock ticks in whole seconds, so the tombstone lives
	 * between TOMBSTONE_S - 1 and TOMBSTONE_S seconds: poll for the fill. */
	while ((rc = kiln_cache_fill(&c, "exercise", 20, "v2", 2)) == 1 &&
	       kiln_now_ms() - t0 < (KILN_CACHE_TOMBSTONE_S + 1) * 1000 + 500)
		srv_msleep(50);
	waited = kiln_now_ms() - t0;
	assert_int_equal(rc, 0);
	assert_true(waited >= (KILN_CACHE_TOMBSTONE_S - 1) * 1000);
	assert_hit(&c, "exercise", 20, "v2");
}

static void test_flush_orphans_everything(void **state)
{
	struct kiln_cache c = cache_on(), other = cache_on();
	char key[KILN_CACHE_KEY_MAX];

	(void)state;
	assert_int_equal(kiln_cache_fill(&c, "exercise", 30, "before", 6), 0);
	assert_int_equal(kiln_cache_fill(&c, "progress", 30, "before", 6), 0);
	assert_hit(&other, "exercise", 30, "before");
	assert_int_equal(kiln_cache_flush(&c), 1);
	assert_int_equal(c.ns, 1);
	assert_miss(&c, "exercise", 30);
	assert_miss(&c, "progress", 30);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 30, "after", 5), 0);
	assert_hit(&c, "exercise", 30, "after");
	/* Another process catches up once its namespace is a second old. */
	assert_hit(&other, "exercise", 30, "before");
	age_ns(&other);
	assert_hit(&other, "exercise", 30, "after");
	kiln_cache_key(&other, "exercise", 30, key);
	assert_string_equal(key, "kiln:1:exercise:30");
	assert_int_equal(kiln_cache_flush(&other), 2);
	assert_miss(&other, "exercise", 30);
}

static void test_caching_off_always_misses(void **state)
{
	struct kiln_cache c;
	char key[KILN_CACHE_KEY_MAX], *v = NULL;
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		if (i == 0)
			kiln_cache_init(&c, T.mc, T.r, 0); /* ttl 0 */
		else
			kiln_cache_init(&c, NULL, T.r, 60000); /* no memcached */
		assert_miss(&c, "exercise", 40);
		assert_int_equal(kiln_cache_fill(&c, "exercise", 40, "obj", 3), 1);
		assert_miss(&c, "exercise", 40);
		assert_int_equal(kiln_cache_invalidate(&c, "exercise", 40), 0);
	}
	/* Nothing reached memcached: a cache that is on still misses. */
	c = cache_on();
	kiln_cache_key(&c, "exercise", 40, key);
	assert_int_equal(kiln_mc_get(T.mc, key, strlen(key), &v, &len), 1);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 40, "obj", 3), 0);
	/* An object cached while on is not served once caching is off. */
	kiln_cache_init(&c, T.mc, T.r, 0);
	assert_miss(&c, "exercise", 40);
	/* A ttl under a second still caches (rounded up). */
	kiln_cache_init(&c, T.mc, T.r, 1);
	assert_int_equal(c.ttl_s, 1);
	kiln_cache_init(&c, T.mc, T.r, -5);
	assert_int_equal(c.ttl_s, 0);
}

static void test_memcached_down_is_a_miss(void **state)
{
	struct kiln_mc *mc = srv_mc_new();
	struct kiln_cache c;
	char *v = NULL;
	size_t len = 0;
	int64_t t0;
	int i;

	(void)state;
	kiln_cache_init(&c, mc, T.r, 60000);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 50, "obj", 3), 0);
	srv_stop(SRV_MC, SIGKILL);
	t0 = kiln_now_ms();
	for (i = 0; i < 10; i++) {
		assert_int_equal(kiln_cache_get(&c, "exercise", 50, &v, &len), -1);
		assert_null(v);
		assert_int_equal(len, 0);
		assert_int_equal(kiln_cache_fill(&c, "exercise", 50, "obj", 3), -1);
		assert_int_equal(kiln_cache_invalidate(&c, "exercise", 50), -1);
	}
	assert_true(kiln_now_ms() - t0 < 500); /* fails fast, no stall per call */
	assert_int_equal(kiln_mc_add(mc, "k", 1, "v", 1, 60), -1);
	kiln_mc_free(mc);
	/* A fresh handle works at once against the restarted server (its
	 * contents are gone). */
	assert_int_equal(restart_servers(NULL), 0);
	c = cache_on();
	assert_miss(&c, "exercise", 50);
	assert_int_equal(kiln_cache_fill(&c, "exercise", 50, "obj", 3), 0);
}

static void test_redis_down_keeps_namespace(void **state)
{
	struct kiln_cache c = cache_on();
	char key[KILN_CACHE_KEY_MAX];

	(void)state;
	redis_ok("SET %s %s", "7");
	assert_int_equal(kiln_cache_fill(&c, "exercise", 60, "obj", 3), 0);
	kiln_cache_key(&c, "exercise", 60, key);
	assert_string_equal(key, "kiln:7:exercise:60");
	srv_stop(SRV_REDIS, SIGKILL);
	age_ns(&c);
	kiln_cache_key(&c, "exercise", 60, key);
	assert_string_equal(key, "kiln:7:exercise:60");
	assert_hit(&c, "exercise", 60, "obj");
	assert_int_equal(kiln_cache_flush(&c), -1);
	assert_int_equal(c.ns, 7);
	/* A process that never reached Redis uses namespace 0. */
	{
		struct kiln_cache fresh = cache_on();

		kiln_cache_key(&fresh, "exercise", 60, key);
		assert_string_equal(key, "kiln:0:exercise:60");
	}
	/* The restarted Redis lost the key: missing reads as namespace 0. */
	assert_int_equal(restart_servers(NULL), 0);
	kiln_cache_init(&c, T.mc, T.r, 60000);
	kiln_cache_key(&c, "exercise", 60, key);
	assert_string_equal(key, "kiln:0:exercise:60");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_mc_add_stores_only_when_absent, reset),
	    cmocka_unit_test_setup(test_key_format, reset),
	    cmocka_unit_test_setup(test_namespace_read_once_a_second, reset),
	    cmocka_unit_test_setup(test_miss_fill_hit, reset),
	    cmocka_unit_test_setup(test_fill_does_not_overwrite, reset),
	    cmocka_unit_test_setup(test_invalidate_blocks_fill_until_tombstone_expires, reset),
	    cmocka_unit_test_setup(test_flush_orphans_everything, reset),
	    cmocka_unit_test_setup(test_caching_off_always_misses, reset),
	    cmocka_unit_test_setup_teardown(test_memcached_down_is_a_miss, reset, restart_servers),
	    cmocka_unit_test_setup_teardown(test_redis_down_keeps_namespace, reset,
	                                    restart_servers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
