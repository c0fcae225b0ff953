/* grade: the grade_submission job kind. kiln-api inserts a queued
 * submission and this job in one transaction; here the answer is graded
 * against its exercise's rule (libcommon answer) and, in one transaction
 * holding the submission's row lock, the submission gets its status, score
 * and feedback, the user's progress counts the attempt, and a notification
 * is written. Then, outside the transaction and best effort, the user's
 * leaderboard entry is recomputed and their cached progress invalidated;
 * a failure there is only logged (the leaderboard's periodic rebuild and
 * the cache's ttl repair it).
 *
 * Delivery is at least once, so running a job twice must change nothing:
 * a submission that is no longer queued is not graded again (its progress
 * and notification were written with its status), only the idempotent
 * side effects are repeated; a submission that is gone (archived, or its
 * user deleted) completes the job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/answer.h"
#include "kiln/cache.h"
#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "worker.h"

/* The submission, locked, with its exercise's rule. */
static const char sql_select[] = "SELECT s.user_id, s.status, s.feedback, s.answer,"
                                 " e.answer_kind, e.answer, e.tolerance, e.points"
                                 " FROM submissions s JOIN exercises e ON e.id = s.exercise_id"
                                 " WHERE s.id = $1 FOR UPDATE OF s";

/* queued → graded/failed with everything that goes with it, in one round
 * trip. $1 id, $2 status, $3 score (NULL when failed), $4 feedback, $5
 * correct. Progress counts graded attempts only; completed_at is the first
 * correct one. A notification per submission (UNIQUE submission_id). */
static const char sql_write[] =
    "WITH s AS (UPDATE submissions SET status = $2, score = $3::integer, feedback = $4,"
    "           graded_at = now()"
    "           WHERE id = $1 AND status = 'queued'"
    "           RETURNING id, user_id, exercise_id, score),"
    " p AS (INSERT INTO user_progress (user_id, exercise_id, best_score, attempts, completed_at)"
    "       SELECT user_id, exercise_id, score, 1, CASE WHEN $5::boolean THEN now() END"
    "       FROM s WHERE $2 = 'graded'"
    "       ON CONFLICT (user_id, exercise_id) DO UPDATE SET"
    "         attempts = user_progress.attempts + 1,"
    "         best_score = greatest(user_progress.best_score, EXCLUDED.best_score),"
    "         completed_at = coalesce(user_progress.completed_at, EXCLUDED.completed_at))"
    " INSERT INTO notifications (user_id, kind, payload, submission_id)"
    " SELECT user_id, 'submission_graded',"
    "        jsonb_build_object('submission_id', id, 'exercise_id', exercise_id,"
    "                           'score', score, 'correct', $5::boolean), id"
    " FROM s ON CONFLICT (submission_id) DO NOTHING";

/* What the transaction found and did, for the side effects after it. */
struct grade_outcome {
	int found;   /* the submission exists */
	int graded;  /* its status is graded (now or before) */
	int correct; /* ... with a correct answer */
	int64_t user_id;
};

/* ---------------------------------------------------------------- sql */

static int grade_exec(struct kiln_db *db, const char *sql, char *err, size_t errlen)
{
	PGresult *r = kiln_db_query(db, NULL, sql, 0, NULL, 0, NULL, err, errlen);

	PQclear(r);
	return r ? 0 : -1;
}

/* Grade the locked row r and write the outcome. Returns 0, or -1. */
static int grade_write(struct kiln_db *db, const char *id, PGresult *r, struct grade_outcome *o,
                       char *err, size_t errlen)
{
	char why[256], feedback[300], score[16];
	const char *v[5] = {id, NULL, NULL, feedback, NULL};
	const char *tol = PQgetvalue(r, 0, 6);
	PGresult *w;
	int g;

	why[0] = '\0';
	g = kiln_answer_grade(kiln_answer_kind_parse(PQgetvalue(r, 0, 4)), PQgetvalue(r, 0, 5),
	                      PQgetisnull(r, 0, 6) ? 0 : strtod(tol, NULL), PQgetvalue(r, 0, 3),
	                      (size_t)PQgetlength(r, 0, 3), why, sizeof(why));
	o->graded = g >= 0;
	o->correct = g == 1;
	v[1] = g >= 0 ? "graded" : "failed";
	v[4] = g == 1 ? "true" : "false";
	if (g >= 0) {
		snprintf(score, sizeof(score), "%d", g == 1 ? atoi(PQgetvalue(r, 0, 7)) : 0);
		v[2] = score;
		snprintf(feedback, sizeof(feedback), "%s", g == 1 ? "correct" : "incorrect");
	} else {
		snprintf(feedback, sizeof(feedback), "the exercise's answer rule %s", why);
	}
	w = kiln_db_query(db, "worker_grade_write", sql_write, 5, v, 0, NULL, err, errlen);
	PQclear(w);
	return w ? 0 : -1;
}

/* Inside the transaction: lock the submission and grade it if it is still
 * queued. Returns 0 (o says what was found), or -1. */
static int grade_locked(struct kiln_db *db, int64_t submission_id, struct grade_outcome *o,
                        char *err, size_t errlen)
{
	char id[24];
	const char *v[1] = {id};
	const char *status;
	PGresult *r;
	int rc = 0;

	snprintf(id, sizeof(id), "%lld", (long long)submission_id);
	r = kiln_db_query(db, "worker_grade_select", sql_select, 1, v, 0, NULL, err, errlen);
	if (r == NULL)
		return -1;
	o->found = PQntuples(r) == 1;
	if (o->found) {
		o->user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		status = PQgetvalue(r, 0, 1);
		if (strcmp(status, "queued") == 0) {
			rc = grade_write(db, id, r, o, err, errlen);
		} else {
			/* Graded by an earlier run of this job. */
			o->graded = strcmp(status, "graded") == 0;
			o->correct = o->graded && strcmp(PQgetvalue(r, 0, 2), "correct") == 0;
		}
	}
	PQclear(r);
	return rc;
}

/* ---------------------------------------------------------------- after */

/* The executor's cache handle, set up on first use. */
static struct kiln_cache *grade_cache(const struct kiln_config *cfg)
{
	static struct kiln_cache cache;
	static int ready;

	if (!ready) {
		kiln_cache_init(&cache, kiln_server_mc(), kiln_server_redis(),
		                cfg->api.cache_ttl_ms);
		ready = 1;
	}
	return &cache;
}

/* Best effort: a graded attempt changes the user's progress; a correct one
 * may change their points. */
static void grade_side_effects(struct job_run *run, const struct grade_outcome *o)
{
	const struct kiln_config *cfg = kiln_server_config();
	char err[512];

	if (!o->graded)
		return;
	if (o->correct &&
	    kiln_leaderboard_update_user(run->db, kiln_server_redis(), o->user_id,
	                                 cfg->api.leaderboard_size, err, sizeof(err)) < 0)
		kiln_warn("leaderboard update failed; the periodic rebuild will repair it",
		          "job_id=%lld error=%s", (long long)run->job->id, err);
	if (kiln_cache_invalidate(grade_cache(cfg), "progress", o->user_id) < 0)
		kiln_warn("progress cache invalidation failed; the entry expires after cache_ttl",
		          "job_id=%lld", (long long)run->job->id);
}

int grade_submission(struct job_run *run, char *err, size_t errlen)
{
	struct grade_outcome o = {0};
	char scratch[256];
	int64_t id;

	if (job_arg_int(run->job, "submission_id", 1, INT64_MAX, &id, err, errlen) < 0)
		return JOB_FAILED;
	if (grade_exec(run->db, "BEGIN", err, errlen) < 0)
		return JOB_FAILED;
	if (grade_locked(run->db, id, &o, err, errlen) < 0) {
		/* Best effort: a dropped connection has no transaction left. */
		grade_exec(run->db, "ROLLBACK", scratch, sizeof(scratch));
		return JOB_FAILED;
	}
	if (grade_exec(run->db, "COMMIT", err, errlen) < 0) {
		grade_exec(run->db, "ROLLBACK", scratch, sizeof(scratch));
		return JOB_FAILED;
	}
	if (o.found)
		grade_side_effects(run, &o);
	return JOB_OK;
}
