/* kiln-metrics internals: the scoreboards of every program, their processes
 * in /proc, the job queue in PostgreSQL, the optional bearer token. */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stddef.h>
#include <sys/types.h>

#include "kiln/buf.h"
#include "kiln/config.h"
#include "kiln/stats.h"

struct kiln_req;

/* Scoreboard counters of kiln-metrics, in the order of metrics_counter_names. */
enum metrics_counter {
	C_SCRAPE_ERRORS, /* a source left out of a scrape: the job queue, a scoreboard */
};
extern const char *const metrics_counter_names[];
void metrics_count(enum metrics_counter c);

/* process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_start_time_seconds, each {app}: the master of
 * each board plus its live workers, from /proc. Returns 0, or -1 on OOM. */
int metrics_process_render(const struct kiln_stats_boards *b, struct kiln_buf *out);

/* Bring the job-queue figures up to date when they are older than
 * [metrics] cache. Returns 0, or -1 when PostgreSQL could not give them
 * (logged and counted as a scrape error; the figures are then absent). */
int metrics_jobs_update(const struct kiln_config *cfg);

/* kiln_jobs{state} and kiln_jobs_oldest_available_age_seconds from the last
 * good update; nothing after a failed one. Returns 0, or -1 on OOM. */
int metrics_jobs_render(struct kiln_buf *out);

/* [metrics] token: a check for -t, the digest to compare with per worker,
 * and the check of a request. metrics_token_check returns 0, or -1 with
 * a reason in err. metrics_token_allows returns 1 when no token is set or
 * the request carries it as a bearer token, else 0. */
int metrics_token_check(const struct kiln_config *cfg, char *err, size_t errlen);
void metrics_token_init(const struct kiln_config *cfg);
int metrics_token_allows(const struct kiln_req *req);

/* GET /metrics. */
int metrics_get(struct kiln_req *req);

#endif
