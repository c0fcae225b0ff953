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

struct kiln_stats_route {
	uint64_t count[KILN_STATS_CLASSES]; /* by status class */
	uint64_t duration_us_sum;
	uint64_t buckets[KILN_STATS_BUCKETS + 1]; /* non-cumulative; last is +Inf */
	uint64_t bytes_in;
	uint64_t bytes_out;
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
};

struct kiln_stats {
	struct kiln_stats_header *hdr;
	struct kiln_stats_slot *slots;
	size_t map_len;
	int writable;
};

/* Upper bound in microseconds of histogram bucket i (0 <= i < KILN_STATS_BUCKETS). */
uint64_t kiln_stats_bucket_us(int i);

/* Create (or truncate) the scoreboard file at path, mode 0644, and map it
 * shared. routes/methods/patterns label the route slots (extra routes beyond
 * KILN_STATS_MAX_ROUTES count as "other"); counter_names label the app
 * counters (NULL-terminated list, may be NULL). Returns 0, or -1 with errno. */
int kiln_stats_create(struct kiln_stats *st, const char *path, const char *app,
                      const char *const *methods, const char *const *patterns, size_t nroutes,
                      const char *const *counter_names);

/* Map an existing scoreboard read-only. Returns 0, or -1 (errno; EINVAL for
 * a file that is not a kiln scoreboard). */
int kiln_stats_open(struct kiln_stats *st, const char *path);

/* Unmap. */
void kiln_stats_close(struct kiln_stats *st);

/* Slot i, or NULL when out of range. */
struct kiln_stats_slot *kiln_stats_slot(const struct kiln_stats *st, int i);

/* Worker side: mark the start and the end of a request in its slot. route is
 * the index into the route table (or KILN_STATS_ROUTE_UNMATCHED). */
void kiln_stats_begin(struct kiln_stats_slot *s, const char *method, const char *route_pattern);
void kiln_stats_end(struct kiln_stats_slot *s, int route, int status, int64_t duration_ns,
                    uint64_t bytes_in, uint64_t bytes_out);

/* Add n to app counter i of slot s. */
void kiln_stats_count(struct kiln_stats_slot *s, int counter, uint64_t n);

/* Sum of one route's figures over every slot (for admin and tests). */
void kiln_stats_route_total(const struct kiln_stats *st, int route, struct kiln_stats_route *out);

/* Render the scoreboard as Prometheus text (format 0.0.4) families:
 * kiln_http_requests_total{app,route,method,code}, kiln_http_request_duration_seconds
 * histogram, kiln_http_request_bytes_total, kiln_http_response_bytes_total,
 * kiln_workers{app,state}, kiln_worker_restarts_total{app,reason}, app counters as
 * kiln_<name>_total{app}. Appends to out; HELP/TYPE lines are emitted only when
 * with_help is set (so several apps can be concatenated under one header).
 * Returns 0, or -1 when out of memory. */
int kiln_stats_render_prom(const struct kiln_stats *st, struct kiln_buf *out, int with_help);

#endif
