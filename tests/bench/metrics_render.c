/* metrics_render: how long kiln-metrics takes to turn the scoreboards of a
 * busy host into /metrics, without the job-queue SQL (cached for seconds).
 * It makes 6 programs' scoreboards in a temporary run_dir (5 with 20 routes
 * and app counters, 1 like kiln-worker with job kinds), gives each 8 busy
 * workers (real child processes, so the /proc part reads real files) and
 * figures in every route and bucket, then times what one scrape does:
 * kiln_stats_boards_open, kiln_stats_render, metrics_process_render,
 * kiln_stats_boards_close. Prints mean, p50, p99 and max in ms; exits 1
 * when the mean is over the 5 ms budget.
 * Usage: metrics_render [ITERATIONS]   (default 2000) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln/buf.h"
#include "kiln/stats.h"
#include "kiln/util.h"
#include "metrics.h"

#define APPS      6
#define WORKERS   8
#define ROUTES    20
#define BUDGET_MS 5.0

static const char *const apps[APPS] = {"admin", "api", "auth", "health", "metrics", "worker"};
static const char *const counters[] = {
    "c_one", "c_two", "c_three", "logins:outcome=success", "logins:outcome=bad_credentials", NULL};
static const char *const kinds[] = {"noop", "grade_submission", "fail", "sleep", "count", NULL};

static pid_t children[APPS * WORKERS];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Figures in every route, bucket, counter and job row of one slot. */
static void fill_slot(struct kiln_stats_slot *s, int app, int nroutes)
{
	int r, i;

	for (r = 0; r < nroutes; r++)
		for (i = 0; i <= KILN_STATS_BUCKETS; i++)
			kiln_stats_end(s, r, i % 7 ? 200 : 404,
			               (int64_t)kiln_stats_bucket_us(i) * 900, 100, 1000);
	for (i = 0; i < 50; i++)
		kiln_stats_db_query(&s->db, i % 9 ? KILN_STATS_DB_OK : KILN_STATS_DB_REFUSED,
		                    (int64_t)i * 20000);
	for (i = 0; i < 5; i++)
		kiln_stats_count(s, i, (uint64_t)(app + 1) * 10);
	for (r = 0; app == APPS - 1 && r < 5; r++)
		for (i = 0; i <= KILN_STATS_BUCKETS; i++)
			kiln_stats_job(s, r, i % KILN_STATS_JOB_OUTCOMES,
			               (int64_t)kiln_stats_job_bucket_us(i) * 900);
	kiln_stats_begin(s, "GET", "/bench/{id}");
}

static int make_boards(const char *dir, struct kiln_stats *st)
{
	const char *methods[ROUTES], *patterns[ROUTES];
	char path[4096], pat[ROUTES][32];
	int a, w, r, nroutes;

	for (r = 0; r < ROUTES; r++) {
		snprintf(pat[r], sizeof(pat[r]), "/bench/r%d/{id}", r);
		methods[r] = r % 2 ? "POST" : "GET";
		patterns[r] = pat[r];
	}
	for (a = 0; a < APPS; a++) {
		nroutes = a == APPS - 1 ? 0 : ROUTES;
		snprintf(path, sizeof(path), "%s/%s.stats", dir, apps[a]);
		if (kiln_stats_create(&st[a], path, apps[a], methods, patterns, (size_t)nroutes,
		                      counters) < 0) {
			perror(path);
			return -1;
		}
		if (a == APPS - 1)
			kiln_stats_label_kinds(&st[a], kinds);
		for (w = 0; w < WORKERS; w++) {
			struct kiln_stats_slot *s = kiln_stats_take(&st[a], w);

			s->pid = (int32_t)children[a * WORKERS + w];
			s->state = KILN_WORKER_IDLE;
			fill_slot(s, a, nroutes);
		}
	}
	return 0;
}

/* One scrape minus the job queue, as apps/metrics/scrape.c does it.
 * Returns its duration in ms, or -1. */
static double scrape(const char *dir, struct kiln_stats_boards *b, struct kiln_buf *out)
{
	double t0 = now_ms();
	int rc;

	kiln_buf_reset(out);
	if (kiln_stats_boards_open(b, dir) != 0 || b->n != APPS)
		return -1;
	rc = kiln_stats_render(b->sorted, b->n, out);
	if (rc == 0)
		rc = metrics_process_render(b, out);
	kiln_stats_boards_close(b);
	return rc == 0 ? now_ms() - t0 : -1;
}

int main(int argc, char **argv)
{
	static struct kiln_stats_boards boards;
	struct kiln_stats st[APPS] = {0};
	struct kiln_buf out;
	char dir[] = "/tmp/kiln-bench-metrics.XXXXXX", path[4096];
	int iters = argc > 1 ? atoi(argv[1]) : 2000, i, rc = 1;
	double *ms, sum = 0, mean;

	if (iters < 10 || iters > 1000000 || mkdtemp(dir) == NULL)
		return 2;
	ms = calloc((size_t)iters, sizeof(*ms));
	if (ms == NULL)
		return 2;
	for (i = 0; i < APPS * WORKERS; i++) {
		children[i] = fork();
		if (children[i] == 0) {
			pause();
			_exit(0);
		}
	}
	kiln_buf_init(&out);
	if (make_boards(dir, st) < 0)
		goto done;
	for (i = 0; i < 20; i++) /* warm up: page cache, allocator */
		scrape(dir, &boards, &out);
	for (i = 0; i < iters; i++) {
		ms[i] = scrape(dir, &boards, &out);
		if (ms[i] < 0) {
			fprintf(stderr, "metrics_render: a scrape failed\n");
			goto done;
		}
		sum += ms[i];
	}
	qsort(ms, (size_t)iters, sizeof(*ms), cmp_double);
	mean = sum / iters;
	printf("metrics render: %d apps x %d busy workers, %zu bytes, %d scrapes: "
	       "mean %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.3f ms (budget %.1f ms: %s)\n",
	       APPS, WORKERS, out.len, iters, mean, ms[iters / 2], ms[iters * 99 / 100],
	       ms[iters - 1], BUDGET_MS, mean < BUDGET_MS ? "ok" : "OVER");
	rc = mean < BUDGET_MS ? 0 : 1;
done:
	for (i = 0; i < APPS * WORKERS; i++)
		if (children[i] > 0) {
			kill(children[i], SIGTERM);
			waitpid(children[i], NULL, 0);
		}
	for (i = 0; i < APPS; i++) {
		kiln_stats_close(&st[i]);
		snprintf(path, sizeof(path), "%s/%s.stats", dir, apps[i]);
		unlink(path);
	}
	rmdir(dir);
	kiln_buf_free(&out);
	free(ms);
	return rc;
}
