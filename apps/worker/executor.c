/* executor: one prefork worker process of kiln-worker. It fetches batches
 * of runnable jobs from its queues (FOR UPDATE SKIP LOCKED, so executors
 * never share a job), runs each through its kind's handler, records the
 * outcome, and sleeps until a NOTIFY or the poll interval when the queues
 * are empty. Signals are blocked except inside kiln_server_wait(), so a
 * SIGTERM is noticed between jobs (or by a handler that waits): the
 * current job finishes, the fetched ones not yet started are put back. A
 * job whose executor dies stays "running" until the leader rescues it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/buf.h"
#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "worker.h"

#define QUEUES_MAX   8
#define RECORD_TRIES 4 /* recording an outcome: 100, 200, 400 ms between tries */

struct executor {
	const struct kiln_config *cfg;
	struct kiln_stats_slot *slot;
	struct kiln_db *db;
	struct listener *listener; /* NULL with [worker] listen = off */
	struct maintenance *maint;
	char queues[QUEUES_MAX][KILN_JOB_QUEUE_MAX];
	int nqueues;
	struct kiln_job *jobs; /* the current batch */
	int64_t *held;         /* ids of the batch's jobs not finished yet */
	int nheld;
	int64_t last_heartbeat_ms;
	int db_down; /* the last fetch failed (log an outage once) */
};

/* ---------------------------------------------------------------- heartbeat */

void executor_heartbeat(struct executor *ex, int force)
{
	char err[512];
	int64_t now = kiln_now_ms();

	if (ex->nheld == 0 ||
	    (!force && now - ex->last_heartbeat_ms < ex->cfg->worker.heartbeat_ms))
		return;
	ex->last_heartbeat_ms = now;
	if (kiln_jobs_heartbeat(ex->db, ex->held, ex->nheld, err, sizeof(err)) < 0) {
		worker_count(C_DB_ERRORS, 1);
		kiln_warn("heartbeat failed", "jobs=%d error=%s", ex->nheld, err);
	}
}

int job_heartbeat(struct job_run *run)
{
	executor_heartbeat(run->ex, 0);
	kiln_server_wait(-1, 0); /* let a pending SIGTERM in */
	if (kiln_server_stopping())
		return JOB_INTERRUPTED;
	return kiln_now_ms() > run->deadline_ms ? JOB_FAILED : 0;
}

/* ---------------------------------------------------------------- one job */

/* Record a job's outcome, retrying briefly: while PostgreSQL restarts the
 * first tries fail. A job whose outcome is never recorded stays running
 * and is rescued later (it runs again: delivery is at least once). */
static int executor_record(struct executor *ex, const struct kiln_job *job, int rc, const char *why)
{
	char err[512];
	int i, done;

	for (i = 0; i < RECORD_TRIES; i++) {
		if (i > 0)
			usleep((useconds_t)(100000 << (i - 1)));
		done = rc == JOB_OK ? kiln_jobs_complete(ex->db, job->id, err, sizeof(err))
		                    : kiln_jobs_fail(ex->db, job, why, err, sizeof(err));
		if (done == 0)
			return 0;
		/* Rescued or cancelled meanwhile: the row is no longer ours,
		 * and trying again cannot change that. */
		if (done == KILN_JOBS_GONE) {
			kiln_warn("job outcome not recorded: it is no longer running here",
			          "job_id=%lld kind=%s attempt=%d", (long long)job->id, job->kind,
			          job->attempt);
			return -1;
		}
		worker_count(C_DB_ERRORS, 1);
	}
	kiln_error("cannot record the job's outcome; it will be rescued",
	           "job_id=%lld kind=%s attempt=%d error=%s", (long long)job->id, job->kind,
	           job->attempt, err);
	return -1;
}

/* Put back jobs fetched but not started: a shutdown must neither run them
 * late nor spend one of their attempts. Returns 0, or -1. */
static int executor_release(struct executor *ex, const int64_t *ids, int n)
{
	char err[512];
	int released = kiln_jobs_release(ex->db, ids, n, worker_id(), err, sizeof(err));

	if (released < 0) {
		kiln_warn("cannot release jobs; they will be rescued", "error=%s", err);
		return -1;
	}
	kiln_info("released jobs not started", "jobs=%d", released);
	return 0;
}

static void executor_log_outcome(struct executor *ex, const struct kiln_job *job, int rc,
                                 const char *why, int64_t dur_ns)
{
	double ms = (double)dur_ns / 1e6;
	int last = job->attempt >= job->max_attempts;

	kiln_stats_job(ex->slot, job_kind_index(job->kind),
	               rc == JOB_OK            ? KILN_STATS_JOB_COMPLETED
	               : rc == JOB_INTERRUPTED ? KILN_STATS_JOB_INTERRUPTED
	               : last                  ? KILN_STATS_JOB_DISCARDED
	                                       : KILN_STATS_JOB_FAILED,
	               dur_ns);

	if (rc == JOB_OK) {
		worker_count(C_JOBS_COMPLETED, 1);
		kiln_log(ex->cfg->log.access ? KILN_LOG_INFO : KILN_LOG_DEBUG, "job completed",
		         "job_id=%lld kind=%s queue=%s attempt=%d ms=%.3f", (long long)job->id,
		         job->kind, job->queue, job->attempt, ms);
		return;
	}
	if (rc == JOB_INTERRUPTED)
		worker_count(C_JOBS_INTERRUPTED, 1);
	else
		worker_count(last ? C_JOBS_DISCARDED : C_JOBS_FAILED, 1);
	kiln_warn(rc == JOB_INTERRUPTED ? "job interrupted"
	          : last                ? "job discarded"
	                                : "job failed",
	          "job_id=%lld kind=%s queue=%s attempt=%d max_attempts=%d ms=%.3f error=%s",
	          (long long)job->id, job->kind, job->queue, job->attempt, job->max_attempts, ms,
	          why);
}

/* Run one fetched job and record its outcome. */
static void executor_job(struct executor *ex, const struct kiln_job *job)
{
	const struct job_kind *k = job_kind_find(job->kind, ex->cfg->worker.test_kinds);
	struct job_run run = {.job = job, .db = ex->db, .ex = ex};
	char why[512] = "";
	int64_t t0 = kiln_now_ns();
	int rc;

	kiln_log_set_request(job->request_id[0] ? job->request_id : NULL, NULL);
	kiln_stats_begin(ex->slot, "JOB", job->kind);
	if (k == NULL) {
		snprintf(why, sizeof(why), "unknown job kind");
		rc = JOB_FAILED;
	} else {
		run.deadline_ms = kiln_now_ms() +
		                  (k->timeout_ms ? k->timeout_ms : ex->cfg->worker.job_timeout_ms);
		rc = k->run(&run, why, sizeof(why));
		if (rc != JOB_OK && why[0] == '\0')
			snprintf(why, sizeof(why), "failed without a reason");
	}
	kiln_stats_end(ex->slot, KILN_STATS_ROUTE_OTHER,
	               rc == JOB_OK            ? 200
	               : rc == JOB_INTERRUPTED ? 503
	                                       : 500,
	               kiln_now_ns() - t0, 0, 0);
	executor_log_outcome(ex, job, rc, why, kiln_now_ns() - t0);
	/* An interrupted last attempt goes back untouched: a shutdown must
	 * never be the reason a job is discarded. */
	if (rc == JOB_INTERRUPTED && job->attempt >= job->max_attempts)
		executor_release(ex, &job->id, 1);
	else
		executor_record(ex, job, rc, why);
	kiln_log_set_request(NULL, NULL);
}

/* ---------------------------------------------------------------- batches */

/* Run the n fetched jobs of ex->jobs in order; on SIGTERM release the rest. */
static void executor_batch(struct executor *ex, int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		ex->nheld = n - i;
		for (j = i; j < n; j++)
			ex->held[j - i] = ex->jobs[j].id;
		if (kiln_server_stopping()) {
			executor_release(ex, ex->held, ex->nheld);
			break;
		}
		executor_heartbeat(ex, 0);
		executor_job(ex, &ex->jobs[i]);
		kiln_server_wait(-1, 0); /* let a pending SIGTERM in */
	}
	ex->nheld = 0;
	for (i = 0; i < n; i++)
		kiln_job_free(&ex->jobs[i]);
}

/* Fetch and run one batch of each queue. Returns 1 when some queue gave a
 * full batch (more work is likely waiting), 0 when all came back short,
 * -1 when PostgreSQL could not be asked. */
static int executor_round(struct executor *ex)
{
	char err[512];
	int q, n, full = 0, batch = (int)ex->cfg->worker.batch;

	for (q = 0; q < ex->nqueues && !kiln_server_stopping(); q++) {
		n = kiln_jobs_fetch(ex->db, ex->queues[q], worker_id(), ex->jobs, batch, err,
		                    sizeof(err));
		if (n < 0) {
			worker_count(C_DB_ERRORS, 1);
			if (!ex->db_down)
				kiln_warn("cannot fetch jobs; retrying", "queue=%s error=%s",
				          ex->queues[q], err);
			ex->db_down = 1;
			return -1;
		}
		if (ex->db_down)
			kiln_info("fetching jobs again", "queue=%s", ex->queues[q]);
		ex->db_down = 0;
		ex->last_heartbeat_ms = kiln_now_ms(); /* the fetch set heartbeat_at */
		executor_batch(ex, n);
		full |= n == batch;
	}
	return full;
}

/* ---------------------------------------------------------------- life */

static void executor_queues(struct executor *ex)
{
	char copy[sizeof(ex->cfg->worker.queues)], *save = NULL, *q;

	kiln_strlcpy(copy, ex->cfg->worker.queues, sizeof(copy));
	for (q = strtok_r(copy, ",", &save); q && ex->nqueues < QUEUES_MAX;
	     q = strtok_r(NULL, ",", &save))
		kiln_strlcpy(ex->queues[ex->nqueues++], q, KILN_JOB_QUEUE_MAX);
}

static int executor_init(struct executor *ex, int slot)
{
	int64_t longest;

	memset(ex, 0, sizeof(*ex));
	ex->cfg = kiln_server_config();
	ex->slot = kiln_server_slot();
	ex->db = kiln_server_db();
	ex->jobs = calloc((size_t)ex->cfg->worker.batch, sizeof(*ex->jobs));
	ex->held = calloc((size_t)ex->cfg->worker.batch, sizeof(*ex->held));
	ex->maint = ex->db ? maintenance_new(ex->cfg, ex->db) : NULL;
	if (ex->cfg->worker.listen)
		ex->listener = listener_new(ex->cfg);
	if (ex->db == NULL || ex->jobs == NULL || ex->held == NULL || ex->maint == NULL ||
	    (ex->cfg->worker.listen && ex->listener == NULL)) {
		kiln_error("executor setup failed: out of memory", NULL);
		return -1;
	}
	executor_queues(ex);
	longest = job_kinds_max_timeout(ex->cfg);
	if (slot == 0 && ex->cfg->server.request_timeout_ms > 0 &&
	    ex->cfg->server.request_timeout_ms <= longest)
		kiln_warn(
		    "[server.worker] request_timeout is not longer than the longest job "
		    "timeout: the master kills executors running such jobs (they are rescued)",
		    "request_timeout_ms=%lld job_timeout_ms=%lld",
		    (long long)ex->cfg->server.request_timeout_ms, (long long)longest);
	kiln_info("executor started", "worker_id=%s queues=%s listen=%d", worker_id(),
	          ex->cfg->worker.queues, ex->cfg->worker.listen);
	return 0;
}

static void executor_fini(struct executor *ex)
{
	if (ex->maint)
		maintenance_free(ex->maint);
	listener_free(ex->listener);
	free(ex->jobs);
	free(ex->held);
}

int executor_run(int slot)
{
	struct executor ex;
	int rc;

	if (executor_init(&ex, slot) < 0) {
		executor_fini(&ex);
		return 1;
	}
	while (!kiln_server_stopping()) {
		maintenance_tick(ex.maint);
		rc = executor_round(&ex);
		if (kiln_server_stopping())
			break;
		if (rc > 0)
			kiln_server_wait(-1, 0); /* more work waits: only let signals in */
		else if (ex.listener)
			listener_wait(ex.listener, ex.cfg->worker.poll_interval_ms);
		else
			kiln_server_wait(-1, ex.cfg->worker.poll_interval_ms);
	}
	executor_fini(&ex);
	kiln_info("executor stopped", "worker_id=%s", worker_id());
	return 0;
}
