/* window: request rates and latency percentiles of every program on the
 * host over the last minute, for kiln-admin's live stats. The scoreboards
 * hold only cumulative counts, so a rate needs an earlier look: each
 * kiln-admin request takes a snapshot of every board's totals and keeps it
 * (at most one per second) in a small ring shared by kiln-admin's workers,
 * <run_dir>/admin.window (mmap, serialised with flock). The figures compare
 * now with the newest snapshot at least KILN_WINDOW_SECONDS old, or the
 * oldest there is; a program missing from that snapshot, or restarted
 * since (another master pid or start time), is measured since it started.
 *
 * The pure parts (snapshot, ring, rates, quantiles) take the clocks as
 * arguments, so tests drive them without waiting. */
#ifndef KILN_WINDOW_H
#define KILN_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/stats.h"

#define KILN_WINDOW_MAGIC   "KILNWIN1"
#define KILN_WINDOW_SECONDS 60
#define KILN_WINDOW_SLOTS   64   /* > KILN_WINDOW_SECONDS snapshots at one per second */
#define KILN_WINDOW_GAP_MS  1000 /* at most one snapshot per this */

/* One program's cumulative figures at the time of a snapshot. */
struct kiln_window_app {
	char app[32];
	int32_t master_pid; /* with start_wall_ms: which run of the program */
	int32_t pad;
	int64_t start_wall_ms;
	uint64_t requests;
	uint64_t count[KILN_STATS_CLASSES];       /* by status class */
	uint64_t buckets[KILN_STATS_BUCKETS + 1]; /* durations, non-cumulative */
};

struct kiln_window_snap {
	int64_t mono_ms; /* CLOCK_MONOTONIC: one clock for every process of the host */
	int64_t wall_ms;
	uint32_t napps;
	uint32_t pad;
	struct kiln_window_app apps[KILN_STATS_MAX_BOARDS];
};

/* The shared file: a header and the ring of snapshots. */
struct kiln_window_ring {
	char magic[8];
	uint32_t version;
	uint32_t nslots;
	uint32_t head;  /* index of the newest snapshot */
	uint32_t count; /* snapshots held, 0..KILN_WINDOW_SLOTS */
	struct kiln_window_snap snaps[KILN_WINDOW_SLOTS];
};

/* One program's figures over its window. */
struct kiln_window_rates {
	double window_s;         /* the time the figures cover */
	uint64_t requests_total; /* since the program started */
	uint64_t requests;       /* within the window */
	double requests_per_second;
	double error_rate;             /* 5xx / requests, 0 without requests */
	double client_error_rate;      /* 4xx / requests */
	double p50_ms, p95_ms, p99_ms; /* < 0 without requests */
};

/* Fill s with the totals of boards[0..n) (at most KILN_STATS_MAX_BOARDS)
 * taken at the given clocks; a board without routes counts no requests. */
void kiln_window_snap_take(struct kiln_window_snap *s, const struct kiln_stats *const *boards,
                           size_t n, int64_t mono_ms, int64_t wall_ms);

/* Make r an empty ring (header set, no snapshots). */
void kiln_window_ring_init(struct kiln_window_ring *r);

/* The snapshot to compare a look at mono_ms with: the newest one at least
 * KILN_WINDOW_SECONDS old, else the oldest one older than mono_ms. Returns
 * it, or NULL when there is none. */
const struct kiln_window_snap *kiln_window_ring_base(const struct kiln_window_ring *r,
                                                     int64_t mono_ms);

/* Add s unless the newest snapshot is less than KILN_WINDOW_GAP_MS older
 * (the oldest is overwritten when the ring is full). A ring whose newest
 * snapshot lies in s's future (another boot) is emptied first. Returns 1
 * when s was added, 0 when not. */
int kiln_window_ring_push(struct kiln_window_ring *r, const struct kiln_window_snap *s);

/* The figures of program a (from the snapshot taken at now_mono/now_wall)
 * against base (may be NULL): since the program started when base lacks it
 * or holds another run of it. */
void kiln_window_rates(const struct kiln_window_app *a, const struct kiln_window_snap *base,
                       int64_t now_mono, int64_t now_wall, struct kiln_window_rates *out);

/* Quantile q (0..1) in milliseconds of a duration histogram of the request
 * buckets (kiln_stats_bucket_us; the last is +Inf), interpolated linearly
 * inside the bucket that holds it (a rank in +Inf gives the largest finite
 * bound). Returns it, or -1 when the histogram is empty. */
double kiln_window_quantile(const uint64_t *buckets, double q);

/* Record now in the ring file at path (created, or re-made when it is not
 * a ring of this layout) under an exclusive flock, after copying the
 * snapshot to compare with into *base. Returns 1 with *base set, 0 when
 * the ring had no snapshot to compare with, or -1 with errno when the file
 * cannot be used (the caller then measures since each program started). */
int kiln_window_record(const char *path, const struct kiln_window_snap *now,
                       struct kiln_window_snap *base);

#endif
