/* test_stats: the scoreboard file, its writers and readers, the PostgreSQL
 * figures db.c records in it, and the Prometheus text it renders. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/buf.h"
#include "kiln/config.h"
#include "kiln/db.h"
#include "kiln/stats.h"
#include "kiln/util.h"

#define MS 1000000LL /* nanoseconds */
#define US 1000LL

static const char *const methods[] = {"GET", "POST"};
static const char *const patterns[] = {"/a", "/b/{id}"};
static const char *const counters[] = {"logins", "cache-hits", NULL};

struct fixture {
	char path[64];
	struct kiln_stats w; /* the master's writable mapping */
	struct kiln_stats r; /* a reader's read-only mapping of the same file */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (f == NULL)
		return -1;
	strcpy(f->path, "/tmp/kiln-stats-XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0)
		return -1;
	close(fd);
	if (kiln_stats_create(&f->w, f->path, "t", methods, patterns, 2, counters) < 0 ||
	    kiln_stats_open(&f->r, f->path) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kiln_stats_close(&f->r);
	kiln_stats_close(&f->w);
	unlink(f->path);
	free(f);
	return 0;
}

/* A worker takes slot i: what the server does when it forks one. */
static struct kiln_stats_slot *take_slot(struct fixture *f, int i, int32_t pid)
{
	struct kiln_stats_slot *s = kiln_stats_take(&f->w, i);

	assert_non_null(s);
	s->pid = pid;
	s->state = KILN_WORKER_IDLE;
	return s;
}

static void request(struct kiln_stats_slot *s, int route, int status, int64_t ns)
{
	kiln_stats_begin(s, "GET", "/a");
	kiln_stats_end(s, route, status, ns, 10, 20);
}

/* Render boards into a fresh b; returns the text. */
static char *render_boards(const struct kiln_stats *const *boards, size_t n, struct kiln_buf *b)
{
	kiln_buf_init(b);
	assert_int_equal(kiln_stats_render(boards, n, b), 0);
	return b->data;
}

static char *render(struct fixture *f, struct kiln_buf *b)
{
	const struct kiln_stats *one = &f->r;

	return render_boards(&one, 1, b);
}

/* The sample lines of text, without the HELP and TYPE comments. */
static char *samples_only(const char *text, struct kiln_buf *out)
{
	const char *line, *nl;

	kiln_buf_init(out);
	for (line = text; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		if (line[0] != '#')
			assert_int_equal(kiln_buf_add(out, line, (size_t)(nl - line + 1)), 0);
	}
	return out->data;
}

static void test_bucket_bounds_are_the_documented_ones(void **state)
{
	static const uint64_t want[KILN_STATS_BUCKETS] = {
	    500,    1000,   2500,   5000,    10000,   25000,   50000,
	    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
	int i;

	(void)state;
	for (i = 0; i < KILN_STATS_BUCKETS; i++)
		assert_int_equal(kiln_stats_bucket_us(i), want[i]);
	assert_int_equal(kiln_stats_bucket_us(-1), UINT64_MAX);
	assert_int_equal(kiln_stats_bucket_us(KILN_STATS_BUCKETS), UINT64_MAX);
}

static void test_reader_sees_header_written_by_creator(void **state)
{
	struct fixture *f = *state;
	const struct kiln_stats_header *h = f->r.hdr;

	assert_memory_equal(h->magic, KILN_STATS_MAGIC, 8);
	assert_int_equal(h->nslots, KILN_STATS_MAX_SLOTS);
	assert_int_equal(h->nroutes, 2);
	assert_int_equal(h->ncounters, 2);
	assert_string_equal(h->app, "t");
	assert_int_equal(h->master_pid, getpid());
	assert_true(h->start_wall_ms > kiln_wall_ms() - 5000 && h->start_wall_ms <= kiln_wall_ms());
	assert_string_equal(h->route_method[1], "POST");
	assert_string_equal(h->route_pattern[1], "/b/{id}");
	assert_string_equal(h->counter_name[1], "cache-hits");
	assert_int_equal(f->r.writable, 0);
	assert_int_equal(f->w.writable, 1);
	assert_null(kiln_stats_slot(&f->r, -1));
	assert_null(kiln_stats_slot(&f->r, KILN_STATS_MAX_SLOTS));
	assert_non_null(kiln_stats_slot(&f->r, KILN_STATS_MAX_SLOTS - 1));
}

static void test_begin_marks_busy_and_end_marks_idle(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	const struct kiln_stats_slot *rs = kiln_stats_slot(&f->r, 0);
	int64_t before = kiln_wall_ms();

	kiln_stats_begin(s, "DELETE", "/b/{id}");
	assert_int_equal(rs->state, KILN_WORKER_BUSY);
	assert_string_equal(rs->method, "DELETE");
	assert_string_equal(rs->route, "/b/{id}");
	assert_true(rs->req_start_ms >= before && rs->req_start_ms <= kiln_wall_ms());
	kiln_stats_end(s, 1, 204, 1500 * MS, 0, 0);
	assert_int_equal(rs->state, KILN_WORKER_IDLE);
	assert_int_equal(rs->req_start_ms, 0);
	assert_int_equal(rs->requests, 1);
	assert_int_equal(rs->busy_ms_total, 1500);
}

static void test_route_total_sums_both_slots(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *a = take_slot(f, 0, getpid());
	struct kiln_stats_slot *b = take_slot(f, 1, getpid());
	struct kiln_stats_route t;

	request(a, 0, 200, 1 * MS);
	request(a, 0, 500, 2 * MS);
	request(b, 0, 201, 3 * MS);
	request(b, 1, 404, 4 * MS);
	kiln_stats_route_total(&f->r, 0, &t);
	assert_int_equal(t.count[1], 2);
	assert_int_equal(t.count[4], 1);
	assert_int_equal(t.duration_us_sum, 6000);
	assert_int_equal(t.bytes_in, 30);
	assert_int_equal(t.bytes_out, 60);
	kiln_stats_route_total(&f->r, 1, &t);
	assert_int_equal(t.count[3], 1);
	assert_int_equal(kiln_stats_slot(&f->r, 0)->requests, 2);
	assert_int_equal(kiln_stats_slot(&f->r, 1)->requests, 2);
	kiln_stats_route_total(&f->r, 99, &t);
	assert_int_equal(t.count[1] + t.bytes_in, 0);
}

static void test_histogram_bucket_edges_are_inclusive(void **state)
{
	static const struct {
		int64_t ns;
		int bucket;
	} cases[] = {
	    {-5 * MS, 0},
	    {0, 0},
	    {500 * US, 0},
	    {500 * US + 999, 0}, /* rounds down to 500 us */
	    {501 * US, 1},
	    {1000 * US, 1},
	    {2500 * US, 2},
	    {2501 * US, 3},
	    {1000 * MS, 10},
	    {1000 * MS + US, 11},
	    {10000 * MS, 13},
	    {10000 * MS + US, KILN_STATS_BUCKETS},
	    {3600000 * MS, KILN_STATS_BUCKETS},
	};
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_stats_route t;
	uint64_t before;
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		kiln_stats_route_total(&f->r, 0, &t);
		before = t.buckets[cases[i].bucket];
		request(s, 0, 200, cases[i].ns);
		kiln_stats_route_total(&f->r, 0, &t);
		assert_int_equal(t.buckets[cases[i].bucket], before + 1);
	}
}

static void test_status_classes_are_clamped(void **state)
{
	static const struct {
		int status, cls;
	} cases[] = {{0, 1}, {99, 1}, {100, 1}, {204, 2}, {302, 3}, {499, 4}, {503, 5}, {999, 5}};
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_stats_route t;
	uint64_t want[KILN_STATS_CLASSES] = {0};
	size_t i;
	int k;

	for (i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		request(s, 1, cases[i].status, MS);
		want[cases[i].cls - 1]++;
	}
	kiln_stats_route_total(&f->r, 1, &t);
	for (k = 0; k < KILN_STATS_CLASSES; k++)
		assert_int_equal(t.count[k], want[k]);
}

static void test_out_of_range_route_counts_as_other(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_stats_route t;

	request(s, -1, 200, MS);
	request(s, KILN_STATS_ROUTES, 200, MS);
	request(s, 1000, 200, MS);
	request(s, 5, 200, MS); /* inside the table but past the 2 labelled routes */
	request(s, KILN_STATS_ROUTE_UNMATCHED, 404, MS);
	kiln_stats_route_total(&f->r, KILN_STATS_ROUTE_OTHER, &t);
	assert_int_equal(t.count[1], 4);
	kiln_stats_route_total(&f->r, KILN_STATS_ROUTE_UNMATCHED, &t);
	assert_int_equal(t.count[3], 1);
}

static void test_counters_survive_a_worker_restart(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 3, getpid());
	struct kiln_stats_route t;
	struct kiln_buf b;

	request(s, 0, 200, MS);
	request(s, 0, 200, MS);
	kiln_stats_count(s, 0, 5);
	kiln_stats_count(s, -1, 100);                      /* ignored */
	kiln_stats_count(s, KILN_STATS_MAX_COUNTERS, 100); /* ignored */
	/* The master replaces the worker: only pid and state change. */
	s->pid = getppid();
	s->state = KILN_WORKER_STARTING;
	s->state = KILN_WORKER_IDLE;
	request(s, 0, 200, MS);
	kiln_stats_count(s, 0, 1);
	kiln_stats_route_total(&f->r, 0, &t);
	assert_int_equal(t.count[1], 3);
	assert_int_equal(kiln_stats_slot(&f->r, 3)->requests, 3);
	assert_int_equal(kiln_stats_slot(&f->r, 3)->counters[0], 6);
	assert_non_null(strstr(render(f, &b), "\nkiln_logins_total{app=\"t\"} 6\n"));
	assert_non_null(strstr(b.data, "\nkiln_cache_hits_total{app=\"t\"} 0\n"));
	kiln_buf_free(&b);
}

/* The labels of route 0 of the fixture, and its histogram series. */
#define RT          "{app=\"t\",route=\"/a\",method=\"GET\""
#define DUR(suffix) "kiln_http_request_duration_seconds" suffix RT

static void test_render_tiny_case_exactly(void **state)
{
	static const char *const want[] = {
	    "kiln_http_requests_total" RT ",code=\"2xx\"} 1",
	    DUR("_bucket") ",le=\"0.0005\"} 0",
	    DUR("_bucket") ",le=\"0.001\"} 1",
	    DUR("_bucket") ",le=\"0.0025\"} 1",
	    DUR("_bucket") ",le=\"0.005\"} 1",
	    DUR("_bucket") ",le=\"0.01\"} 1",
	    DUR("_bucket") ",le=\"0.025\"} 1",
	    DUR("_bucket") ",le=\"0.05\"} 1",
	    DUR("_bucket") ",le=\"0.1\"} 1",
	    DUR("_bucket") ",le=\"0.25\"} 1",
	    DUR("_bucket") ",le=\"0.5\"} 1",
	    DUR("_bucket") ",le=\"1\"} 1",
	    DUR("_bucket") ",le=\"2.5\"} 1",
	    DUR("_bucket") ",le=\"5\"} 1",
	    DUR("_bucket") ",le=\"10\"} 1",
	    DUR("_bucket") ",le=\"+Inf\"} 1",
	    DUR("_sum") "} 0.001",
	    DUR("_count") "} 1",
	    "kiln_http_request_bytes_total" RT "} 10",
	    "kiln_http_response_bytes_total" RT "} 20",
	    "kiln_http_requests_in_flight{app=\"t\"} 0",
	    "kiln_workers{app=\"t\",state=\"busy\"} 0",
	    "kiln_workers{app=\"t\",state=\"idle\"} 1",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"crash\"} 2",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"max_requests\"} 0",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"timeout\"} 0",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"reload\"} 1",
	    "kiln_db_queries_total{app=\"t\"} 0",
	    "kiln_db_query_errors_total{app=\"t\",reason=\"unavailable\"} 0",
	    "kiln_db_query_errors_total{app=\"t\",reason=\"timeout\"} 0",
	    "kiln_db_query_errors_total{app=\"t\",reason=\"refused\"} 0",
	    "kiln_db_connects_total{app=\"t\"} 0",
	    "kiln_db_connect_errors_total{app=\"t\"} 0",
	    "kiln_build_info{app=\"t\",version=\"" KILN_VERSION "\",commit=\"" KILN_COMMIT "\"} 1",
	    "kiln_logins_total{app=\"t\"} 3",
	    "kiln_cache_hits_total{app=\"t\"} 0",
	};
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_buf b, samples, expect;
	size_t i;

	request(s, 0, 200, 1 * MS);
	kiln_stats_count(s, 0, 3);
	f->w.hdr->restarts[KILN_RESTART_CRASH] = 2;
	f->w.hdr->restarts[KILN_RESTART_RELOAD] = 1;
	kiln_buf_init(&expect);
	for (i = 0; i < KILN_ARRAY_LEN(want); i++)
		assert_int_equal(kiln_buf_printf(&expect, "%s\n", want[i]), 0);
	assert_string_equal(samples_only(render(f, &b), &samples), expect.data);
	kiln_buf_free(&b);
	kiln_buf_free(&samples);
	kiln_buf_free(&expect);
}
#undef DUR
#undef RT

/* The exposition rules Prometheus enforces (and promtool checks): every
 * line a HELP/TYPE comment or a well-formed sample; each family's HELP and
 * TYPE once, before its samples; the samples of a family together (a
 * histogram's _bucket/_sum/_count are its own); no series twice. */
#define MAX_LINES 4096
static void assert_exposition(const char *text)
{
	static const char *const sample_re =
	    "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
	    "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
	    "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? "
	    "([0-9]+(\\.[0-9]+)?(e[+-][0-9]+)?|NaN|[+-]Inf)$";
	static char *seen_family[MAX_LINES], *seen_series[MAX_LINES];
	char *copy = strdup(text), *line, *save = NULL, family[128] = "", type[16] = "";
	size_t nfam = 0, nser = 0, i, n;
	regmatch_t m[2];
	regex_t sample;

	assert_non_null(copy);
	assert_int_equal(regcomp(&sample, sample_re, REG_EXTENDED), 0);
	assert_true(text[0] && text[strlen(text) - 1] == '\n');
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line, "# TYPE %127s %15s", family, type), 2);
			for (i = 0; i < nfam; i++)
				if (strcmp(seen_family[i], family) == 0)
					fail_msg("family %s declared twice", family);
			assert_true(nfam < MAX_LINES);
			seen_family[nfam++] = strdup(family);
			continue;
		}
		if (regexec(&sample, line, 2, m, 0) != 0)
			fail_msg("malformed line: %s", line);
		n = (size_t)(m[1].rm_eo - m[1].rm_so);
		if (!(strlen(family) == n && strncmp(line, family, n) == 0) &&
		    !(strcmp(type, "histogram") == 0 &&
		      strncmp(line, family, strlen(family)) == 0 &&
		      (strncmp(line + strlen(family), "_bucket{", 8) == 0 ||
		       strncmp(line + strlen(family), "_sum", 4) == 0 ||
		       strncmp(line + strlen(family), "_count", 6) == 0)))
			fail_msg("sample outside its family %s: %s", family, line);
		*strrchr(line, ' ') = '\0';
		for (i = 0; i < nser; i++)
			if (strcmp(seen_series[i], line) == 0)
				fail_msg("series twice: %s", line);
		assert_true(nser < MAX_LINES);
		seen_series[nser++] = strdup(line);
	}
	for (i = 0; i < nfam; i++)
		free(seen_family[i]);
	for (i = 0; i < nser; i++)
		free(seen_series[i]);
	regfree(&sample);
	free(copy);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

static void test_render_every_line_is_well_formed(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *a = take_slot(f, 0, getpid());
	struct kiln_stats_slot *b = take_slot(f, 1, getpid());
	struct kiln_buf out;

	request(a, 0, 200, 1 * MS);
	request(a, 1, 503, 7000 * MS);
	request(b, KILN_STATS_ROUTE_UNMATCHED, 404, 200 * US);
	request(b, 77, 200, 20 * MS);
	kiln_stats_begin(b, "GET", "/a"); /* in flight */
	render(f, &out);
	assert_exposition(out.data);
	assert_int_equal(count_of(out.data, "# TYPE kiln_http_requests_total counter\n"), 1);
	assert_int_equal(
	    count_of(out.data, "# TYPE kiln_http_request_duration_seconds histogram\n"), 1);
	assert_int_equal(count_of(out.data, "# HELP kiln_workers "), 1);
	assert_non_null(
	    strstr(out.data, "{app=\"t\",route=\"unmatched\",method=\"\",code=\"4xx\"} 1\n"));
	assert_non_null(
	    strstr(out.data, "{app=\"t\",route=\"other\",method=\"\",code=\"2xx\"} 1\n"));
	assert_non_null(strstr(out.data, "route=\"/b/{id}\",method=\"POST\",code=\"5xx\"} 1\n"));
	assert_non_null(strstr(out.data, "route=\"/b/{id}\",method=\"POST\",le=\"5\"} 0\n"));
	assert_non_null(strstr(out.data, "route=\"/b/{id}\",method=\"POST\",le=\"10\"} 1\n"));
	assert_non_null(strstr(out.data, "_sum{app=\"t\",route=\"/b/{id}\",method=\"POST\"} 7\n"));
	assert_non_null(strstr(out.data, "kiln_workers{app=\"t\",state=\"busy\"} 1\n"));
	assert_non_null(strstr(out.data, "kiln_http_requests_in_flight{app=\"t\"} 1\n"));
	/* Only series that happened: no 1xx anywhere, no 3xx on /a. */
	assert_null(strstr(out.data, "code=\"1xx\""));
	kiln_buf_free(&out);
}

/* A second scoreboard beside the fixture's: app, routes, counters. */
static void make_board(struct kiln_stats *w, struct kiln_stats *r, char *path, const char *app,
                       const char *const *m, const char *const *p, size_t nroutes,
                       const char *const *names)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(kiln_stats_create(w, path, app, m, p, nroutes, names), 0);
	assert_int_equal(kiln_stats_open(r, path), 0);
	unlink(path);
}

static void test_render_merges_families_across_boards(void **state)
{
	static const char *const m2[] = {"GET", "PUT"};
	static const char *const p2[] = {"/a", "/c"};
	static const char *const c2[] = {"cache-hits", "jobs_done", NULL};
	struct fixture *f = *state;
	char path[] = "/tmp/kiln-stats-XXXXXX";
	struct kiln_stats w2, r2;
	const struct kiln_stats *boards[2];
	struct kiln_stats_slot *a0 = take_slot(f, 0, getpid());
	struct kiln_stats_slot *a1 = take_slot(f, 1, getpid());
	struct kiln_stats_slot *b0;
	struct kiln_buf out;

	make_board(&w2, &r2, path, "u", m2, p2, 2, c2);
	b0 = kiln_stats_take(&w2, 0);
	b0->pid = getpid();
	b0->state = KILN_WORKER_IDLE;
	request(a0, 0, 200, MS);
	request(a1, 0, 200, MS);
	request(a1, 0, 201, MS);
	request(b0, 0, 200, MS);
	request(b0, 1, 500, MS);
	kiln_stats_count(a0, 1, 4); /* t's cache-hits */
	kiln_stats_count(a1, 1, 5);
	kiln_stats_count(b0, 0, 7); /* u's cache-hits */
	kiln_stats_count(b0, 1, 2);
	boards[0] = &f->r;
	boards[1] = &r2;
	render_boards(boards, 2, &out);
	assert_exposition(out.data);
	/* Both apps under one header, counts summed over each app's slots. */
	assert_non_null(strstr(out.data, "kiln_http_requests_total{app=\"t\",route=\"/a\","
	                                 "method=\"GET\",code=\"2xx\"} 3\n"
	                                 "kiln_http_requests_total{app=\"u\",route=\"/a\","
	                                 "method=\"GET\",code=\"2xx\"} 1\n"
	                                 "kiln_http_requests_total{app=\"u\",route=\"/c\","
	                                 "method=\"PUT\",code=\"5xx\"} 1\n"));
	assert_non_null(strstr(out.data, "kiln_workers{app=\"t\",state=\"idle\"} 2\n"
	                                 "kiln_workers{app=\"u\",state=\"busy\"} 0\n"
	                                 "kiln_workers{app=\"u\",state=\"idle\"} 1\n"));
	/* A counter both apps have is one family with a sample per app. */
	assert_non_null(strstr(out.data, "# TYPE kiln_cache_hits_total counter\n"
	                                 "kiln_cache_hits_total{app=\"t\"} 9\n"
	                                 "kiln_cache_hits_total{app=\"u\"} 7\n"));
	assert_non_null(strstr(out.data, "kiln_jobs_done_total{app=\"u\"} 2\n"));
	assert_int_equal(count_of(out.data, "# TYPE kiln_cache_hits_total "), 1);
	assert_int_equal(count_of(out.data, "# TYPE kiln_logins_total "), 1);
	kiln_buf_free(&out);
	kiln_stats_close(&r2);
	kiln_stats_close(&w2);
}

/* The bucket lines starting with series_prefix: one per bound plus +Inf,
 * last, never decreasing, and the last one is want_count. */
static void assert_histogram_consistent(const char *text, const char *series_prefix,
                                        uint64_t want_count)
{
	const char *p = text;
	uint64_t prev = 0, v = 0;
	int nb = 0, saw_inf = 0;
	size_t plen = strlen(series_prefix);

	while ((p = strstr(p, series_prefix)) != NULL) {
		const char *sp = strchr(p, ' ');

		assert_non_null(sp);
		v = strtoull(sp + 1, NULL, 10);
		assert_true(v >= prev); /* cumulative */
		prev = v;
		saw_inf = strncmp(sp - 7, "\"+Inf\"}", 7) == 0;
		nb++;
		p += plen;
	}
	assert_int_equal(nb, KILN_STATS_BUCKETS + 1);
	assert_true(saw_inf); /* the last bucket is +Inf */
	assert_int_equal(v, want_count);
}

static void test_histogram_is_cumulative_and_inf_equals_count(void **state)
{
	static const int64_t ns[] = {100 * US, 700 * US,      3 * MS,        3 * MS,
	                             40 * MS,  2 * 1000 * MS, 60 * 1000 * MS};
	struct fixture *f = *state;
	struct kiln_stats_slot *a = take_slot(f, 0, getpid());
	struct kiln_stats_slot *b = take_slot(f, 1, getpid());
	const char *cnt;
	struct kiln_buf out;
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(ns); i++)
		request(i % 2 ? b : a, 0, 200, ns[i]);
	render(f, &out);
	assert_histogram_consistent(
	    out.data, "kiln_http_request_duration_seconds_bucket{app=\"t\",route=\"/a\"",
	    KILN_ARRAY_LEN(ns));
	cnt = strstr(out.data, "kiln_http_request_duration_seconds_count{app=\"t\",route=\"/a\"");
	assert_non_null(cnt);
	assert_int_equal(strtoull(strchr(cnt, ' ') + 1, NULL, 10), KILN_ARRAY_LEN(ns));
	/* 0.1 + 0.7 + 3 + 3 + 40 + 2000 + 60000 ms */
	assert_non_null(strstr(out.data, "_sum{app=\"t\",route=\"/a\",method=\"GET\"} 62.0468\n"));
	/* The bucket edges hold what they should: 1 at 0.5 ms, 2 at 1 ms, 4 at 5 ms. */
	assert_non_null(strstr(out.data, "method=\"GET\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(out.data, "method=\"GET\",le=\"0.001\"} 2\n"));
	assert_non_null(strstr(out.data, "method=\"GET\",le=\"0.005\"} 4\n"));
	assert_non_null(strstr(out.data, "method=\"GET\",le=\"10\"} 6\n"));
	kiln_buf_free(&out);
}

static void test_render_escapes_label_values(void **state)
{
	static const char *const m[] = {"GET"};
	static const char *const p[] = {"/q\"uote\\back\nnl"};
	char path[] = "/tmp/kiln-stats-XXXXXX";
	const struct kiln_stats *one;
	struct kiln_stats st, rd;
	struct kiln_buf b;

	(void)state;
	make_board(&st, &rd, path, "a\"pp", m, p, 1, NULL);
	kiln_stats_take(&st, 0)->pid = getpid();
	kiln_stats_end(kiln_stats_take(&st, 0), 0, 200, MS, 0, 0);
	one = &rd;
	render_boards(&one, 1, &b);
	assert_non_null(
	    strstr(b.data, "kiln_http_requests_total{app=\"a\\\"pp\","
	                   "route=\"/q\\\"uote\\\\back\\nnl\",method=\"GET\",code=\"2xx\"} 1\n"));
	assert_exposition(b.data);
	kiln_buf_free(&b);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
}

static void test_prom_sample_formats_labels_and_values(void **state)
{
	static const char *const l[] = {"app", "x\"y\\z\n", "state", "ok", NULL};
	struct kiln_buf b;

	(void)state;
	kiln_buf_init(&b);
	assert_int_equal(kiln_stats_prom_family(&b, "m", "gauge", "A test."), 0);
	assert_int_equal(kiln_stats_prom_sample(&b, "m", l, 12345678901234.0), 0);
	assert_int_equal(kiln_stats_prom_sample(&b, "m", NULL, 0.25), 0);
	assert_int_equal(kiln_stats_prom_sample(&b, "m", l + 2, 0.1 + 0.2), 0);
	assert_int_equal(kiln_stats_prom_sample(&b, "n", NULL, INFINITY), 0);
	assert_int_equal(kiln_stats_prom_sample(&b, "o", NULL, NAN), 0);
	assert_string_equal(b.data, "# HELP m A test.\n# TYPE m gauge\n"
	                            "m{app=\"x\\\"y\\\\z\\n\",state=\"ok\"} 12345678901234\n"
	                            "m 0.25\n"
	                            "m{state=\"ok\"} 0.3\n"
	                            "n +Inf\n"
	                            "o NaN\n");
	kiln_buf_free(&b);
}

static void test_duplicate_app_is_rendered_once(void **state)
{
	struct fixture *f = *state;
	const struct kiln_stats *boards[2] = {&f->r, &f->r};
	struct kiln_buf out;

	request(take_slot(f, 0, getpid()), 0, 200, MS);
	render_boards(boards, 2, &out);
	assert_exposition(out.data);
	assert_int_equal(count_of(out.data, "kiln_workers{app=\"t\",state=\"idle\"}"), 1);
	kiln_buf_free(&out);
}

static void test_counter_named_like_a_family_is_left_out(void **state)
{
	static const char *const c[] = {"http_requests", "db_connects", "fine", NULL};
	char path[] = "/tmp/kiln-stats-XXXXXX";
	const struct kiln_stats *one;
	struct kiln_stats st, rd;
	struct kiln_buf b;

	(void)state;
	make_board(&st, &rd, path, "x", methods, patterns, 2, c);
	kiln_stats_take(&st, 0)->pid = getpid();
	kiln_stats_count(kiln_stats_take(&st, 0), 0, 5);
	kiln_stats_count(kiln_stats_take(&st, 0), 2, 6);
	one = &rd;
	render_boards(&one, 1, &b);
	assert_exposition(b.data);
	assert_int_equal(count_of(b.data, "# TYPE kiln_http_requests_total "), 1);
	assert_int_equal(count_of(b.data, "# TYPE kiln_db_connects_total "), 1);
	assert_null(strstr(b.data, "kiln_http_requests_total{app=\"x\"} 5"));
	assert_non_null(strstr(b.data, "kiln_fine_total{app=\"x\"} 6\n"));
	kiln_buf_free(&b);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
}

static void test_program_without_routes_has_no_http_series(void **state)
{
	static const char *const c[] = {"jobs_completed", NULL};
	char path[] = "/tmp/kiln-stats-XXXXXX";
	const struct kiln_stats *one;
	struct kiln_stats st, rd;
	struct kiln_stats_slot *s;
	struct kiln_buf b;

	(void)state;
	make_board(&st, &rd, path, "worker", NULL, NULL, 0, c);
	s = kiln_stats_take(&st, 0);
	s->pid = getpid();
	/* kiln-worker records each job like a request on the "other" row. */
	kiln_stats_begin(s, "JOB", "grade");
	one = &rd;
	render_boards(&one, 1, &b);
	assert_exposition(b.data);
	assert_null(strstr(b.data, "kiln_http_requests_in_flight{"));
	assert_non_null(strstr(b.data, "kiln_workers{app=\"worker\",state=\"busy\"} 1\n"));
	kiln_stats_end(s, KILN_STATS_ROUTE_OTHER, 200, MS, 0, 0);
	kiln_buf_free(&b);
	render_boards(&one, 1, &b);
	assert_null(strstr(b.data, "kiln_http_requests_total{"));
	assert_null(strstr(b.data, "kiln_http_request_duration_seconds_count{"));
	kiln_buf_free(&b);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
}

static void test_db_figures_are_rendered_per_outcome(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *a = take_slot(f, 0, getpid());
	struct kiln_stats_slot *b = take_slot(f, 1, getpid());
	struct kiln_buf out;

	kiln_stats_db_query(&a->db, KILN_STATS_DB_OK, 80 * US);
	kiln_stats_db_query(&a->db, KILN_STATS_DB_OK, 2 * MS);
	kiln_stats_db_query(&b->db, KILN_STATS_DB_REFUSED, 300 * US);
	kiln_stats_db_query(&b->db, KILN_STATS_DB_TIMEOUT, 1000 * MS);
	kiln_stats_db_query(&b->db, KILN_STATS_DB_UNAVAILABLE, -1); /* never sent */
	kiln_stats_db_query(&b->db, 99, -1);                        /* clamped: unavailable */
	kiln_stats_db_connect(&a->db, 1);
	kiln_stats_db_connect(&b->db, 1);
	kiln_stats_db_connect(&b->db, 0);
	render(f, &out);
	assert_exposition(out.data);
	assert_non_null(strstr(out.data, "kiln_db_queries_total{app=\"t\"} 6\n"));
	assert_non_null(strstr(out.data,
	                       "{app=\"t\",reason=\"unavailable\"} 2\n"
	                       "kiln_db_query_errors_total{app=\"t\",reason=\"timeout\"} 1\n"
	                       "kiln_db_query_errors_total{app=\"t\",reason=\"refused\"} 1\n"));
	/* Four statements reached the server; db buckets start at 100 us. */
	assert_histogram_consistent(out.data, "kiln_db_query_duration_seconds_bucket{app=\"t\"", 4);
	assert_non_null(strstr(out.data, "_bucket{app=\"t\",le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(out.data, "_bucket{app=\"t\",le=\"0.0005\"} 2\n"));
	assert_non_null(
	    strstr(out.data, "kiln_db_query_duration_seconds_sum{app=\"t\"} 1.00238\n"));
	assert_non_null(strstr(out.data, "kiln_db_connects_total{app=\"t\"} 2\n"));
	assert_non_null(strstr(out.data, "kiln_db_connect_errors_total{app=\"t\"} 1\n"));
	assert_int_equal(kiln_stats_db_bucket_us(0), 100);
	assert_int_equal(kiln_stats_db_bucket_us(KILN_STATS_BUCKETS), UINT64_MAX);
	kiln_buf_free(&out);
}

/* db.c counts into the slot it is given; with nothing listening, a
 * statement fails as unavailable without reaching any server. */
static void test_db_handle_counts_into_its_slot(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_cfg_database cfg;
	struct kiln_db *db;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.url, sizeof(cfg.url), "host=/nonexistent-kiln dbname=x user=x");
	cfg.connect_timeout_ms = 200;
	db = kiln_db_new(&cfg);
	assert_non_null(db);
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err))); /* not counted */
	kiln_db_set_stats(db, &s->db);
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	kiln_db_set_stats(db, NULL);
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_int_equal(s->db.outcomes[KILN_STATS_DB_UNAVAILABLE], 2);
	assert_int_equal(s->db.outcomes[KILN_STATS_DB_OK], 0);
	/* At most the first of the two tried to connect; the second found the
	 * backoff in force. Nothing reached the histogram. */
	assert_true(s->db.connect_failures <= 1);
	assert_int_equal(s->db.connects, 0);
	assert_int_equal(s->db.buckets[0] + s->db.buckets[KILN_STATS_BUCKETS], 0);
	kiln_db_free(db);
}

/* Regression: creating the file again (a restarted master) used to truncate
 * the file a reader had mapped, zeroing the figures under it (or raising
 * SIGBUS while it was short). Now the new file is renamed into place. */
static void test_create_again_leaves_readers_their_file(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats again, fresh;

	request(take_slot(f, 0, getpid()), 0, 200, MS);
	assert_int_equal(kiln_stats_create(&again, f->path, "t", methods, patterns, 2, counters),
	                 0);
	assert_int_equal(kiln_stats_slot(&f->r, 0)->requests, 1);
	assert_int_equal(kiln_stats_open(&fresh, f->path), 0);
	assert_int_equal(kiln_stats_slot(&fresh, 0)->requests, 0);
	kiln_stats_slot(&again, 0)->requests = 9;
	assert_int_equal(kiln_stats_slot(&fresh, 0)->requests, 9);
	kiln_stats_close(&fresh);
	kiln_stats_close(&again);
}

static void test_dead_worker_is_not_counted(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf b;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	take_slot(f, 0, getpid())->state = KILN_WORKER_BUSY;
	take_slot(f, 1, (int32_t)child)->state = KILN_WORKER_BUSY; /* died mid-request */
	take_slot(f, 2, 0)->state = KILN_WORKER_IDLE;              /* no pid */
	render(f, &b);
	assert_non_null(strstr(b.data, "kiln_workers{app=\"t\",state=\"busy\"} 1\n"));
	assert_non_null(strstr(b.data, "kiln_workers{app=\"t\",state=\"idle\"} 0\n"));
	kiln_buf_free(&b);
}

static void test_extra_routes_are_dropped_from_the_table(void **state)
{
	static const char *m[KILN_STATS_MAX_ROUTES + 5], *p[KILN_STATS_MAX_ROUTES + 5];
	struct fixture *f = *state;
	struct kiln_stats st;
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(m); i++) {
		m[i] = "GET";
		p[i] = "/r";
	}
	assert_int_equal(kiln_stats_create(&st, f->path, "x", m, p, KILN_ARRAY_LEN(m), NULL), 0);
	assert_int_equal(st.hdr->nroutes, KILN_STATS_MAX_ROUTES);
	assert_int_equal(st.hdr->ncounters, 0);
	kiln_stats_close(&st);
}

static void test_open_rejects_a_file_that_is_not_a_scoreboard(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats st;
	char junk[4096];
	int fd;

	memset(junk, 'x', sizeof(junk));
	/* Right size, wrong magic. */
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, 8, 0), 8);
	close(fd);
	errno = 0;
	assert_int_equal(kiln_stats_open(&st, f->path), -1);
	assert_int_equal(errno, EINVAL);
	/* Too short. */
	fd = open(f->path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(kiln_stats_open(&st, f->path), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(st.hdr);
	assert_int_equal(kiln_stats_open(&st, "/nonexistent/kiln.stats"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(kiln_stats_open(&st, "/tmp"), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_job_runs_render_by_kind_and_outcome(void **state)
{
	static const char *const kinds[] = {"noop", "grade", NULL};
	static const char *const want[] = {
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"noop\",outcome=\"completed\"} 2",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"noop\",outcome=\"failed\"} 1",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"noop\",outcome=\"discarded\"} 0",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"noop\",outcome=\"interrupted\"} 0",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"other\",outcome=\"completed\"} 0",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"other\",outcome=\"failed\"} 0",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"other\",outcome=\"discarded\"} 2",
	    "kiln_jobs_executed_total{app=\"worker\",kind=\"other\",outcome=\"interrupted\"} 0",
	    "kiln_job_duration_seconds_bucket{app=\"worker\",kind=\"noop\",le=\"0.001\"} 1",
	    "kiln_job_duration_seconds_bucket{app=\"worker\",kind=\"noop\",le=\"0.005\"} 2",
	    "kiln_job_duration_seconds_bucket{app=\"worker\",kind=\"noop\",le=\"300\"} 3",
	    "kiln_job_duration_seconds_bucket{app=\"worker\",kind=\"noop\",le=\"+Inf\"} 3",
	    "kiln_job_duration_seconds_sum{app=\"worker\",kind=\"noop\"} 120.006",
	    "kiln_job_duration_seconds_count{app=\"worker\",kind=\"noop\"} 3",
	    "kiln_job_duration_seconds_count{app=\"worker\",kind=\"other\"} 2",
	};
	char path[] = "/tmp/kiln-stats-XXXXXX";
	const struct kiln_stats *one;
	struct kiln_stats st, rd;
	struct kiln_stats_slot *a, *b;
	struct kiln_buf out;
	size_t i;

	(void)state;
	make_board(&st, &rd, path, "worker", NULL, NULL, 0, NULL);
	assert_int_equal(kiln_stats_label_kinds(&st, kinds), 2);
	assert_int_equal(kiln_stats_label_kinds(&rd, kinds), 0); /* read-only */
	assert_int_equal(rd.hdr->nkinds, 2);
	assert_string_equal(rd.hdr->job_kind[1], "grade");
	a = kiln_stats_take(&st, 0);
	b = kiln_stats_take(&st, 1);
	a->pid = b->pid = getpid();
	kiln_stats_job(a, 0, KILN_STATS_JOB_COMPLETED, 1 * MS);
	kiln_stats_job(b, 0, KILN_STATS_JOB_COMPLETED, 5 * MS);
	kiln_stats_job(b, 0, KILN_STATS_JOB_FAILED, 120000 * MS);
	/* Unknown kinds and any index out of range go to "other". */
	kiln_stats_job(a, KILN_STATS_KIND_OTHER, KILN_STATS_JOB_DISCARDED, MS);
	kiln_stats_job(a, 99, KILN_STATS_JOB_DISCARDED, MS);
	one = &rd;
	render_boards(&one, 1, &out);
	assert_exposition(out.data);
	for (i = 0; i < KILN_ARRAY_LEN(want); i++)
		if (strstr(out.data, want[i]) == NULL ||
		    strstr(out.data, want[i])[strlen(want[i])] != '\n')
			fail_msg("missing: %s\n%s", want[i], out.data);
	/* A kind that never ran has no series; nor has the worker HTTP ones. */
	assert_null(strstr(out.data, "kind=\"grade\""));
	assert_null(strstr(out.data, "kiln_http_requests_total{"));
	assert_int_equal(count_of(out.data, "# TYPE kiln_job_duration_seconds histogram\n"), 1);
	kiln_buf_free(&out);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
}

static void test_programs_without_kinds_have_no_job_series(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_buf b;

	/* Recorded, but the board labels no kinds: nothing to show it under. */
	kiln_stats_job(s, 0, KILN_STATS_JOB_COMPLETED, MS);
	render(f, &b);
	assert_exposition(b.data);
	assert_non_null(strstr(b.data, "# TYPE kiln_jobs_executed_total counter\n"));
	assert_null(strstr(b.data, "kiln_jobs_executed_total{"));
	assert_null(strstr(b.data, "kiln_job_duration_seconds_count{"));
	kiln_buf_free(&b);
}

static void test_job_bucket_bounds_reach_minutes(void **state)
{
	(void)state;
	assert_int_equal(kiln_stats_job_bucket_us(0), 1000);
	assert_int_equal(kiln_stats_job_bucket_us(KILN_STATS_BUCKETS - 1), 300000000);
	assert_int_equal(kiln_stats_job_bucket_us(KILN_STATS_BUCKETS), UINT64_MAX);
}

static void test_too_many_kinds_are_left_out(void **state)
{
	const char *kinds[KILN_STATS_MAX_KINDS + 3];
	char names[KILN_STATS_MAX_KINDS + 2][8];
	char path[] = "/tmp/kiln-stats-XXXXXX";
	struct kiln_stats st, rd;
	int i;

	(void)state;
	for (i = 0; i < KILN_STATS_MAX_KINDS + 2; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		kinds[i] = names[i];
	}
	kinds[i] = NULL;
	make_board(&st, &rd, path, "worker", NULL, NULL, 0, NULL);
	assert_int_equal(kiln_stats_label_kinds(&st, kinds), KILN_STATS_MAX_KINDS);
	assert_int_equal(rd.hdr->nkinds, KILN_STATS_MAX_KINDS);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
}

static void test_labelled_counters_form_one_family(void **state)
{
	static const char *const c1[] = {"auth_logins:outcome=success",
	                                 "auth_lockouts",
	                                 "auth_logins:outcome=bad_credentials",
	                                 "auth_logins:outcome=success", /* repeated: once */
	                                 "weird:app=x",                 /* app is ours */
	                                 "weird:9x=y",                  /* not a label name */
	                                 "weird:x=",                    /* no value */
	                                 NULL};
	static const char *const c2[] = {"auth_logins:outcome=success", NULL};
	char p1[] = "/tmp/kiln-stats-XXXXXX", p2[] = "/tmp/kiln-stats-XXXXXX";
	struct kiln_stats w1, r1, w2, r2;
	const struct kiln_stats *boards[2];
	struct kiln_buf out;
	int i;

	(void)state;
	make_board(&w1, &r1, p1, "auth", methods, patterns, 2, c1);
	make_board(&w2, &r2, p2, "zeta", methods, patterns, 2, c2);
	for (i = 0; i < 7; i++)
		kiln_stats_count(kiln_stats_take(&w1, 0), i, (uint64_t)i + 1);
	kiln_stats_count(kiln_stats_take(&w2, 0), 0, 9);
	boards[0] = &r1;
	boards[1] = &r2;
	render_boards(boards, 2, &out);
	assert_exposition(out.data);
	assert_non_null(
	    strstr(out.data, "# TYPE kiln_auth_logins_total counter\n"
	                     "kiln_auth_logins_total{app=\"auth\",outcome=\"success\"} 1\n"
	                     "kiln_auth_logins_total{app=\"auth\",outcome=\"bad_credentials\"} 3\n"
	                     "kiln_auth_logins_total{app=\"zeta\",outcome=\"success\"} 9\n"));
	assert_int_equal(count_of(out.data, "# TYPE kiln_auth_logins_total "), 1);
	assert_non_null(strstr(out.data, "kiln_auth_lockouts_total{app=\"auth\"} 2\n"));
	/* Malformed labels: the whole name is the family, made a valid one. */
	assert_non_null(strstr(out.data, "kiln_weird_app_x_total{app=\"auth\"} 5\n"));
	assert_non_null(strstr(out.data, "kiln_weird_9x_y_total{app=\"auth\"} 6\n"));
	assert_non_null(strstr(out.data, "kiln_weird_x__total{app=\"auth\"} 7\n"));
	kiln_buf_free(&out);
	kiln_stats_close(&r1);
	kiln_stats_close(&w1);
	kiln_stats_close(&r2);
	kiln_stats_close(&w2);
}

static void test_take_marks_the_slots_a_reader_sums(void **state)
{
	struct fixture *f = *state;
	struct kiln_stats_slot *s;
	struct kiln_stats_route t;

	assert_int_equal(f->r.hdr->slots_used, 0);
	assert_null(kiln_stats_take(&f->r, 0)); /* a reader takes nothing */
	assert_null(kiln_stats_take(&f->w, KILN_STATS_MAX_SLOTS));
	s = kiln_stats_take(&f->w, 5);
	assert_ptr_equal(s, kiln_stats_slot(&f->w, 5));
	assert_int_equal(f->r.hdr->slots_used, 6);
	kiln_stats_take(&f->w, 2);
	assert_int_equal(f->r.hdr->slots_used, 6);
	request(s, 0, 200, MS);
	kiln_stats_route_total(&f->r, 0, &t);
	assert_int_equal(t.count[1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_bounds_are_the_documented_ones),
	    cmocka_unit_test(test_prom_sample_formats_labels_and_values),
	    cmocka_unit_test(test_job_bucket_bounds_reach_minutes),
	    cmocka_unit_test(test_job_runs_render_by_kind_and_outcome),
	    cmocka_unit_test(test_too_many_kinds_are_left_out),
	    cmocka_unit_test(test_labelled_counters_form_one_family),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_reader_sees_header_written_by_creator),
	    T(test_begin_marks_busy_and_end_marks_idle),
	    T(test_route_total_sums_both_slots),
	    T(test_histogram_bucket_edges_are_inclusive),
	    T(test_status_classes_are_clamped),
	    T(test_out_of_range_route_counts_as_other),
	    T(test_counters_survive_a_worker_restart),
	    T(test_render_tiny_case_exactly),
	    T(test_render_every_line_is_well_formed),
	    T(test_render_merges_families_across_boards),
	    T(test_histogram_is_cumulative_and_inf_equals_count),
	    T(test_render_escapes_label_values),
	    T(test_duplicate_app_is_rendered_once),
	    T(test_counter_named_like_a_family_is_left_out),
	    T(test_program_without_routes_has_no_http_series),
	    T(test_db_figures_are_rendered_per_outcome),
	    T(test_db_handle_counts_into_its_slot),
	    T(test_create_again_leaves_readers_their_file),
	    T(test_dead_worker_is_not_counted),
	    T(test_extra_routes_are_dropped_from_the_table),
	    T(test_open_rejects_a_file_that_is_not_a_scoreboard),
	    T(test_programs_without_kinds_have_no_job_series),
	    T(test_take_marks_the_slots_a_reader_sums),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
