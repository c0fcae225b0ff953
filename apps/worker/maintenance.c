/* maintenance: work that must run on one executor of the whole fleet, not
 * on each: rescuing jobs whose executor died, and periodic tasks. Every
 * executor tries to take or renew a lease in job_leader about three times
 * per lease_ttl; the holder does the work. A lease can be lost (a long job
 * delays the renewal), so two leaders may briefly overlap: rescue is safe
 * to run twice, and each periodic run is claimed by inserting its
 * (cron_key, run_at) row into cron_runs, which only one insert can do.
 *
 * Rescue runs every rescue_after / 2. The periodic tasks run once per slot
 * of their [worker] *_interval (run_at = the slot's start, epoch-aligned,
 * so every host computes the same slots): pruning finished jobs and expired
 * tokens (prune_interval), archiving old submissions (archive_interval),
 * ANALYZE of the tables that grow fastest (analyze_interval), and the
 * leaderboard rebuild from PostgreSQL (leaderboard_interval). A task that
 * fails gives its slot back, so the next check (within a minute) retries.
 * Deleting and moving rows goes in batches of TASK_BATCH rows, one
 * statement (and transaction) each, so no lock is held for long and a
 * stop between batches loses nothing. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "worker.h"

#define LEASE_NAME      "maintenance"
#define CRON_CHECK_MS   (60 * 1000) /* the leader looks for due tasks at least this often */
#define TASK_TIMEOUT_MS (60 * 1000) /* per statement */
#define TASK_BATCH      1000        /* rows per batch statement */
#define STR_(x)         #x
#define STR(x)          STR_(x)

struct maintenance {
	const struct kiln_config *cfg;
	struct kiln_db *db;
	int leader;
	int64_t lease_until_ms; /* monotonic: trust our lease until then */
	int64_t next_lease_ms;
	int64_t next_rescue_ms;
	int64_t next_cron_ms;
};

static const char sql_lease[] =
    "INSERT INTO job_leader (name, holder, expires_at)"
    " VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
    " WHERE job_leader.expires_at < now() OR job_leader.holder = EXCLUDED.holder"
    " RETURNING holder";
static const char sql_unlease[] = "DELETE FROM job_leader WHERE name = $1 AND holder = $2";

/* Periodic runs: one row per (cron_key, slot start); only its inserter
 * runs it. $2 is the interval in ms. */
static const char sql_cron_claim[] =
    "INSERT INTO cron_runs (cron_key, run_at)"
    " VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) * 1000 / $2::bigint)"
    "                          * $2::bigint / 1000))"
    " ON CONFLICT DO NOTHING RETURNING run_at";
static const char sql_cron_unclaim[] =
    "DELETE FROM cron_runs WHERE cron_key = $1 AND run_at = $2::timestamptz";
/* Finished jobs past their retention ($1 completed, $2 discarded and
 * cancelled, in ms; the least() bound lets the partial index do the work). */
static const char sql_prune[] =
    "WITH d AS (DELETE FROM jobs WHERE id IN ("
    "  SELECT id FROM jobs"
    "  WHERE state IN ('completed', 'discarded', 'cancelled')"
    "    AND finalized_at < now() - least($1::bigint, $2::bigint) * interval '1 millisecond'"
    "    AND finalized_at < now() - CASE WHEN state = 'completed' THEN $1::bigint"
    "                               ELSE $2::bigint END * interval '1 millisecond'"
    "  LIMIT " STR(TASK_BATCH) " FOR UPDATE SKIP LOCKED) RETURNING 1)"
                               " SELECT count(*) FROM d";
static const char sql_prune_cron[] =
    "DELETE FROM cron_runs WHERE run_at < now() - interval '30 days'";
/* Refresh tokens past their expiry can prove nothing; sessions are kept a
 * week after they end (revoked or expired) for the record, then go with
 * their tokens (ON DELETE CASCADE). */
static const char sql_prune_tokens[] =
    "WITH t AS (DELETE FROM refresh_tokens WHERE expires_at < now() RETURNING 1),"
    " s AS (DELETE FROM sessions"
    "       WHERE coalesce(revoked_at, expires_at) < now() - interval '7 days' RETURNING 1)"
    " SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM s)";
/* Submissions older than archive_after ($1 ms) move to submissions_archive;
 * a grade job that finds its submission gone completes. */
static const char sql_archive[] =
    "WITH moved AS (DELETE FROM submissions WHERE id IN ("
    "  SELECT id FROM submissions"
    "  WHERE submitted_at < now() - $1::bigint * interval '1 millisecond'"
    "  LIMIT " STR(TASK_BATCH) " FOR UPDATE SKIP LOCKED) RETURNING *),"
                               " ins AS (INSERT INTO submissions_archive (id, user_id, "
                               "exercise_id, answer, status, score,"
                               "         feedback, idempotency_key, request_hash, request_id, "
                               "submitted_at, graded_at)"
                               "   SELECT id, user_id, exercise_id, answer, status, score, "
                               "feedback, idempotency_key,"
                               "          request_hash, request_id, submitted_at, graded_at FROM "
                               "moved RETURNING 1)"
                               " SELECT count(*) FROM ins";
/* Fresh statistics for the tables whose size changes fastest. */
static const char sql_analyze[] = "ANALYZE jobs, users, sessions, refresh_tokens, exercises,"
                                  " submissions, user_progress, notifications";

struct maintenance *maintenance_new(const struct kiln_config *cfg, struct kiln_db *db)
{
	struct maintenance *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->cfg = cfg;
	m->db = db;
	return m;
}

/* Take or renew the lease. */
static void maintenance_lease(struct maintenance *m, int64_t now)
{
	char ttl[24], err[512];
	const char *v[3] = {LEASE_NAME, worker_id(), ttl};
	PGresult *r;
	int was = m->leader;

	m->next_lease_ms = now + m->cfg->worker.lease_ttl_ms / 3;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)m->cfg->worker.lease_ttl_ms);
	r = kiln_db_query(m->db, "worker_lease", sql_lease, 3, v, 0, NULL, err, sizeof(err));
	if (r == NULL) {
		worker_count(C_DB_ERRORS, 1);
		m->leader = m->leader && now < m->lease_until_ms;
	} else {
		m->leader = PQntuples(r) == 1;
		/* Our clock starts before the server's did: the lease ends
		 * for us no later than for the others. */
		if (m->leader)
			m->lease_until_ms = now + m->cfg->worker.lease_ttl_ms;
		PQclear(r);
	}
	if (m->leader && !was) {
		worker_count(C_LEADER_ELECTED, 1);
		m->next_rescue_ms = m->next_cron_ms = now;
		kiln_info("maintenance leader", "holder=%s", worker_id());
	} else if (!m->leader && was) {
		kiln_info("maintenance lease lost", "holder=%s", worker_id());
	}
}

static void maintenance_rescue(struct maintenance *m, int64_t now)
{
	char err[512];
	int n;

	m->next_rescue_ms = now + m->cfg->worker.rescue_after_ms / 2;
	n = kiln_jobs_rescue(m->db, m->cfg->worker.rescue_after_ms, err, sizeof(err));
	if (n < 0) {
		worker_count(C_DB_ERRORS, 1);
		kiln_warn("rescue failed", "error=%s", err);
	} else if (n > 0) {
		worker_count(C_JOBS_RESCUED, (uint64_t)n);
		kiln_warn("rescued jobs whose executor stopped heartbeating", "jobs=%d", n);
	}
}

/* ---------------------------------------------------------------- tasks */

/* One statement of a task. Returns the result, or NULL with err set. */
static PGresult *task_query(struct maintenance *m, const char *name, const char *sql, int n,
                            const char *const *v, char *err, size_t errlen)
{
	return kiln_db_query(m->db, name, sql, n, v, TASK_TIMEOUT_MS, NULL, err, errlen);
}

/* A statement returning one count. Returns 0 with *count set, or -1. */
static int task_count(struct maintenance *m, const char *name, const char *sql, int n,
                      const char *const *v, long long *count, char *err, size_t errlen)
{
	PGresult *r = task_query(m, name, sql, n, v, err, errlen);

	if (r == NULL)
		return -1;
	*count = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* Run a batch statement (it returns the rows it handled, at most
 * TASK_BATCH) until a batch comes back short. Between batches signals
 * get in, and the lease is renewed when due: a stop, or a lost lease, ends
 * the run early (the next slot goes on). Returns 0 with *total added to, or
 * -1. */
static int task_batches(struct maintenance *m, const char *name, const char *sql, int n,
                        const char *const *v, long long *total, char *err, size_t errlen)
{
	long long moved;

	for (;;) {
		if (task_count(m, name, sql, n, v, &moved, err, errlen) < 0)
			return -1;
		*total += moved;
		if (moved < TASK_BATCH)
			return 0;
		kiln_server_wait(-1, 0); /* let a pending SIGTERM in */
		if (kiln_now_ms() >= m->next_lease_ms)
			maintenance_lease(m, kiln_now_ms());
		if (kiln_server_stopping() || !m->leader)
			return 0;
	}
}

static int prune_jobs(struct maintenance *m, long long *deleted, char *err, size_t errlen)
{
	char c[24], d[24];
	const char *v[2] = {c, d};
	PGresult *r;

	snprintf(c, sizeof(c), "%lld", (long long)m->cfg->worker.prune_completed_after_ms);
	snprintf(d, sizeof(d), "%lld", (long long)m->cfg->worker.prune_discarded_after_ms);
	if (task_batches(m, "worker_prune_jobs", sql_prune, 2, v, deleted, err, errlen) < 0)
		return -1;
	worker_count(C_JOBS_PRUNED, (uint64_t)*deleted);
	r = task_query(m, NULL, sql_prune_cron, 0, NULL, err, errlen);
	PQclear(r);
	return r ? 0 : -1;
}

static int prune_tokens(struct maintenance *m, long long *deleted, char *err, size_t errlen)
{
	return task_count(m, NULL, sql_prune_tokens, 0, NULL, deleted, err, errlen);
}

static int archive_submissions(struct maintenance *m, long long *moved, char *err, size_t errlen)
{
	char after[24];
	const char *v[1] = {after};

	snprintf(after, sizeof(after), "%lld", (long long)m->cfg->worker.archive_after_ms);
	return task_batches(m, "worker_archive", sql_archive, 1, v, moved, err, errlen);
}

static int analyze(struct maintenance *m, long long *affected, char *err, size_t errlen)
{
	PGresult *r = task_query(m, NULL, sql_analyze, 0, NULL, err, errlen);

	*affected = 0;
	PQclear(r);
	return r ? 0 : -1;
}

static int rebuild_leaderboard(struct maintenance *m, long long *users, char *err, size_t errlen)
{
	int n = kiln_leaderboard_rebuild(m->db, kiln_server_redis(), m->cfg->api.leaderboard_size,
	                                 err, errlen);

	*users = n;
	return n < 0 ? -1 : 0;
}

/* The periodic tasks; each runs once per slot of its interval, fleet-wide. */
static const struct cron_task {
	const char *key;
	size_t interval; /* offsetof the interval in struct kiln_cfg_worker */
	int (*run)(struct maintenance *m, long long *affected, char *err, size_t errlen);
} cron_tasks[] = {
    {"prune_jobs", offsetof(struct kiln_cfg_worker, prune_interval_ms), prune_jobs},
    {"prune_tokens", offsetof(struct kiln_cfg_worker, prune_interval_ms), prune_tokens},
    {"archive_submissions", offsetof(struct kiln_cfg_worker, archive_interval_ms),
     archive_submissions},
    {"analyze", offsetof(struct kiln_cfg_worker, analyze_interval_ms), analyze},
    {"rebuild_leaderboard", offsetof(struct kiln_cfg_worker, leaderboard_interval_ms),
     rebuild_leaderboard},
};

static int64_t task_interval(const struct maintenance *m, const struct cron_task *t)
{
	return *(const int64_t *)((const char *)&m->cfg->worker + t->interval);
}

/* Claim the current slot of t. Returns 1 with its run_at in slot, 0 when it
 * is already claimed, -1 on error. */
static int task_claim(struct maintenance *m, const struct cron_task *t, char *slot, size_t slotlen,
                      char *err, size_t errlen)
{
	char ms[24];
	const char *v[2] = {t->key, ms};
	PGresult *r;
	int claimed;

	snprintf(ms, sizeof(ms), "%lld", (long long)task_interval(m, t));
	r = task_query(m, "worker_cron_claim", sql_cron_claim, 2, v, err, errlen);
	if (r == NULL)
		return -1;
	claimed = PQntuples(r) == 1;
	if (claimed)
		kiln_strlcpy(slot, PQgetvalue(r, 0, 0), slotlen);
	PQclear(r);
	return claimed;
}

/* Run t if its current slot is unclaimed. A failed run gives the slot back
 * (best effort) so the next check retries it. Returns 1 when it ran
 * (*affected set), 0 when the slot was taken, -1 on error. */
static int task_run(struct maintenance *m, const struct cron_task *t, long long *affected,
                    char *err, size_t errlen)
{
	char slot[64], scratch[256];
	const char *v[2] = {t->key, slot};
	int rc = task_claim(m, t, slot, sizeof(slot), err, errlen);
	PGresult *r;

	if (rc != 1)
		return rc;
	if (t->run(m, affected, err, errlen) == 0)
		return 1;
	r = task_query(m, NULL, sql_cron_unclaim, 2, v, scratch, sizeof(scratch));
	PQclear(r);
	return -1;
}

/* The monotonic time of the next check: in CRON_CHECK_MS, or just after the
 * next slot of some task starts if that is sooner. */
static int64_t cron_next_check(const struct maintenance *m, int64_t now)
{
	int64_t wall = kiln_wall_ms(), next = CRON_CHECK_MS, iv, until;
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(cron_tasks); i++) {
		iv = task_interval(m, &cron_tasks[i]);
		until = iv - wall % iv + 1000; /* a second late: clocks differ */
		if (until < next)
			next = until;
	}
	return now + next;
}

static void maintenance_cron(struct maintenance *m, int64_t now)
{
	char err[512];
	long long affected;
	int64_t t0;
	size_t i;
	int rc;

	for (i = 0; i < KILN_ARRAY_LEN(cron_tasks) && m->leader && !kiln_server_stopping(); i++) {
		const struct cron_task *t = &cron_tasks[i];

		err[0] = '\0';
		affected = 0;
		t0 = kiln_now_ms();
		rc = task_run(m, t, &affected, err, sizeof(err));
		if (rc < 0) {
			worker_count(C_DB_ERRORS, 1);
			kiln_warn("periodic job failed; retrying at the next check",
			          "cron_key=%s error=%s", t->key, err);
		} else if (rc == 1) {
			kiln_info("periodic job ran", "cron_key=%s holder=%s affected=%lld ms=%lld",
			          t->key, worker_id(), affected, (long long)(kiln_now_ms() - t0));
		}
	}
	m->next_cron_ms = cron_next_check(m, now);
}

void maintenance_tick(struct maintenance *m)
{
	int64_t now = kiln_now_ms();

	if (now >= m->next_lease_ms)
		maintenance_lease(m, now);
	if (m->leader && now >= m->lease_until_ms) {
		m->leader = 0;
		kiln_info("maintenance lease expired", "holder=%s", worker_id());
	}
	if (!m->leader)
		return;
	if (now >= m->next_rescue_ms)
		maintenance_rescue(m, now);
	if (now >= m->next_cron_ms)
		maintenance_cron(m, now);
}

void maintenance_free(struct maintenance *m)
{
	const char *v[2] = {LEASE_NAME, worker_id()};
	char err[512];
	PGresult *r;

	if (m->leader) {
		r = kiln_db_query(m->db, "worker_unlease", sql_unlease, 2, v, 0, NULL, err,
		                  sizeof(err));
		if (r == NULL)
			kiln_warn("cannot give the maintenance lease up", "error=%s", err);
		PQclear(r);
	}
	free(m);
}
