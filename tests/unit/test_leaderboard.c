/* test_leaderboard: the Redis leaderboard against a real PostgreSQL (with
 * sql/001_users.sql and sql/003_api.sql applied) and a real Redis, both
 * started by this test in a temporary directory (see servers.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/redis.h"
#include "servers.h"

#define LOCK_KEY KILN_LEADERBOARD_KEY ":lock"
#define MAX_TOP  16

static struct {
	struct kiln_db *db;
	struct kiln_redis *r;
} T;

struct want {
	int64_t user_id, points;
};

/* A database handle that can never connect: PostgreSQL "down". */
static struct kiln_db *db_nowhere(void)
{
	struct kiln_cfg_database cfg;
	struct kiln_db *db;

	srv_db_cfg(&cfg);
	snprintf(cfg.url, sizeof(cfg.url), "host=%s/nowhere dbname=postgres user=kiln", SRV.dir);
	cfg.connect_timeout_ms = 200;
	db = kiln_db_new(&cfg);
	assert_non_null(db);
	return db;
}

static void sql(const char *text, int64_t a, int64_t b)
{
	char sa[24], sb[24], err[256] = "";
	const char *const v[] = {sa, sb};
	int n = strstr(text, "$2") ? 2 : strstr(text, "$1") ? 1 : 0;
	PGresult *res;

	snprintf(sa, sizeof(sa), "%lld", (long long)a);
	snprintf(sb, sizeof(sb), "%lld", (long long)b);
	res = kiln_db_query(T.db, NULL, text, n, v, 0, NULL, err, sizeof(err));
	if (res == NULL)
		fail_msg("%s: %s", text, err);
	PQclear(res);
}

/* Run a Redis command with one or two string arguments; the reply as
 * "type:value" text for assertions ("int:1", "str:x", "nil"). */
static const char *redis(const char *fmt, const char *a, const char *b)
{
	static char out[256];
	char err[256] = "";
	redisReply *reply = kiln_redis_command(T.r, err, sizeof(err), fmt, a, b);

	if (reply == NULL)
		fail_msg("%s: %s", fmt, err);
	if (reply->type == REDIS_REPLY_INTEGER)
		snprintf(out, sizeof(out), "int:%lld", reply->integer);
	else if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS)
		snprintf(out, sizeof(out), "str:%s", reply->str);
	else if (reply->type == REDIS_REPLY_NIL)
		snprintf(out, sizeof(out), "nil");
	else
		snprintf(out, sizeof(out), "type:%d", reply->type);
	freeReplyObject(reply);
	return out;
}

static void complete(int64_t user, int64_t exercise)
{
	sql("INSERT INTO user_progress (user_id, exercise_id, best_score, attempts, completed_at)"
	    " VALUES ($1::bigint, $2::bigint, 1, 1, now())",
	    user, exercise);
}

/* Exercise points by id: 1 → 10, 2 → 20, 3 → 5, 4 → 0. */
static const int exercise_points[] = {10, 20, 5, 0};

static int reset(void **state)
{
	size_t i;

	(void)state;
	sql("TRUNCATE user_progress, submissions, notifications, refresh_tokens, sessions,"
	    " exercises, users RESTART IDENTITY",
	    0, 0);
	sql("INSERT INTO users (email, display_name, password_hash)"
	    " SELECT 'u' || g || '@example.com', 'User ' || g, 'x' FROM generate_series(1, "
	    "$1::int) g",
	    12, 0);
	for (i = 0; i < KILN_ARRAY_LEN(exercise_points); i++)
		sql("INSERT INTO exercises (slug, title, category, difficulty_level, points, body,"
		    " answer_kind, answer, created_by)"
		    " VALUES ('e' || $1::text, 'E', 'sql', 1, $2::int, '', 'exact', 'x', 1)",
		    (int64_t)i + 1, exercise_points[i]);
	redis("DEL %s %s", KILN_LEADERBOARD_KEY, LOCK_KEY);
	return 0;
}

/* The standard field:
 *	user 2: 10 + 20 = 30
 *	users 3, 9, 10: 20 each (3 also has an unfinished exercise; 9 and 10
 *	  would sort "10" < "9" as plain strings)
 *	user 5: 10 + 5 = 15
 *	user 1: 10
 *	user 11: only a 0-point exercise: not on the board
 *	user 12: only an unfinished exercise: not on the board */
static const struct want field[] = {{2, 30}, {3, 20}, {9, 20}, {10, 20}, {5, 15}, {1, 10}};

static void seed_field(void)
{
	complete(2, 1);
	complete(2, 2);
	complete(3, 2);
	sql("INSERT INTO user_progress (user_id, exercise_id) VALUES (3, 3), (12, 3)", 0, 0);
	complete(9, 2);
	complete(10, 2);
	complete(5, 1);
	complete(5, 3);
	complete(1, 1);
	complete(11, 4);
}

static int top(struct kiln_db *db, int64_t size, struct kiln_leaderboard_entry *out, int n)
{
	char err[256] = "";
	int got = kiln_leaderboard_top(db, T.r, size, out, n, err, sizeof(err));

	if (got < 0)
		fail_msg("top: %s", err);
	return got;
}

static void assert_entries(const struct kiln_leaderboard_entry *got, int n, const struct want *w,
                           int wn)
{
	int i;

	if (n != wn)
		fail_msg("got %d entries, want %d", n, wn);
	for (i = 0; i < n; i++)
		if (got[i].user_id != w[i].user_id || got[i].points != w[i].points)
			fail_msg("entry %d: got user %lld with %lld, want user %lld with %lld", i,
			         (long long)got[i].user_id, (long long)got[i].points,
			         (long long)w[i].user_id, (long long)w[i].points);
}

static void assert_top(struct kiln_db *db, int64_t size, int n, const struct want *w, int wn)
{
	struct kiln_leaderboard_entry out[MAX_TOP];

	memset(out, 0, sizeof(out));
	assert_true(n <= MAX_TOP);
	assert_entries(out, top(db, size, out, n), w, wn);
}

static int rebuild(int64_t size)
{
	char err[256] = "";
	int n = kiln_leaderboard_rebuild(T.db, T.r, size, err, sizeof(err));

	if (n < 0)
		fail_msg("rebuild: %s", err);
	return n;
}

static void update(int64_t user, int64_t size)
{
	char err[256] = "";

	if (kiln_leaderboard_update_user(T.db, T.r, user, size, err, sizeof(err)) != 0)
		fail_msg("update %lld: %s", (long long)user, err);
}

static int group_teardown(void **state)
{
	(void)state;
	kiln_db_free(T.db);
	kiln_redis_free(T.r);
	T.db = NULL;
	T.r = NULL;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	struct kiln_cfg_database cfg;

	(void)state;
	if (srv_init("test_leaderboard") < 0 || srv_start(SRV_PG) < 0 ||
	    srv_pg_apply("sql/001_users.sql") < 0 || srv_pg_apply("sql/003_api.sql") < 0 ||
	    srv_start(SRV_REDIS) < 0) {
		group_teardown(NULL);
		return -1;
	}
	srv_db_cfg(&cfg);
	T.db = kiln_db_new(&cfg);
	T.r = srv_redis_new();
	return T.db && T.r ? 0 : -1;
}

/* After a test that stops Redis, even a failed one: Redis back, and a
 * fresh handle (no backoff left over). */
static int restart_redis(void **state)
{
	(void)state;
	if (SRV.pid[SRV_REDIS] > 0)
		return 0;
	kiln_redis_free(T.r);
	T.r = NULL;
	if (srv_start(SRV_REDIS) < 0)
		return -1;
	T.r = srv_redis_new();
	return 0;
}

/* ---- tests ---- */

static void test_rebuild_ranks_by_points_then_lower_id(void **state)
{
	static const struct want top4[] = {{2, 30}, {3, 20}, {9, 20}, {10, 20}};

	(void)state;
	seed_field();
	assert_int_equal(rebuild(100), 6);
	assert_top(T.db, 100, 10, field, 6);
	assert_top(T.db, 100, 3, field, 3);
	assert_top(T.db, 100, 1, field, 1);
	/* Six users and the sentinel, which sorts last. */
	assert_string_equal(redis("ZCARD %s", KILN_LEADERBOARD_KEY, NULL), "int:7");
	assert_string_equal(redis("ZSCORE %s %s", KILN_LEADERBOARD_KEY, KILN_LEADERBOARD_SENTINEL),
	                    "str:inf");
	assert_string_equal(redis("ZSCORE %s %s", KILN_LEADERBOARD_KEY, "0000000000000000002"),
	                    "str:-30");
	/* No temporary key is left behind, and the board does not expire. */
	assert_string_equal(redis("PTTL %s", KILN_LEADERBOARD_KEY, NULL), "int:-1");
	{
		char err[256] = "";
		redisReply *keys = kiln_redis_command(T.r, err, sizeof(err), "KEYS %s",
		                                      KILN_LEADERBOARD_KEY ":tmp:*");

		assert_non_null(keys);
		assert_int_equal(keys->elements, 0);
		freeReplyObject(keys);
	}
	/* A smaller board keeps the best, ties cut by the same order. */
	assert_int_equal(rebuild(4), 4);
	assert_top(T.db, 4, 10, top4, 4); /* n is capped at size */
	assert_string_equal(redis("ZCARD %s", KILN_LEADERBOARD_KEY, NULL), "int:5");
}

/* PostgreSQL's answer (Redis down) is the same list in the same order. */
static void test_redis_down_answers_from_postgresql(void **state)
{
	struct kiln_leaderboard_entry out[MAX_TOP];
	char err[256] = "";

	(void)state;
	seed_field();
	srv_stop(SRV_REDIS, SIGKILL);
	assert_top(T.db, 100, 10, field, 6);
	assert_top(T.db, 100, 2, field, 2);
	assert_int_equal(kiln_leaderboard_update_user(T.db, T.r, 2, 100, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "leaderboard"));
	assert_int_equal(kiln_leaderboard_rebuild(T.db, T.r, 100, err, sizeof(err)), -1);
	/* Both down: an error, not an empty board. */
	{
		struct kiln_db *nowhere = db_nowhere();

		err[0] = '\0';
		assert_int_equal(kiln_leaderboard_top(nowhere, T.r, 100, out, 5, err, sizeof(err)),
		                 -1);
		assert_true(err[0] != '\0');
		kiln_db_free(nowhere);
	}
	assert_int_equal(restart_redis(NULL), 0);
}

/* A built board is read from Redis: it answers with PostgreSQL unreachable. */
static void test_built_board_is_read_from_redis(void **state)
{
	struct kiln_db *nowhere = db_nowhere();
	struct kiln_leaderboard_entry out[MAX_TOP];
	char err[256] = "";

	(void)state;
	seed_field();
	assert_int_equal(rebuild(100), 6);
	assert_top(nowhere, 100, 10, field, 6);
	/* Missing board and no PostgreSQL: an error, and the lock is let go. */
	redis("DEL %s", KILN_LEADERBOARD_KEY, NULL);
	assert_int_equal(kiln_leaderboard_top(nowhere, T.r, 100, out, 5, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "leaderboard"));
	assert_string_equal(redis("EXISTS %s", LOCK_KEY, NULL), "int:0");
	assert_string_equal(redis("EXISTS %s", KILN_LEADERBOARD_KEY, NULL), "int:0");
	kiln_db_free(nowhere);
}

static void test_update_user_is_idempotent_and_trims(void **state)
{
	static const struct want after[] = {{5, 35}, {2, 30}, {3, 20}, {9, 20}};
	static const struct want dropped[] = {{5, 35}, {3, 20}, {9, 20}};
	int i;

	(void)state;
	seed_field();
	assert_int_equal(rebuild(4), 4);
	/* User 5 (15, off the board) completes a 20-point exercise: 35. */
	complete(5, 2);
	for (i = 0; i < 3; i++) {
		update(5, 4);
		assert_top(T.db, 4, 4, after, 4);
		/* Trimmed back to 4 users: user 10, last of the tied three. */
		assert_string_equal(redis("ZCARD %s", KILN_LEADERBOARD_KEY, NULL), "int:5");
		assert_string_equal(
		    redis("ZSCORE %s %s", KILN_LEADERBOARD_KEY, "0000000000000000010"), "nil");
	}
	/* A user below the cut-off is added and trimmed at once. */
	update(1, 4);
	assert_top(T.db, 4, 4, after, 4);
	/* A rebuild gives the same board. */
	assert_int_equal(rebuild(4), 4);
	assert_top(T.db, 4, 4, after, 4);
	/* Back to 0 points (progress undone): off the board. */
	sql("UPDATE user_progress SET completed_at = NULL WHERE user_id = $1::bigint", 2, 0);
	update(2, 4);
	update(2, 4);
	assert_top(T.db, 4, 4, dropped, 3);
	/* Missing board: nothing is written (the next read rebuilds it). */
	redis("DEL %s", KILN_LEADERBOARD_KEY, NULL);
	update(5, 4);
	assert_string_equal(redis("EXISTS %s", KILN_LEADERBOARD_KEY, NULL), "int:0");
}

static void test_missing_board_is_rebuilt_by_top(void **state)
{
	(void)state;
	seed_field();
	assert_string_equal(redis("EXISTS %s", KILN_LEADERBOARD_KEY, NULL), "int:0");
	assert_top(T.db, 100, 3, field, 3);
	/* Rebuilt whole (size users, not n), and the lock released. */
	assert_string_equal(redis("ZCARD %s", KILN_LEADERBOARD_KEY, NULL), "int:7");
	assert_string_equal(redis("EXISTS %s", LOCK_KEY, NULL), "int:0");
	assert_top(T.db, 100, 10, field, 6);
}

/* Another process is rebuilding: answer from PostgreSQL, leave its lock. */
static void test_locked_out_reads_postgresql(void **state)
{
	(void)state;
	seed_field();
	assert_string_equal(redis("SET %s %s PX 10000", LOCK_KEY, "other-process"), "str:OK");
	assert_top(T.db, 100, 10, field, 6);
	assert_string_equal(redis("EXISTS %s", KILN_LEADERBOARD_KEY, NULL), "int:0");
	assert_string_equal(redis("GET %s", LOCK_KEY, NULL), "str:other-process");
}

/* No completions at all: the board holds only the sentinel, and reading it
 * does not rebuild each time (a completion written behind the board's back
 * stays unseen until a rebuild). */
static void test_empty_board_is_not_rebuilt_every_time(void **state)
{
	static const struct want one[] = {{7, 20}};

	(void)state;
	assert_top(T.db, 100, 10, NULL, 0);
	assert_string_equal(redis("ZCARD %s", KILN_LEADERBOARD_KEY, NULL), "int:1");
	complete(7, 2);
	assert_top(T.db, 100, 10, NULL, 0);
	assert_top(T.db, 100, 10, NULL, 0);
	assert_int_equal(rebuild(100), 1);
	assert_top(T.db, 100, 10, one, 1);
}

static void test_bad_arguments(void **state)
{
	struct kiln_leaderboard_entry out[2];
	char err[256] = "";

	(void)state;
	assert_int_equal(kiln_leaderboard_top(T.db, T.r, 0, out, 2, err, sizeof(err)), -1);
	assert_int_equal(kiln_leaderboard_top(T.db, T.r, 10, out, -1, err, sizeof(err)), -1);
	assert_int_equal(kiln_leaderboard_top(T.db, T.r, 10, NULL, 2, err, sizeof(err)), -1);
	assert_int_equal(kiln_leaderboard_top(T.db, T.r, 10, out, 0, err, sizeof(err)), 0);
	assert_int_equal(kiln_leaderboard_update_user(T.db, T.r, 0, 10, err, sizeof(err)), -1);
	assert_int_equal(kiln_leaderboard_update_user(T.db, T.r, 1, 0, err, sizeof(err)), -1);
	assert_int_equal(kiln_leaderboard_rebuild(T.db, T.r, -1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "size"));
	/* Nothing was built by any of them. */
	assert_string_equal(redis("EXISTS %s", KILN_LEADERBOARD_KEY, NULL), "int:0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_rebuild_ranks_by_points_then_lower_id, reset),
	    cmocka_unit_test_setup_teardown(test_redis_down_answers_from_postgresql, reset,
	                                    restart_redis),
	    cmocka_unit_test_setup(test_built_board_is_read_from_redis, reset),
	    cmocka_unit_test_setup(test_update_user_is_idempotent_and_trims, reset),
	    cmocka_unit_test_setup(test_missing_board_is_rebuilt_by_top, reset),
	    cmocka_unit_test_setup(test_locked_out_reads_postgresql, reset),
	    cmocka_unit_test_setup(test_empty_board_is_not_rebuilt_every_time, reset),
	    cmocka_unit_test_setup(test_bad_arguments, reset),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
