/* maintenance: work that must run on one executor of the whole fleet, not
 * on each: rescuing jobs whose executor died, and periodic jobs. Every
 * executor tries to take or renew a lease in job_leader about three times
 * per lease_ttl; the holder does the work. A lease can be lost (a long job
 * delays the renewal), so two leaders may briefly overlap: rescue is safe
 * to run twice, and each periodic run is guarded by its (cron_key, run_at)
 * row in cron_runs, which only one transaction can insert.
 *
 * Schedules are fixed here: rescue every rescue_after / 2; pruning of
 * finished jobs once an hour (run_at = the hour). */
#include <stdio.h>
#include <stdlib.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/util.h"
#include "worker.h"

#define LEASE_NAME       "maintenance"
#define CRON_CHECK_MS    (60 * 1000) /* how often the leader looks for due cron runs */
#define PRUNE_TIMEOUT_MS (60 * 1000)
#define PRUNE_TIMEOUT    "60s"

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

/* Periodic runs: one row per (cron_key, run_at); only its inserter runs it. */
static const char sql_cron_claim[] =
    "INSERT INTO cron_runs (cron_key, run_at) VALUES ($1, date_trunc('hour', now()))"
    " ON CONFLICT DO NOTHING RETURNING run_at";
static const char sql_prune[] =
    "WITH d AS (DELETE FROM jobs WHERE"
    " (state = 'completed' AND finalized_at < now() - $1::bigint * interval '1 millisecond')"
    " OR (state IN ('discarded', 'cancelled')"
    "     AND finalized_at < now() - $2::bigint * interval '1 millisecond')"
    " RETURNING 1) SELECT count(*) FROM d";
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
/* Fresh statistics for the tables whose size changes fastest. */
static const char sql_analyze[] = "ANALYZE jobs, users, sessions, refresh_tokens";

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

/* One statement of the prune transaction. Returns the result, or NULL. */
static PGresult *prune_step(struct maintenance *m, const char *sql, int n, const char *const *v,
                            char *err, size_t errlen)
{
	return kiln_db_query(m->db, NULL, sql, n, v, PRUNE_TIMEOUT_MS, NULL, err, errlen);
}

/* Claim this hour's run of task key: 1 claimed, 0 already run, -1 error. */
static int prune_claim(struct maintenance *m, const char *task, char *err, size_t errlen)
{
	const char *key[1] = {task};
	PGresult *r = prune_step(m, sql_cron_claim, 1, key, err, errlen);
	int claimed;

	if (r == NULL)
		return -1;
	claimed = PQntuples(r) == 1;
	PQclear(r);
	return claimed;
}

/* Delete finished jobs past their retention. Returns 0, or -1. */
static int prune_jobs(struct maintenance *m, long long *deleted, char *err, size_t errlen)
{
	char c[24], d[24];
	const char *v[2] = {c, d};
	PGresult *r;

	snprintf(c, sizeof(c), "%lld", (long long)m->cfg->worker.prune_completed_after_ms);
	snprintf(d, sizeof(d), "%lld", (long long)m->cfg->worker.prune_discarded_after_ms);
	r = prune_step(m, sql_prune, 2, v, err, errlen);
	if (r == NULL)
		return -1;
	*deleted = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	r = prune_step(m, sql_prune_cron, 0, NULL, err, errlen);
	PQclear(r);
	return r ? 0 : -1;
}

static int prune_tokens(struct maintenance *m, long long *deleted, char *err, size_t errlen)
{
	PGresult *r = prune_step(m, sql_prune_tokens, 0, NULL, err, errlen);

	if (r == NULL)
		return -1;
	*deleted = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int analyze(struct maintenance *m, long long *deleted, char *err, size_t errlen)
{
	PGresult *r = prune_step(m, sql_analyze, 0, NULL, err, errlen);

	*deleted = 0;
	PQclear(r);
	return r ? 0 : -1;
}

/* The hourly periodic jobs; each runs on one host per hour (cron_runs). */
static const struct cron_task {
	const char *key;
	int (*run)(struct maintenance *m, long long *affected, char *err, size_t errlen);
} cron_tasks[] = {
    {"prune_jobs", prune_jobs},
    {"prune_tokens", prune_tokens},
    {"analyze", analyze},
};

/* The hourly prune, in one transaction with its cron_runs row, so that a
 * failure leaves the hour unclaimed and the next check tries again.
 * Returns 1 when it ran (*deleted set), 0 when this hour already ran, -1 on
 * error. */
static int prune_once(struct maintenance *m, const struct cron_task *t, long long *deleted,
                      char *err, size_t errlen)
{
	char scratch[256];
	PGresult *r;
	int rc = -1;

	if ((r = prune_step(m, "BEGIN", 0, NULL, err, errlen)) == NULL)
		return -1;
	PQclear(r);
	r = prune_step(m, "SET LOCAL statement_timeout = '" PRUNE_TIMEOUT "'", 0, NULL, err,
	               errlen);
	if (r != NULL) {
		PQclear(r);
		rc = prune_claim(m, t->key, err, errlen);
	}
	if (rc == 1 && t->run(m, deleted, err, errlen) < 0)
		rc = -1;
	if (rc == 1) {
		r = prune_step(m, "COMMIT", 0, NULL, err, errlen);
		if (r == NULL)
			rc = -1;
	} else {
		/* Nothing to keep; a failure here only means the connection is gone. */
		r = prune_step(m, "ROLLBACK", 0, NULL, scratch, sizeof(scratch));
	}
	PQclear(r);
	return rc;
}

static void maintenance_cron(struct maintenance *m, int64_t now)
{
	char err[512];
	long long affected;
	size_t i;
	int rc;

	m->next_cron_ms = now + CRON_CHECK_MS;
	for (i = 0; i < sizeof(cron_tasks) / sizeof(cron_tasks[0]); i++) {
		const struct cron_task *t = &cron_tasks[i];

		err[0] = '\0';
		affected = 0;
		rc = prune_once(m, t, &affected, err, sizeof(err));
		if (rc < 0) {
			worker_count(C_DB_ERRORS, 1);
			kiln_warn("periodic job failed; retrying at the next check",
			          "cron_key=%s error=%s", t->key, err);
			continue;
		}
		if (rc == 0)
			continue;
		if (t->run == prune_jobs)
			worker_count(C_JOBS_PRUNED, (uint64_t)affected);
		kiln_info("periodic job ran", "cron_key=%s holder=%s affected=%lld", t->key,
		          worker_id(), affected);
	}
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
