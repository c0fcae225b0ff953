/* GET /admin/api/stats: the dashboard's live figures. Rates and percentiles
 * come from the scoreboards of every program on the host compared with a
 * snapshot about a minute old (libcommon window); the workers table from
 * their slots; the queue depth from PostgreSQL, left null when it cannot
 * answer so the rest is still served. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kiln/jobs.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "kiln/window.h"
#include "admin.h"

/* The queue is a nicety next to the boards: do not wait long for it. */
#define STATS_QUEUE_TIMEOUT_MS 500

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static const char *const worker_states[] = {"empty", "starting", "idle", "busy", "exiting"};

/* Kept out of the stack: each is a few kilobytes. */
static struct kiln_window_snap snap_now, snap_base;

/* A number, or null when negative (no data). */
static void stats_num(struct kiln_buf *b, const char *name, double v)
{
	if (v < 0)
		kiln_buf_printf(b, ",\"%s\":null", name);
	else
		kiln_buf_printf(b, ",\"%s\":%.3f", name, v);
}

static void stats_workers(struct kiln_buf *b, const struct kiln_stats *st, int64_t now_wall)
{
	uint32_t i;
	int n = 0;

	kiln_buf_adds(b, ",\"workers\":[");
	for (i = 0; i < kiln_stats_used(st); i++) {
		const struct kiln_stats_slot *s = &st->slots[i];
		int32_t pid = LOAD(&s->pid), state = LOAD(&s->state);
		int64_t start = LOAD(&s->req_start_ms);
		int busy = state == KILN_WORKER_BUSY;
		char method[sizeof(s->method)], route[sizeof(s->route)];

		if (pid <= 0 || state <= KILN_WORKER_EMPTY || state > KILN_WORKER_EXITING ||
		    !kiln_pid_alive(pid))
			continue;
		kiln_strlcpy(method, s->method, sizeof(method));
		kiln_strlcpy(route, s->route, sizeof(route));
		kiln_buf_printf(b, "%s{\"pid\":%d,\"state\":\"%s\",\"method\":", n++ ? "," : "",
		                (int)pid, worker_states[state]);
		if (busy && method[0]) {
			kiln_buf_addc(b, '"');
			kiln_buf_add_json_str(b, method, strlen(method));
			kiln_buf_adds(b, "\",\"route\":\"");
			kiln_buf_add_json_str(b, route, strlen(route));
			kiln_buf_addc(b, '"');
		} else {
			kiln_buf_adds(b, "null,\"route\":null");
		}
		kiln_buf_printf(
		    b, ",\"busy_for_ms\":%lld,\"requests\":%llu,\"busy_ms_total\":%lld}",
		    (long long)(busy && start > 0 && now_wall > start ? now_wall - start : 0),
		    (unsigned long long)LOAD(&s->requests), (long long)LOAD(&s->busy_ms_total));
	}
	kiln_buf_addc(b, ']');
}

/* One entry of "apps"; returns its window in seconds. */
static double stats_app(struct kiln_buf *b, const struct kiln_stats *st,
                        const struct kiln_window_app *wa, const struct kiln_window_snap *base)
{
	struct kiln_window_rates w;

	kiln_window_rates(wa, base, snap_now.mono_ms, snap_now.wall_ms, &w);
	kiln_buf_adds(b, "{\"app\":\"");
	kiln_buf_add_json_str(b, wa->app, strnlen(wa->app, sizeof(wa->app)));
	kiln_buf_printf(b, "\",\"window_seconds\":%.3f,\"requests_total\":%llu", w.window_s,
	                (unsigned long long)w.requests_total);
	stats_num(b, "requests_per_second", w.requests_per_second);
	stats_num(b, "error_rate", w.error_rate);
	stats_num(b, "client_error_rate", w.client_error_rate);
	stats_num(b, "p50_ms", w.p50_ms);
	stats_num(b, "p95_ms", w.p95_ms);
	stats_num(b, "p99_ms", w.p99_ms);
	stats_workers(b, st, snap_now.wall_ms);
	kiln_buf_addc(b, '}');
	return w.window_s;
}

static void stats_queue(struct kiln_buf *b)
{
	struct kiln_jobs_counts jc;
	char err[256];

	if (kiln_jobs_count(kiln_server_db(), 1, STATS_QUEUE_TIMEOUT_MS, &jc, err, sizeof(err)) <
	    0) {
		kiln_warn("queue figures unavailable", "error=%s", err);
		kiln_buf_adds(b, ",\"queue\":null");
		return;
	}
	kiln_buf_printf(b,
	                ",\"queue\":{\"available\":%lld,\"running\":%lld,\"scheduled\":%lld,"
	                "\"retryable\":%lld,\"oldest_available_seconds\":%.3f}",
	                (long long)jc.count[KILN_JOB_AVAILABLE],
	                (long long)jc.count[KILN_JOB_RUNNING],
	                (long long)jc.count[KILN_JOB_SCHEDULED],
	                (long long)jc.count[KILN_JOB_RETRYABLE], jc.oldest_available_s);
}

/* Snapshot the boards, record it in the shared ring and get the one to
 * compare with. Returns it, or NULL (measure since each program started). */
static const struct kiln_window_snap *stats_window(const struct kiln_stats_boards *boards,
                                                   const char *run_dir)
{
	char path[KILN_CFG_STR_MAX + 32];
	int rc;

	kiln_window_snap_take(&snap_now, boards->sorted, boards->n, kiln_now_ms(), kiln_wall_ms());
	if ((size_t)snprintf(path, sizeof(path), "%s/admin.window", run_dir) >= sizeof(path))
		return NULL;
	rc = kiln_window_record(path, &snap_now, &snap_base);
	if (rc < 0)
		kiln_warn("stats window unavailable", "path=%s error=%s", path, strerror(errno));
	return rc == 1 ? &snap_base : NULL;
}

int admin_stats(struct kiln_req *req)
{
	const char *run_dir = kiln_server_config()->server.run_dir;
	static struct kiln_stats_boards boards;
	const struct kiln_window_snap *base;
	struct kiln_buf *b = &admin.out;
	struct admin_actor a;
	double window = 0, w;
	char now[40];
	size_t i;

	if (admin_auth(req, &a) < 0)
		return 0;
	if (kiln_stats_boards_open(&boards, run_dir) < 0)
		boards.n = 0;
	base = stats_window(&boards, run_dir);
	kiln_buf_reset(b);
	kiln_buf_printf(b, "{\"generated_at\":\"%s\"",
	                kiln_rfc3339(snap_now.wall_ms, now, sizeof(now)));
	kiln_buf_adds(b, ",\"apps\":[");
	for (i = 0; i < boards.n; i++) {
		if (i)
			kiln_buf_addc(b, ',');
		w = stats_app(b, boards.sorted[i], &snap_now.apps[i], base);
		window = w > window ? w : window;
	}
	kiln_buf_addc(b, ']');
	kiln_stats_boards_close(&boards);
	if (base)
		window = (double)(snap_now.mono_ms - base->mono_ms) / 1000.0;
	kiln_buf_printf(b, ",\"window_seconds\":%.3f", window);
	stats_queue(b);
	kiln_buf_addc(b, '}');
	return admin_send(req, 200);
}
