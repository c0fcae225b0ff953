/* jobs: a durable job queue in PostgreSQL (River / graphile-worker model).
 * A job is enqueued inside the caller's transaction, so it exists exactly
 * when the caller's data does; executors fetch with FOR UPDATE SKIP LOCKED,
 * heartbeat what they run, and record success or failure; failures retry
 * with backoff until max_attempts, then the job is discarded with every
 * error kept. Jobs whose executor died are rescued (that counts as an
 * attempt). Schema: sql/002_jobs.sql. */
#ifndef KILN_JOBS_H
#define KILN_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct kiln_db;

#define KILN_JOBS_CHANNEL  "kiln_jobs" /* NOTIFY channel; payload = queue name */
#define KILN_JOB_KIND_MAX  64
#define KILN_JOB_QUEUE_MAX 64

struct kiln_job_opts {
	const char *queue;      /* NULL = "default" */
	int priority;           /* 1 (first) .. 4; 0 = 1 */
	int max_attempts;       /* 0 = 20 */
	int64_t delay_ms;       /* run no earlier than now + delay (state scheduled) */
	const char *unique_key; /* NULL, or at most one non-final job with this key */
	const char *request_id; /* carried for logs */
};

struct kiln_job {
	int64_t id;
	char kind[KILN_JOB_KIND_MAX];
	char queue[KILN_JOB_QUEUE_MAX];
	char *args;  /* JSON object text, malloc'd */
	int attempt; /* this run's attempt number, 1-based */
	int max_attempts;
	char request_id[65];
};

/* Enqueue a job on db's connection, which must be inside the caller's open
 * transaction (the caller commits or rolls back; NOTIFY is delivered on
 * commit). args_json must be a JSON object. Returns the new job id, 0 when
 * a non-final job with the same unique_key exists (nothing inserted), or -1
 * with err set. */
int64_t kiln_jobs_enqueue(struct kiln_db *db, const char *kind, const char *args_json,
                          const struct kiln_job_opts *opts, char *err, size_t errlen);

/* Claim up to n runnable jobs of queue (available, or scheduled/retryable
 * whose time has come) in priority then scheduled order, with FOR UPDATE
 * SKIP LOCKED; mark them running (attempt + 1, attempted_at, attempted_by =
 * worker_id, heartbeat_at). Returns the number claimed (0..n), or -1. */
int kiln_jobs_fetch(struct kiln_db *db, const char *queue, const char *worker_id,
                    struct kiln_job *jobs, int n, char *err, size_t errlen);

/* Release the memory of a fetched job. */
void kiln_job_free(struct kiln_job *job);

/* Returned by complete and fail when the job is no longer this run's to
 * settle: rescued and claimed again, cancelled, or gone. Retrying cannot
 * change that, unlike -1 (the database could not be asked). */
#define KILN_JOBS_GONE 1

/* Mark a running job completed. Returns 0, KILN_JOBS_GONE, or -1. */
int kiln_jobs_complete(struct kiln_db *db, int64_t id, char *err, size_t errlen);

/* Record a failed attempt: the error is appended to errors[] (time,
 * attempt, error); the job becomes retryable after kiln_jobs_backoff_ms(),
 * or discarded when attempt >= max_attempts. Returns 0, KILN_JOBS_GONE (another
 * run owns the job now), or -1. */
int kiln_jobs_fail(struct kiln_db *db, const struct kiln_job *job, const char *error, char *err,
                   size_t errlen);

/* Touch heartbeat_at of running jobs. Returns 0, or -1. */
int kiln_jobs_heartbeat(struct kiln_db *db, const int64_t *ids, int n, char *err, size_t errlen);

/* Put back running jobs of worker_id that were claimed but never started
 * (a shutdown between fetch and run): available again, their attempt not
 * spent. Returns the number released, or -1. */
int kiln_jobs_release(struct kiln_db *db, const int64_t *ids, int n, const char *worker_id,
                      char *err, size_t errlen);

/* Rescue running jobs whose heartbeat is older than stale_ms: as a failed
 * attempt ("rescued: executor stopped heartbeating"), so a job that keeps
 * killing its executor ends discarded. Returns the number rescued, or -1. */
int kiln_jobs_rescue(struct kiln_db *db, int64_t stale_ms, char *err, size_t errlen);

/* Backoff before attempt+1 after attempt failed: attempt^4 seconds, times
 * (0.9 + 0.2 * jitter01) for jitter01 in [0,1), capped at 24 h. */
int64_t kiln_jobs_backoff_ms(int attempt, double jitter01);

#endif
