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

/* ---------------------------------------------------------------- operators' moves and counts */

/* The job states, in the order of sql/002_jobs.sql. */
enum kiln_job_state {
	KILN_JOB_AVAILABLE = 0,
	KILN_JOB_SCHEDULED,
	KILN_JOB_RUNNING,
	KILN_JOB_RETRYABLE,
	KILN_JOB_COMPLETED,
	KILN_JOB_DISCARDED,
	KILN_JOB_CANCELLED,
	KILN_JOB_STATES
};
#define KILN_JOB_STATE_MAX 16 /* the longest name and its NUL fit */

/* A set of states, for the moves below. */
#define KILN_JOB_MASK(s) (1u << (s))
/* retry starts from a failed or stopped job; discard and cancel from one
 * not yet final. */
#define KILN_JOBS_RETRY_FROM                                                                       \
	(KILN_JOB_MASK(KILN_JOB_DISCARDED) | KILN_JOB_MASK(KILN_JOB_RETRYABLE) |                   \
	 KILN_JOB_MASK(KILN_JOB_CANCELLED))
#define KILN_JOBS_STOP_FROM                                                                        \
	(KILN_JOB_MASK(KILN_JOB_AVAILABLE) | KILN_JOB_MASK(KILN_JOB_SCHEDULED) |                   \
	 KILN_JOB_MASK(KILN_JOB_RUNNING) | KILN_JOB_MASK(KILN_JOB_RETRYABLE))

/* The name of state s ("available"), or NULL when out of range. */
const char *kiln_job_state_name(int s);

/* The state called name, or -1 when there is none. */
int kiln_job_state_parse(const char *name);

/* The states of mask as "available, scheduled or retryable" into out.
 * Returns out (truncated when outlen is too small). */
char *kiln_jobs_states_text(unsigned mask, char *out, size_t outlen);

/* Returned by the moves when no job has that id, and when the job is in a
 * state the move does not start from (its state is then in state). */
#define KILN_JOBS_NOT_FOUND   2
#define KILN_JOBS_WRONG_STATE 3

/* Move job id, when its state is in from (a KILN_JOB_MASK set; 0 = the
 * move's own set above, and states outside it never move):
 *   retry:   available now (scheduled_at = now), finalized_at cleared, one
 *            more attempt allowed when exhausted; the executors are woken
 *   discard: discarded, finalized now
 *   cancel:  cancelled, finalized now
 * A running job that is discarded or cancelled finishes its run, whose
 * outcome is then ignored. Runs on db's connection, inside the caller's
 * transaction if one is open. Returns 0 when moved, KILN_JOBS_NOT_FOUND,
 * KILN_JOBS_WRONG_STATE with the job's state in state (KILN_JOB_STATE_MAX
 * bytes, may be NULL), or -1 with err set. */
int kiln_jobs_retry(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                    size_t errlen);
int kiln_jobs_discard(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                      size_t errlen);
int kiln_jobs_cancel(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
                     size_t errlen);

struct kiln_jobs_counts {
	int64_t count[KILN_JOB_STATES]; /* by enum kiln_job_state */
	double oldest_available_s;      /* age of the oldest runnable job; 0 when none */
};

/* Count the jobs by state, each statement bounded by timeout_ms (0 = the
 * configured statement timeout). pending_only counts only the states not
 * yet final (available, scheduled, running, retryable; the others are left
 * 0) through the queue's partial indexes, so its cost follows the backlog,
 * not the history. Returns 0, or -1 with err set. */
int kiln_jobs_count(struct kiln_db *db, int pending_only, int64_t timeout_ms,
                    struct kiln_jobs_counts *out, char *err, size_t errlen);

#endif
