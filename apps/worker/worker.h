/* kiln-worker internals: the executor loop (executor.c), its LISTEN
 * connection (listener.c), the job kinds (kinds.c, grade.c) and the
 * leader-only maintenance (maintenance.c). */
#ifndef KILN_WORKER_APP_H
#define KILN_WORKER_APP_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "kiln/config.h"
#include "kiln/jobs.h"

struct kiln_db;
struct executor;

/* Scoreboard counters, in the order of worker_counter_names. */
enum worker_counter {
	C_JOBS_COMPLETED,
	C_JOBS_FAILED,      /* failed attempts that will be retried */
	C_JOBS_DISCARDED,   /* failed last attempts */
	C_JOBS_INTERRUPTED, /* stopped by a shutdown */
	C_JOBS_RESCUED,     /* rescued by this executor while it led */
	C_JOBS_PRUNED,
	C_LEADER_ELECTED,
	C_DB_ERRORS,
};
extern const char *const worker_counter_names[];
void worker_count(enum worker_counter c, uint64_t n);

/* "<hostname>:<pid>" of this process: jobs' attempted_by, the lease holder. */
const char *worker_id(void);

/* ---------------------------------------------------------------- kinds */

/* What a handler returns. */
enum { JOB_OK = 0, JOB_FAILED = -1, JOB_INTERRUPTED = 1 };

/* A job while its handler runs. */
struct job_run {
	const struct kiln_job *job;
	struct kiln_db *db;  /* the executor's connection */
	int64_t deadline_ms; /* monotonic; the kind's timeout */
	struct executor *ex;
};

/* Run one job. Returns JOB_OK, JOB_FAILED with a reason in err (the job is
 * retried with backoff, then discarded), or JOB_INTERRUPTED with a reason
 * when the executor is stopping (the job is retried, never discarded for
 * it). Never log job args: they may hold personal data. */
typedef int (*job_fn)(struct job_run *run, char *err, size_t errlen);

struct job_kind {
	const char *kind;
	int64_t timeout_ms; /* 0 = [worker] job_timeout */
	int test_only;      /* only with [worker] test_kinds = on */
	job_fn run;
};

/* The handler of kind, or NULL when there is none (or it is a test kind and
 * test kinds are off). */
const struct job_kind *job_kind_find(const char *kind, int test_kinds);

/* Every kind of the table, NULL-terminated, in table order: the labels of
 * the scoreboard's job rows (kiln_jobs_executed_total{kind}). */
const char *const *job_kind_names(void);

/* The row of kind in job_kind_names() (whether or not its handler is
 * enabled), or KILN_STATS_KIND_OTHER for a kind not in the table. */
int job_kind_index(const char *kind);

/* The integer member name of the job's args (a JSON object), required,
 * within [min, max]. Returns 0, or -1 with err set ("args: ..."). */
int job_arg_int(const struct kiln_job *job, const char *name, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errlen);

/* grade_submission {"submission_id": N} (grade.c): grade a queued
 * submission, update progress, notify; then the leaderboard and cache. */
int grade_submission(struct job_run *run, char *err, size_t errlen);

/* The longest timeout of any kind enabled by cfg. */
int64_t job_kinds_max_timeout(const struct kiln_config *cfg);

/* For long handlers: heartbeat the executor's running jobs when due and let
 * pending signals in. Returns 0 to go on, JOB_INTERRUPTED when the executor
 * is stopping, JOB_FAILED when the job's deadline has passed. */
int job_heartbeat(struct job_run *run);

/* ---------------------------------------------------------------- executor */

/* struct kiln_app.run: one executor process. Returns its exit status. */
int executor_run(int slot);

/* Heartbeat every job this executor holds (running or fetched and waiting)
 * when heartbeat_ms has passed since the last one, or at once with force. */
void executor_heartbeat(struct executor *ex, int force);

/* ---------------------------------------------------------------- listener */

struct listener;

/* A LISTEN kiln_jobs connection of its own (opened lazily, re-opened with
 * backoff). Returns NULL on OOM. */
struct listener *listener_new(const struct kiln_config *cfg);
void listener_free(struct listener *l);

/* Sleep until a job notification arrives, a signal, or timeout_ms. Falls
 * back to a plain sleep while the connection is down. Returns 1 when woken
 * by a notification (or after a reconnect, which may have missed some),
 * else 0. */
int listener_wait(struct listener *l, int64_t timeout_ms);

/* ---------------------------------------------------------------- maintenance */

struct maintenance;

/* Leader-only maintenance on db (the executor's connection). */
struct maintenance *maintenance_new(const struct kiln_config *cfg, struct kiln_db *db);

/* Take or renew the lease when due; as leader, rescue stuck jobs and run the
 * periodic jobs that are due. Cheap when nothing is due. */
void maintenance_tick(struct maintenance *m);

/* Give the lease up (so another executor takes over at once) and free m. */
void maintenance_free(struct maintenance *m);

#endif
