/* stats: the shared-memory scoreboard of one program, <run_dir>/<app>.stats.
 * The master creates it; each worker writes only its own slot; kiln-metrics,
 * kiln-health and kiln-admin map it read-only. A slot keeps its counters
 * when its worker is replaced, so counters never go backwards while the
 * program runs. 64-bit fields are written with relaxed atomic stores so
 * readers never see torn values. */
#ifndef KILN_STATS_H
#define KILN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/buf.h"

#define KILN_STATS_MAGIC           "KILNSTA1"
#define KILN_STATS_MAX_SLOTS       128 /* workers are capped at half of this */
#define KILN_STATS_MAX_ROUTES      62  /* + "unmatched" + "other" */
#define KILN_STATS_ROUTES          (KILN_STATS_MAX_ROUTES + 2)
#define KILN_STATS_ROUTE_UNMATCHED KILN_STATS_MAX_ROUTES
#define KILN_STATS_ROUTE_OTHER     (KILN_STATS_MAX_ROUTES + 1)
#define KILN_STATS_BUCKETS         14 /* finite upper bounds, see kiln_stats_bucket_us */
#define KILN_STATS_CLASSES         5  /* status 1xx .. 5xx */
#define KILN_STATS_MAX_COUNTERS    32
#define KILN_STATS_MAX_KINDS       15 /* job kinds of kiln-worker, + "other" */
#define KILN_STATS_KINDS           (KILN_STATS_MAX_KINDS + 1)
#define KILN_STATS_KIND_OTHER      KILN_STATS_MAX_KINDS

enum kiln_worker_state {
	KILN_WORKER_EMPTY = 0, /* slot unused */
	KILN_WORKER_STARTING,
	KILN_WORKER_IDLE,
	KILN_WORKER_BUSY,
	KILN_WORKER_EXITING,
};

enum kiln_restart_reason {
	KILN_RESTART_CRASH = 0, /* died unexpectedly */
	KILN_RESTART_MAX_REQUESTS,
	KILN_RESTART_TIMEOUT, /* killed for exceeding request_timeout */
	KILN_RESTART_RELOAD,  /* replaced on SIGHUP */
	KILN_RESTART_REASONS
};

/* How a PostgreSQL statement ended (kiln_stats_db_query). */
enum kiln_stats_db_outcome {
	KILN_STATS_DB_OK = 0,
	KILN_STATS_DB_UNAVAILABLE, /* no connection, or it broke mid-statement */
	KILN_STATS_DB_TIMEOUT,     /* our deadline passed; the statement was cancelled */
	KILN_STATS_DB_REFUSED,     /* PostgreSQL ran it and answered with an error */
	KILN_STATS_DB_OUTCOMES
};

/* How one run of a job ended (kiln_stats_job). */
enum kiln_stats_job_outcome {
	KILN_STATS_JOB_COMPLETED = 0,
	KILN_STATS_JOB_FAILED,      /* failed; it will be retried */
	KILN_STATS_JOB_DISCARDED,   /* failed its last attempt */
	KILN_STATS_JOB_INTERRUPTED, /* stopped by a shutdown; it will run again */
	KILN_STATS_JOB_OUTCOMES
};

struct kiln_stats_route {
	uint64_t count[KILN_STATS_CLASSES]; /* by status class */
	uint64_t duration_us_sum;
	uint64_t buckets[KILN_STATS_BUCKETS + 1]; /* non-cumulative; last is +Inf */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

/* The PostgreSQL statements of one slot's workers (db.c records them). */
struct kiln_stats_db {
	uint64_t outcomes[KILN_STATS_DB_OUTCOMES]; /* statements, by outcome */
	uint64_t duration_us_sum;                  /* of statements sent to the server */
	uint64_t buckets[KILN_STATS_BUCKETS + 1];  /* see kiln_stats_db_bucket_us */
	uint64_t connects;                         /* connections opened, first and later */
	uint64_t connect_failures;
};

/* The job runs of one kind in one slot (kiln-worker records them). */
struct kiln_stats_job {
	uint64_t outcomes[KILN_STATS_JOB_OUTCOMES];
	uint64_t duration_us_sum;
	uint64_t buckets[KILN_STATS_BUCKETS + 1]; /* see kiln_stats_job_bucket_us */
};

struct kiln_stats_slot {
	int32_t pid;
	int32_t state;         /* enum kiln_worker_state */
	int64_t req_start_ms;  /* wall clock ms of the current request, 0 when idle */
	int64_t busy_ms_total; /* time spent serving requests */
	uint64_t requests;     /* total served by this slot (all its workers) */
	char method[8];        /* current request */
	char route[96];        /* current route template */
	uint64_t counters[KILN_STATS_MAX_COUNTERS]; /* app-defined, see names */
	struct kiln_stats_route routes[KILN_STATS_ROUTES];
	struct kiln_stats_db db;
	struct kiln_stats_job jobs[KILN_STATS_KINDS]; /* by kind; last is "other" */
};

struct kiln_stats_header {
	char magic[8];
	uint32_t version;
	uint32_t nslots;
	uint32_t nroutes;
	uint32_t ncounters;
	char app[32];
	int32_t master_pid;
	int32_t pad;
	int64_t start_wall_ms;
	uint64_t restarts[KILN_RESTART_REASONS];
	char route_method[KILN_STATS_MAX_ROUTES][8];
	char route_pattern[KILN_STATS_MAX_ROUTES][96];
	char counter_name[KILN_STATS_MAX_COUNTERS][48];
	char build_version[16]; /* KILN_VERSION of the program that made the file */
	char build_commit[48];  /* KILN_COMMIT */
	uint32_t nkinds;        /* job kinds labelled below (kiln_stats_label_kinds) */
	uint32_t slots_used;    /* slots [0, slots_used) were ever taken; the rest are zero */
	char job_kind[KILN_STATS_MAX_KINDS][32];
};

struct kiln_stats {
	struct kiln_stats_header *hdr;
	struct kiln_stats_slot *slots;
	size_t map_len;
	int writable;
};

/* Upper bound in microseconds of histogram bucket i (0 <= i < KILN_STATS_BUCKETS)
 * of the HTTP request durations, or UINT64_MAX out of range. */
uint64_t kiln_stats_bucket_us(int i);

/* The same for PostgreSQL statement durations, whose buckets start lower. */
uint64_t kiln_stats_db_bucket_us(int i);

/* The same for job durations, which run up to minutes. */
uint64_t kiln_stats_job_bucket_us(int i);

/* Create the scoreboard file at path, mode 0644, and map it shared. The
 * file is written under a temporary name and renamed into place, so a
 * reader that still maps an earlier file at path keeps that one intact and
 * never sees a half-made one. routes/methods/patterns label the route
 * slots (extra routes beyond KILN_STATS_MAX_ROUTES count as "other");
 * counter_names label the app counters (NULL-terminated list, may be NULL).
 * Returns 0, or -1 with errno. */
int kiln_stats_create(struct kiln_stats *st, const char *path, const char *app,
                      const char *const *methods, const char *const *patterns, size_t nroutes,
                      const char *const *counter_names);

/* Label the job-kind rows of a scoreboard just created (kiln-worker: its
 * table of kinds, NULL-terminated), before any worker records a job. Kinds
 * beyond KILN_STATS_MAX_KINDS are left out and count as "other". Returns
 * the number of kinds labelled. */
int kiln_stats_label_kinds(struct kiln_stats *st, const char *const *kinds);

/* Map an existing scoreboard read-only. Returns 0, or -1 (errno; EINVAL for
 * a file that is not a kiln scoreboard of this layout version). */
int kiln_stats_open(struct kiln_stats *st, const char *path);

/* Unmap. */
void kiln_stats_close(struct kiln_stats *st);

/* Slot i, or NULL when out of range. */
struct kiln_stats_slot *kiln_stats_slot(const struct kiln_stats *st, int i);

/* The master: slot i for a new worker, marked taken (slots_used), so the
 * rendering reads only the slots that can hold figures. Returns the slot,
 * or NULL when out of range or st is not the writable mapping. */
struct kiln_stats_slot *kiln_stats_take(struct kiln_stats *st, int i);

/* Worker side: mark the start and the end of a request in its slot. route is
 * the index into the route table (or KILN_STATS_ROUTE_UNMATCHED). */
void kiln_stats_begin(struct kiln_stats_slot *s, const char *method, const char *route_pattern);
void kiln_stats_end(struct kiln_stats_slot *s, int route, int status, int64_t duration_ns,
                    uint64_t bytes_in, uint64_t bytes_out);

/* Add n to app counter i of slot s. */
void kiln_stats_count(struct kiln_stats_slot *s, int counter, uint64_t n);

/* Worker side: record one PostgreSQL statement (outcome is an enum
 * kiln_stats_db_outcome; duration_ns < 0 when it never reached the server,
 * which leaves the histogram alone), or one connection attempt. */
void kiln_stats_db_query(struct kiln_stats_db *d, int outcome, int64_t duration_ns);
void kiln_stats_db_connect(struct kiln_stats_db *d, int ok);

/* Worker side: record one run of a job. kind is the index of its kind in
 * the labelled table, or KILN_STATS_KIND_OTHER (also for any index out of
 * range); outcome is an enum kiln_stats_job_outcome. */
void kiln_stats_job(struct kiln_stats_slot *s, int kind, int outcome, int64_t duration_ns);

/* The finite upper bounds of the HTTP, PostgreSQL and job histograms. */
extern const uint64_t kiln_stats_http_bounds_us[KILN_STATS_BUCKETS];
extern const uint64_t kiln_stats_db_bounds_us[KILN_STATS_BUCKETS];
extern const uint64_t kiln_stats_job_bounds_us[KILN_STATS_BUCKETS];

/* How many slots a reader must sum: those a master has ever taken. */
uint32_t kiln_stats_used(const struct kiln_stats *st);

/* Sum of one route's figures over every slot (for admin and tests). */
void kiln_stats_route_total(const struct kiln_stats *st, int route, struct kiln_stats_route *out);

/* Render the scoreboards boards[0..n) as one Prometheus text exposition
 * (format 0.0.4). Each family appears once, with HELP and TYPE, and holds
 * the samples of every board, labelled app="<app>":
 *   kiln_http_requests_total{route,method,code}   code is the status class, "2xx"
 *   kiln_http_request_duration_seconds{route,method}   histogram
 *   kiln_http_request_bytes_total, kiln_http_response_bytes_total{route,method}
 *   kiln_http_requests_in_flight
 *   kiln_workers{state}, kiln_worker_restarts_total{reason}
 *   kiln_db_queries_total, kiln_db_query_errors_total{reason},
 *   kiln_db_query_duration_seconds (histogram), kiln_db_connects_total,
 *   kiln_db_connect_errors_total
 *   kiln_build_info{version,commit}
 *   kiln_jobs_executed_total{kind,outcome}, kiln_job_duration_seconds{kind}
 *   (histogram): boards with labelled job kinds, each kind that has run
 *   kiln_<counter>_total for each app counter (merged by name across boards).
 *   A counter named "family:label=value" is the series
 *   kiln_family_total{label="value"}, so several counters form one
 *   family with a bounded label (kiln-auth's logins by outcome).
 * The HTTP families cover only boards of programs with routes (kiln-worker
 * has none). A board whose app repeats an earlier board's is skipped, so no
 * label set appears twice; so is an app counter whose name would be one of
 * the families above. Returns 0, or -1 when out of memory. */
int kiln_stats_render(const struct kiln_stats *const *boards, size_t n, struct kiln_buf *out);

/* For families a program renders after the scoreboards' (kiln-metrics:
 * process_*, the job queue): append "# HELP name help" and "# TYPE name type"
 * lines, or one sample `name{l1="v1",...} value`. labels alternates names
 * and values and ends with NULL (may be NULL for no labels); values are
 * escaped. value is printed with up to 15 significant digits, so integers
 * below 10^15 come out exact. Each returns 0, or -1 when out of memory. */
int kiln_stats_prom_family(struct kiln_buf *out, const char *name, const char *type,
                           const char *help);
int kiln_stats_prom_sample(struct kiln_buf *out, const char *name, const char *const *labels,
                           double value);

/* ---------------------------------------------------------------- every board on the host */

#define KILN_STATS_MAX_BOARDS 32

/* The scoreboards of the programs running now (kiln-metrics, kiln-admin),
 * mapped read-only, sorted by app. */
struct kiln_stats_boards {
	struct kiln_stats st[KILN_STATS_MAX_BOARDS];
	const struct kiln_stats *sorted[KILN_STATS_MAX_BOARDS];
	size_t n;
};

/* Map every <run_dir>/<app>.stats whose master is alive, one per app. A
 * file that vanished meanwhile is skipped; one that cannot be read (not a
 * scoreboard of this version, no permission) or repeats an app is skipped
 * and logged. Mapping afresh each time costs a few page faults and needs no
 * bookkeeping: a program that restarted has renamed a new file over its old
 * one. Returns the number of files skipped with a warning (0 when all went
 * well), or -1 when run_dir cannot be read (logged). */
int kiln_stats_boards_open(struct kiln_stats_boards *b, const char *run_dir);
void kiln_stats_boards_close(struct kiln_stats_boards *b);

#endif
