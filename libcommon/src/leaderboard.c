/* leaderboard: the top users by points in a Redis sorted set, rebuilt from
 * PostgreSQL whenever it is missing (see kiln/leaderboard.h).
 *
 * Order: most points first; equal points, lower user id first. PostgreSQL
 * sorts so with ORDER BY points DESC, user_id. Redis sorts a set by score,
 * then by member bytes, ascending, and trims by that order too, so the set
 * stores what makes Redis's order ours:
 *
 *	member = the user id as 19 zero-padded digits (byte order = numeric order)
 *	score  = minus the points (ascending score = most points first)
 *
 * and the sentinel, score +inf, sorts last. Reading ranks 0..n-1 (ZRANGE),
 * trimming ranks size..-2 (ZREMRANGEBYRANK: everything past the top `size`
 * users but the sentinel) and the SQL LIMIT then agree on every tie.
 *
 * A user with 0 points is not on the board: the rebuild leaves them out
 * (HAVING sum > 0) and update_user removes them (ZREM), so an update leaves
 * the set as a rebuild would.
 *
 * Two updates of one user racing, or an update racing a rebuild (whose
 * RENAME drops it), may leave a stale score until that user's next update
 * or the next periodic rebuild: the set is a cache of PostgreSQL. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/redis.h"
#include "kiln/util.h"

#define LB_TMP_KEY    KILN_LEADERBOARD_KEY ":tmp:%ld"
#define LB_LOCK_KEY   KILN_LEADERBOARD_KEY ":lock"
#define LB_LOCK_MS    "10000"
#define LB_MEMBER_FMT "%019" PRId64
#define LB_MEMBER_LEN 19
#define LB_SIZE_MAX   1000000
/* Users per EVALSHA while filling: 1 key + 15 (score, member) pairs fit
 * KILN_REDIS_EVAL_MAX_ARGS. */
#define LB_BATCH 15
/* A rebuild that dies half-way leaves its temporary key this long. */
#define LB_TMP_TTL_MS "60000"
/* lb_top_redis: the set does not exist. */
#define LB_MISSING (-2)

enum { LB_POINTS, LB_TOP };

static const struct lb_stmt {
	const char *name;
	const char *sql;
} lb_stmts[] = {
    [LB_POINTS] = {"leaderboard_points",
                   "SELECT coalesce(sum(e.points), 0) FROM user_progress p"
                   " JOIN exercises e ON e.id = p.exercise_id"
                   " WHERE p.user_id = $1::bigint AND p.completed_at IS NOT NULL"},
    [LB_TOP] = {"leaderboard_top", "SELECT p.user_id, sum(e.points) AS points FROM user_progress p"
                                   " JOIN exercises e ON e.id = p.exercise_id"
                                   " WHERE p.completed_at IS NOT NULL"
                                   " GROUP BY p.user_id HAVING sum(e.points) > 0"
                                   " ORDER BY points DESC, p.user_id LIMIT $1::bigint"},
};

/* KEYS[1] the board; ARGV member, score ("" = remove), first rank to trim.
 * One script, so the set cannot vanish between the check and the write (a
 * ZADD on a missing key would make a board without its sentinel). */
static struct kiln_redis_script lb_update_script = {
    .source = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
              "if ARGV[2] == '' then\n"
              "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
              "else\n"
              "  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
              "  redis.call('ZREMRANGEBYRANK', KEYS[1], ARGV[3], -2)\n"
              "end\n"
              "return 1\n"};

/* KEYS[1] the temporary key; ARGV (score, member) pairs. */
static struct kiln_redis_script lb_fill_script = {
    .source = "redis.call('ZADD', KEYS[1], unpack(ARGV))\n"
              "redis.call('PEXPIRE', KEYS[1], " LB_TMP_TTL_MS ")\n"
              "return 1\n"};

/* KEYS[1] the temporary key, KEYS[2] the board. RENAME carries the
 * temporary key's expiry over, which the board must not keep. */
static struct kiln_redis_script lb_publish_script = {.source =
                                                         "redis.call('RENAME', KEYS[1], KEYS[2])\n"
                                                         "redis.call('PERSIST', KEYS[2])\n"
                                                         "return 1\n"};

/* Delete the lock only while it is ours: it may have expired and been
 * taken by another process. */
static struct kiln_redis_script lb_unlock_script = {
    .source = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
              "  return redis.call('DEL', KEYS[1])\n"
              "end\n"
              "return 0\n"};

static void lb_err(char *err, size_t errlen, const char *op, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "leaderboard: %s: %s", op, msg);
}

static int lb_size_ok(int64_t size, char *err, size_t errlen)
{
	if (size >= 1 && size <= LB_SIZE_MAX)
		return 1;
	lb_err(err, errlen, "size", "must be 1..1000000");
	return 0;
}

/* Run statement st with one parameter. Returns the result (PQclear it),
 * or NULL with err set. */
static PGresult *lb_query(struct kiln_db *db, int st, int64_t param, char *err, size_t errlen)
{
	char text[24], dberr[256] = "";
	const char *const values[] = {text};
	PGresult *res;

	snprintf(text, sizeof(text), "%" PRId64, param);
	res = kiln_db_query(db, lb_stmts[st].name, lb_stmts[st].sql, 1, values, 0, NULL, dberr,
	                    sizeof(dberr));
	if (res == NULL)
		lb_err(err, errlen, lb_stmts[st].name, dberr);
	return res;
}

/* Row i of an LB_TOP result. Returns 0, or -1 with err set. */
static int lb_row(PGresult *res, int i, struct kiln_leaderboard_entry *e, char *err, size_t errlen)
{
	if (kiln_parse_int(PQgetvalue(res, i, 0), 1, INT64_MAX, &e->user_id) == 0 &&
	    kiln_parse_int(PQgetvalue(res, i, 1), 1, INT64_MAX, &e->points) == 0)
		return 0;
	lb_err(err, errlen, lb_stmts[LB_TOP].name, "unexpected value");
	return -1;
}

/* Run script s; an error reply is a failure. Returns 0, or -1 with err set. */
static int lb_eval(struct kiln_redis *r, struct kiln_redis_script *s, int nkeys, int argc,
                   const char **argv, const char *op, char *err, size_t errlen)
{
	char rerr[256] = "";
	redisReply *reply = kiln_redis_eval(r, s, nkeys, argc, argv, rerr, sizeof(rerr));
	int rc = -1;

	if (reply == NULL)
		lb_err(err, errlen, op, rerr);
	else if (reply->type == REDIS_REPLY_ERROR)
		lb_err(err, errlen, op, reply->str);
	else
		rc = 0;
	freeReplyObject(reply);
	return rc;
}

int kiln_leaderboard_update_user(struct kiln_db *db, struct kiln_redis *r, int64_t user_id,
                                 int64_t size, char *err, size_t errlen)
{
	char member[24], score[24], trim[24];
	const char *argv[] = {KILN_LEADERBOARD_KEY, member, score, trim};
	int64_t points;
	PGresult *res;
	int ok;

	if (!lb_size_ok(size, err, errlen))
		return -1;
	if (user_id < 1) {
		lb_err(err, errlen, "update", "bad user id");
		return -1;
	}
	res = lb_query(db, LB_POINTS, user_id, err, errlen);
	if (res == NULL)
		return -1;
	ok = PQntuples(res) == 1 &&
	     kiln_parse_int(PQgetvalue(res, 0, 0), 0, INT64_MAX, &points) == 0;
	PQclear(res);
	if (!ok) {
		lb_err(err, errlen, lb_stmts[LB_POINTS].name, "unexpected value");
		return -1;
	}
	snprintf(member, sizeof(member), LB_MEMBER_FMT, user_id);
	if (points > 0)
		snprintf(score, sizeof(score), "-%" PRId64, points);
	else
		score[0] = '\0';
	snprintf(trim, sizeof(trim), "%" PRId64, size);
	return lb_eval(r, &lb_update_script, 1, 4, argv, "update", err, errlen);
}

/* ZADD the users of res (an LB_TOP result) into key, LB_BATCH per round
 * trip, the sentinel with the first batch. Returns 0, or -1 with err set. */
static int lb_fill(struct kiln_redis *r, const char *key, PGresult *res, char *err, size_t errlen)
{
	char scores[LB_BATCH][24], members[LB_BATCH][24];
	const char *argv[1 + 2 * LB_BATCH] = {key, "+inf", KILN_LEADERBOARD_SENTINEL};
	struct kiln_leaderboard_entry e;
	int rows = PQntuples(res), i = 0, k, argc = 3;

	do {
		for (k = 0; i < rows && argc < (int)KILN_ARRAY_LEN(argv); i++, k++) {
			if (lb_row(res, i, &e, err, errlen) < 0)
				return -1;
			snprintf(scores[k], sizeof(scores[k]), "-%" PRId64, e.points);
			snprintf(members[k], sizeof(members[k]), LB_MEMBER_FMT, e.user_id);
			argv[argc++] = scores[k];
			argv[argc++] = members[k];
		}
		if (lb_eval(r, &lb_fill_script, 1, argc, argv, "rebuild", err, errlen) < 0)
			return -1;
		argc = 1;
	} while (i < rows);
	return 0;
}

int kiln_leaderboard_rebuild(struct kiln_db *db, struct kiln_redis *r, int64_t size, char *err,
                             size_t errlen)
{
	char tmp[64], rerr[256] = "";
	const char *keys[] = {tmp, KILN_LEADERBOARD_KEY};
	redisReply *reply;
	PGresult *res;
	int n;

	if (!lb_size_ok(size, err, errlen))
		return -1;
	res = lb_query(db, LB_TOP, size, err, errlen);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	/* Per process, so concurrent rebuilds never write into one key; a
	 * leftover of a rebuild that died is cleared first. */
	snprintf(tmp, sizeof(tmp), LB_TMP_KEY, (long)getpid());
	reply = kiln_redis_command(r, rerr, sizeof(rerr), "DEL %s", tmp);
	if (reply == NULL)
		lb_err(err, errlen, "rebuild", rerr);
	freeReplyObject(reply);
	if (reply == NULL || lb_fill(r, tmp, res, err, errlen) < 0 ||
	    lb_eval(r, &lb_publish_script, 2, 2, keys, "rebuild", err, errlen) < 0)
		n = -1;
	PQclear(res);
	return n;
}

/* The top n users straight from PostgreSQL into out. Returns how many, or
 * -1 with err set. */
static int lb_top_sql(struct kiln_db *db, int n, struct kiln_leaderboard_entry *out, char *err,
                      size_t errlen)
{
	PGresult *res = lb_query(db, LB_TOP, n, err, errlen);
	int i, rows;

	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	for (i = 0; i < rows && i < n; i++)
		if (lb_row(res, i, &out[i], err, errlen) < 0) {
			PQclear(res);
			return -1;
		}
	PQclear(res);
	return i;
}

/* Read the top n from the set into out. Returns how many, LB_MISSING when
 * there is no set, or -1 when Redis failed or answered something else than
 * a board (the caller then asks PostgreSQL). */
static int lb_top_redis(struct kiln_redis *r, struct kiln_leaderboard_entry *out, int n)
{
	char err[256];
	redisReply *reply, *m, *s;
	int64_t score;
	size_t i;
	int got = 0;

	reply = kiln_redis_command(r, err, sizeof(err), "ZRANGE %s 0 %d WITHSCORES",
	                           KILN_LEADERBOARD_KEY, n - 1);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
		freeReplyObject(reply);
		return -1;
	}
	if (reply->elements == 0)
		got = LB_MISSING;
	for (i = 0; i < reply->elements && got >= 0; i += 2) {
		m = reply->element[i];
		s = reply->element[i + 1];
		if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING)
			got = -1;
		else if (strcmp(m->str, KILN_LEADERBOARD_SENTINEL) == 0)
			continue;
		else if (got >= n || m->len != LB_MEMBER_LEN ||
		         kiln_parse_int(m->str, 1, INT64_MAX, &out[got].user_id) < 0 ||
		         kiln_parse_int(s->str, -INT64_MAX, -1, &score) < 0)
			got = -1;
		else
			out[got++].points = -score;
	}
	freeReplyObject(reply);
	return got;
}

/* Take the rebuild lock. Returns 1 when this process holds it (token
 * filled), 0 when another does or Redis failed. */
static int lb_lock(struct kiln_redis *r, char *token, size_t len)
{
	char err[256];
	redisReply *reply;
	int ok;

	snprintf(token, len, "%ld:%" PRId64, (long)getpid(), kiln_now_ns());
	reply = kiln_redis_command(r, err, sizeof(err), "SET %s %s NX PX " LB_LOCK_MS, LB_LOCK_KEY,
	                           token);
	ok = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0;
	freeReplyObject(reply);
	return ok;
}

int kiln_leaderboard_top(struct kiln_db *db, struct kiln_redis *r, int64_t size,
                         struct kiln_leaderboard_entry *out, int n, char *err, size_t errlen)
{
	const char *argv[2];
	char token[64], lberr[256];
	int got;

	if (!lb_size_ok(size, err, errlen))
		return -1;
	if (n < 0 || (n > 0 && out == NULL)) {
		lb_err(err, errlen, "top", "bad n");
		return -1;
	}
	if (n == 0)
		return 0;
	if (n > size)
		n = (int)size;
	got = lb_top_redis(r, out, n);
	if (got >= 0)
		return got;
	if (got == LB_MISSING && lb_lock(r, token, sizeof(token))) {
		got = kiln_leaderboard_rebuild(db, r, size, lberr, sizeof(lberr));
		argv[0] = LB_LOCK_KEY;
		argv[1] = token;
		lb_eval(r, &lb_unlock_script, 1, 2, argv, "unlock", lberr, sizeof(lberr));
		if (got >= 0 && (got = lb_top_redis(r, out, n)) >= 0)
			return got;
	}
	return lb_top_sql(db, n, out, err, errlen);
}
