/* test_deps: db, redis and mc against real PostgreSQL, Redis and memcached
 * servers that this test starts in a temporary directory, stops and
 * restarts (servers.h: how they are run, and why as direct children that
 * die with the test). A server that cannot be started fails the test: these
 * modules are only proven against the real thing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/db.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "servers.h"

#define PG_PASSWORD    "s3cret-never-in-errors"
#define REDIS_PASSWORD "redis-test-pw"

static int group_teardown(void **state)
{
	(void)state;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	int64_t t0 = kiln_now_ms();

	(void)state;
	SRV.redis_password = REDIS_PASSWORD;
	if (srv_init("test_deps") < 0 || srv_start(SRV_PG) < 0 || srv_start(SRV_REDIS) < 0 ||
	    srv_start(SRV_MC) < 0 || srv_start(SRV_MC_TCP) < 0) {
		group_teardown(NULL);
		return -1;
	}
	fprintf(stderr, "test_deps: servers up in %lld ms\n", (long long)(kiln_now_ms() - t0));
	return 0;
}

/* ---- PostgreSQL ---- */

static struct kiln_db *new_db(void)
{
	struct kiln_cfg_database cfg;
	struct kiln_db *db;

	memset(&cfg, 0, sizeof(cfg));
	kiln_strlcpy(cfg.url, SRV.pg_conninfo, sizeof(cfg.url));
	kiln_strlcpy(cfg.password, PG_PASSWORD, sizeof(cfg.password));
	cfg.connect_timeout_ms = 2000;
	cfg.statement_timeout_ms = 5000;
	db = kiln_db_new(&cfg);
	assert_non_null(db);
	return db;
}

/* Run sql and return the first value as a new string (the test frees it). */
static char *db_value(struct kiln_db *db, const char *sql, int n, const char *const *v)
{
	char err[256] = "";
	PGresult *res = kiln_db_exec(db, sql, n, v, 0, err, sizeof(err));
	char *out;

	if (res == NULL)
		fail_msg("%s: %s", sql, err);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

static void assert_db_value(struct kiln_db *db, const char *sql, int n, const char *const *v,
                            const char *want)
{
	char *got = db_value(db, sql, n, v);

	assert_string_equal(got, want);
	free(got);
}

static void test_db_exec_with_parameters(void **state)
{
	const char *const v[] = {"2", "40", "it's \"quoted\"; DROP TABLE x"};
	struct kiln_db *db = new_db();
	char err[256] = "";
	PGresult *res;

	(void)state;
	assert_db_value(db, "SELECT $1::int + $2::int", 2, v, "42");
	assert_db_value(db, "SELECT $1::text", 1, v + 2, v[2]);
	assert_db_value(db, "SELECT current_setting('application_name')", 0, NULL, "kiln");
	assert_db_value(db, "SHOW statement_timeout", 0, NULL, "5s");
	/* An SQL error is a result, and the connection stays. */
	res = kiln_db_exec(db, "SELECT 1/0", 0, NULL, 0, err, sizeof(err));
	assert_non_null(res);
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22012");
	PQclear(res);
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	assert_int_equal(kiln_db_connects(db), 1);
	assert_non_null(kiln_db_conn(db, err, sizeof(err)));
	assert_int_equal(kiln_db_ping(db, 1000, err, sizeof(err)), 0);
	kiln_db_free(db);
}

/* kiln_db_query: success is a result; a statement PostgreSQL refuses and a
 * server that cannot be reached are both NULL, told apart by *failed, with a
 * one-line reason carrying the SQLSTATE. */
static void test_db_query_tells_refused_from_unavailable(void **state)
{
	const char *const v[] = {"41"};
	struct kiln_db *db = new_db(), *nowhere;
	struct kiln_cfg_database cfg = {0};
	char err[256] = "";
	PGresult *res;
	int failed = 0;

	(void)state;
	res = kiln_db_query(db, "q_ok", "SELECT $1::int + 1", 1, v, 0, &failed, err, sizeof(err));
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "42");
	PQclear(res);
	res = kiln_db_query(db, NULL, "SELECT 1/0", 0, NULL, 0, &failed, err, sizeof(err));
	assert_null(res);
	assert_int_equal(failed, KILN_DB_REFUSED);
	assert_non_null(strstr(err, "division by zero"));
	assert_non_null(strstr(err, "(SQLSTATE 22012)"));
	assert_null(strchr(err, '\n'));
	/* a unique violation is told apart, so callers can answer 409 */
	res = kiln_db_query(db, NULL, "CREATE TEMP TABLE dup (x int PRIMARY KEY)", 0, NULL, 0,
	                    &failed, err, sizeof(err));
	assert_non_null(res);
	PQclear(res);
	res = kiln_db_query(db, NULL, "INSERT INTO dup VALUES (1), (1)", 0, NULL, 0, &failed, err,
	                    sizeof(err));
	assert_null(res);
	assert_int_equal(failed, KILN_DB_CONFLICT);
	assert_non_null(strstr(err, "(SQLSTATE 23505)"));
	/* the connection survives a refused statement */
	res = kiln_db_query(db, NULL, "SELECT 1", 0, NULL, 0, NULL, err, sizeof(err));
	assert_non_null(res);
	PQclear(res);
	kiln_db_free(db);
	snprintf(cfg.url, sizeof(cfg.url), "host=%s/nowhere dbname=kiln", SRV.dir);
	cfg.connect_timeout_ms = 200;
	nowhere = kiln_db_new(&cfg);
	failed = 0;
	assert_null(
	    kiln_db_query(nowhere, NULL, "SELECT 1", 0, NULL, 0, &failed, err, sizeof(err)));
	assert_int_equal(failed, KILN_DB_UNAVAILABLE);
	kiln_db_free(nowhere);
}

static void test_db_prepares_once_per_connection(void **state)
{
	static const char *const sql = "SELECT $1::int * 2";
	static const char *const count_sql =
	    "SELECT count(*) FROM pg_prepared_statements WHERE name = 'kiln_test_double'";
	const char *const v1[] = {"21"}, *const v2[] = {"50"};
	struct kiln_db *db = new_db();
	char err[256] = "";
	PGresult *res;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		res = kiln_db_exec_prepared(db, "kiln_test_double", sql, 1, i ? v2 : v1, 0, err,
		                            sizeof(err));
		assert_non_null(res);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(res, 0, 0), i ? "100" : "42");
		PQclear(res);
	}
	assert_db_value(db, count_sql, 0, NULL, "1");
	/* A statement that fails to prepare returns the error every time
	 * (it was not remembered as prepared). */
	for (i = 0; i < 2; i++) {
		res = kiln_db_exec_prepared(db, "kiln_test_bad", "SELEC nope", 0, NULL, 0, err,
		                            sizeof(err));
		assert_non_null(res);
		assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42601");
		PQclear(res);
	}
	assert_int_equal(kiln_db_connects(db), 1);
	kiln_db_free(db);
}

static void test_db_timeout_cancels_and_connection_survives(void **state)
{
	struct kiln_db *db = new_db();
	char err[256] = "";
	int64_t t0;
	PGresult *res;

	(void)state;
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	t0 = kiln_now_ms();
	res = kiln_db_exec(db, "SELECT pg_sleep(2)", 0, NULL, 200, err, sizeof(err));
	assert_null(res);
	assert_true(kiln_now_ms() - t0 < 500);
	assert_non_null(strstr(err, "timed out"));
	/* Cancelled, not merely abandoned: the backend is idle again. */
	assert_db_value(db,
	                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
	                "AND query LIKE 'SELECT pg_sleep%'",
	                0, NULL, "0");
	assert_int_equal(kiln_db_connects(db), 1);
	kiln_db_free(db);
}

static void test_db_backs_off_while_down_and_recovers(void **state)
{
	struct kiln_db *db = new_db();
	char err[256] = "";
	int64_t t0, waited;
	PGresult *res = NULL;

	(void)state;
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	srv_stop(SRV_PG, SIGINT); /* fast shutdown: sessions are terminated */
	t0 = kiln_now_ms();
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_true(kiln_now_ms() - t0 < 200);
	assert_null(strstr(err, PG_PASSWORD));
	/* Within the backoff: no I/O, no wait, and the error says so. */
	t0 = kiln_now_ms();
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_true(kiln_now_ms() - t0 < 5);
	assert_non_null(strstr(err, "next attempt in"));
	assert_null(kiln_db_conn(db, err, sizeof(err)));
	assert_int_equal(kiln_db_ping(db, 300, err, sizeof(err)), -1);
	assert_null(strstr(err, PG_PASSWORD));
	assert_int_equal(srv_start(SRV_PG), 0);
	t0 = kiln_now_ms();
	while (res == NULL && kiln_now_ms() - t0 < 5000) {
		res = kiln_db_exec(db, "SELECT 7", 0, NULL, 0, err, sizeof(err));
		if (res == NULL)
			srv_msleep(10);
	}
	waited = kiln_now_ms() - t0;
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "7");
	PQclear(res);
	assert_true(waited <= 2100); /* at most one full backoff (2 s cap) */
	assert_int_equal(kiln_db_connects(db), 2);
	kiln_db_free(db);
}

/* ---- Redis ---- */

static struct kiln_redis *new_redis(const char *address, const char *password)
{
	struct kiln_cfg_redis cfg;
	struct kiln_redis *r;

	memset(&cfg, 0, sizeof(cfg));
	kiln_strlcpy(cfg.address, address, sizeof(cfg.address));
	kiln_strlcpy(cfg.password, password, sizeof(cfg.password));
	cfg.db = 1;
	cfg.connect_timeout_ms = 500;
	cfg.command_timeout_ms = 300;
	r = kiln_redis_new(&cfg);
	assert_non_null(r);
	return r;
}

static void assert_redis_str(struct kiln_redis *r, const char *want, const char *fmt,
                             const char *arg)
{
	char err[256] = "";
	redisReply *reply = kiln_redis_command(r, err, sizeof(err), fmt, arg);

	if (reply == NULL)
		fail_msg("%s: %s", fmt, err);
	if (want == NULL)
		assert_int_equal(reply->type, REDIS_REPLY_NIL);
	else
		assert_string_equal(reply->str, want);
	freeReplyObject(reply);
}

static void test_redis_commands_auth_and_select(void **state)
{
	struct kiln_redis *r = new_redis(SRV.redis_sock, REDIS_PASSWORD), *r0;
	char err[256] = "", tcp[64];
	redisReply *reply;

	(void)state;
	assert_int_equal(kiln_redis_ping(r, 500, err, sizeof(err)), 0);
	assert_redis_str(r, "OK", "SET kiln:test %s", "v a l");
	assert_redis_str(r, "v a l", "GET %s", "kiln:test");
	/* SELECT 1 happened: database 0 does not have the key. */
	r0 = new_redis(SRV.redis_sock, REDIS_PASSWORD);
	assert_redis_str(r0, "OK", "SELECT %s", "0");
	assert_redis_str(r0, NULL, "GET %s", "kiln:test");
	kiln_redis_free(r0);
	/* Error replies come back as replies. */
	reply = kiln_redis_command(r, err, sizeof(err), "INCR %s", "kiln:test");
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_ERROR);
	freeReplyObject(reply);
	assert_redis_str(r, "PONG", "PING", NULL);
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", SRV.redis_port);
	r0 = new_redis(tcp, REDIS_PASSWORD);
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), 0);
	kiln_redis_free(r0);
	r0 = new_redis(SRV.redis_sock, "wrong-password");
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "AUTH"));
	assert_null(strstr(err, "wrong-password"));
	kiln_redis_free(r0);
	r0 = new_redis("no-port-here", "");
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad address"));
	kiln_redis_free(r0);
	kiln_redis_free(r);
}

static void test_redis_command_timeout_drops_connection(void **state)
{
	struct kiln_redis *r = new_redis(SRV.redis_sock, REDIS_PASSWORD);
	char err[256] = "";
	int64_t t0;

	(void)state;
	assert_redis_str(r, "PONG", "PING", NULL);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "BLPOP kiln:empty 2"));
	assert_true(kiln_now_ms() - t0 >= 250 && kiln_now_ms() - t0 < 600);
	srv_msleep(60); /* first backoff step is 50 ms */
	assert_redis_str(r, "PONG", "PING", NULL);
	kiln_redis_free(r);
}

static void test_redis_backs_off_while_down_and_recovers(void **state)
{
	struct kiln_redis *r = new_redis(SRV.redis_sock, REDIS_PASSWORD);
	redisReply *reply = NULL;
	char err[256] = "";
	int64_t t0;

	(void)state;
	assert_redis_str(r, "PONG", "PING", NULL);
	srv_stop(SRV_REDIS, SIGKILL);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "PING"));
	assert_true(kiln_now_ms() - t0 < 200);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "PING"));
	assert_true(kiln_now_ms() - t0 < 5);
	assert_non_null(strstr(err, "next attempt in"));
	assert_int_equal(kiln_redis_ping(r, 300, err, sizeof(err)), -1);
	assert_int_equal(srv_start(SRV_REDIS), 0);
	t0 = kiln_now_ms();
	while (reply == NULL && kiln_now_ms() - t0 < 5000) {
		reply = kiln_redis_command(r, err, sizeof(err), "PING");
		if (reply == NULL)
			srv_msleep(10);
	}
	assert_non_null(reply);
	assert_string_equal(reply->str, "PONG");
	freeReplyObject(reply);
	assert_true(kiln_now_ms() - t0 <= 2100);
	kiln_redis_free(r);
}

/* ---- memcached ---- */

static struct kiln_mc *new_mc(const char *servers)
{
	struct kiln_cfg_memcached cfg;

	memset(&cfg, 0, sizeof(cfg));
	kiln_strlcpy(cfg.servers, servers, sizeof(cfg.servers));
	cfg.connect_timeout_ms = 200;
	cfg.command_timeout_ms = 200;
	return kiln_mc_new(&cfg);
}

static void assert_mc_hit(struct kiln_mc *mc, const char *key, const void *want, size_t wlen)
{
	char *v = NULL;
	size_t vlen = 0;

	assert_int_equal(kiln_mc_get(mc, key, strlen(key), &v, &vlen), 0);
	assert_int_equal(vlen, wlen);
	assert_memory_equal(v, want, wlen);
	assert_int_equal(v[vlen], '\0');
	free(v);
}

static void test_mc_set_get_miss_delete(void **state)
{
	static const char bin[] = {'a', 0, 'b', '\r', '\n', 'c'};
	struct kiln_mc *mc = new_mc(SRV.mc_sock);
	char *v = NULL, long_key[300], err[256] = "";
	size_t vlen;

	(void)state;
	assert_non_null(mc);
	assert_int_equal(kiln_mc_ping(mc, 500, err, sizeof(err)), 0);
	assert_int_equal(kiln_mc_set(mc, "k1", 2, bin, sizeof(bin), 60), 0);
	assert_mc_hit(mc, "k1", bin, sizeof(bin));
	assert_int_equal(kiln_mc_set(mc, "empty", 5, "", 0, 60), 0);
	assert_mc_hit(mc, "empty", "", 0);
	/* Beyond 30 days memcached wants an absolute time; still a hit. */
	assert_int_equal(kiln_mc_set(mc, "long-ttl", 8, "x", 1, 40 * 86400), 0);
	assert_mc_hit(mc, "long-ttl", "x", 1);
	assert_int_equal(kiln_mc_get(mc, "nope", 4, &v, &vlen), 1);
	assert_null(v);
	assert_int_equal(kiln_mc_delete(mc, "k1", 2), 0);
	assert_int_equal(kiln_mc_get(mc, "k1", 2, &v, &vlen), 1);
	assert_int_equal(kiln_mc_delete(mc, "k1", 2), 0); /* absent is fine */
	/* Bad keys fail without I/O. */
	memset(long_key, 'k', sizeof(long_key));
	assert_int_equal(kiln_mc_set(mc, long_key, 250, "x", 1, 60), 0);
	assert_int_equal(kiln_mc_set(mc, long_key, 251, "x", 1, 60), -1);
	assert_int_equal(kiln_mc_get(mc, "a b", 3, &v, &vlen), -1);
	assert_int_equal(kiln_mc_get(mc, "a\nb", 3, &v, &vlen), -1);
	assert_int_equal(kiln_mc_delete(mc, "", 0), -1);
	kiln_mc_free(mc);
}

static void test_mc_server_lists(void **state)
{
	static const char *const bad[] = {
	    "",     " ",     "host",   "host:",    "host:0",    "host:70000",
	    "[::1", "[::1]", "[::1]:", "a:1,,b:2", "::1:11211", "h:1x"};
	char list[512], key[32], val[32];
	struct kiln_mc *mc;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++)
		if ((mc = new_mc(bad[i])) != NULL)
			fail_msg("accepted bad server list '%s'", bad[i]);
	mc = new_mc("[::1]:11211, 127.0.0.1:11211 ,/run/x.sock");
	assert_non_null(mc);
	kiln_mc_free(mc);
	snprintf(list, sizeof(list), "%s,127.0.0.1:%d", SRV.mc_sock, SRV.mc_port);
	mc = new_mc(list);
	assert_non_null(mc);
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "spread:%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		assert_int_equal(kiln_mc_set(mc, key, strlen(key), val, strlen(val), 60), 0);
	}
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "spread:%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		assert_mc_hit(mc, key, val, strlen(val));
	}
	kiln_mc_free(mc);
}

static void test_mc_fails_fast_while_down_and_recovers(void **state)
{
	struct kiln_mc *mc = new_mc(SRV.mc_sock), *both;
	char err[512] = "", list[256], *v = NULL, tcp[32];
	int64_t t0;
	size_t vlen;
	int i, rc = -1;

	(void)state;
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", SRV.mc_port);
	snprintf(list, sizeof(list), "%s,%s", tcp, SRV.mc_sock);
	both = new_mc(list);
	assert_non_null(mc);
	assert_non_null(both);
	assert_int_equal(kiln_mc_set(mc, "k", 1, "v", 1, 60), 0);
	assert_int_equal(kiln_mc_ping(both, 500, err, sizeof(err)), 0);
	srv_stop(SRV_MC, SIGKILL);
	t0 = kiln_now_ms();
	assert_int_equal(kiln_mc_get(mc, "k", 1, &v, &vlen), -1);
	assert_int_equal(kiln_mc_set(mc, "k", 1, "v", 1, 60), -1);
	for (i = 0; i < 20; i++) /* no stall per request on a dead server */
		assert_int_equal(kiln_mc_get(mc, "k", 1, &v, &vlen), -1);
	assert_true(kiln_now_ms() - t0 < 300);
	assert_int_equal(kiln_mc_ping(mc, 300, err, sizeof(err)), -1);
	assert_non_null(strstr(err, SRV.mc_sock));
	assert_int_equal(kiln_mc_ping(both, 300, err, sizeof(err)), -1);
	assert_non_null(strstr(err, SRV.mc_sock));
	assert_null(strstr(err, tcp)); /* the live server is not blamed */
	assert_int_equal(srv_start(SRV_MC), 0);
	t0 = kiln_now_ms();
	while (rc != 0 && kiln_now_ms() - t0 < 5000) {
		rc = kiln_mc_set(mc, "k", 1, "back", 4, 60);
		if (rc != 0)
			srv_msleep(20);
	}
	assert_int_equal(rc, 0);
	assert_true(kiln_now_ms() - t0 <= 2500); /* retry_timeout 1 s = within ~2 s */
	assert_mc_hit(mc, "k", "back", 4);
	kiln_mc_free(mc);
	kiln_mc_free(both);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_db_exec_with_parameters),
	    cmocka_unit_test(test_db_query_tells_refused_from_unavailable),
	    cmocka_unit_test(test_db_prepares_once_per_connection),
	    cmocka_unit_test(test_db_timeout_cancels_and_connection_survives),
	    cmocka_unit_test(test_db_backs_off_while_down_and_recovers),
	    cmocka_unit_test(test_redis_commands_auth_and_select),
	    cmocka_unit_test(test_redis_command_timeout_drops_connection),
	    cmocka_unit_test(test_redis_backs_off_while_down_and_recovers),
	    cmocka_unit_test(test_mc_set_get_miss_delete),
	    cmocka_unit_test(test_mc_server_lists),
	    cmocka_unit_test(test_mc_fails_fast_while_down_and_recovers),
	};
	int64_t t0 = kiln_now_ms();
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

	fprintf(stderr, "test_deps: %lld ms\n", (long long)(kiln_now_ms() - t0));
	return rc;
}
