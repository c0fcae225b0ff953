/* test_stats: the scoreboard file, its writers and readers, and the
 * Prometheus text it renders. */
#include <errno.h>
#include <fcntl.h>
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
	struct kiln_stats_slot *s = kiln_stats_slot(&f->w, i);

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

static char *render(struct fixture *f, int with_help, struct kiln_buf *b)
{
	kiln_buf_init(b);
	assert_int_equal(kiln_stats_render_prom(&f->r, b, with_help), 0);
	return b->data;
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
	assert_non_null(strstr(render(f, 0, &b), "\nkiln_logins_total{app=\"t\"} 6\n"));
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
	    "kiln_workers{app=\"t\",state=\"busy\"} 0",
	    "kiln_workers{app=\"t\",state=\"idle\"} 1",
	    "kiln_http_requests_in_flight{app=\"t\"} 0",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"crash\"} 2",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"max_requests\"} 0",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"timeout\"} 0",
	    "kiln_worker_restarts_total{app=\"t\",reason=\"reload\"} 1",
	    "kiln_logins_total{app=\"t\"} 3",
	    "kiln_cache_hits_total{app=\"t\"} 0",
	};
	struct fixture *f = *state;
	struct kiln_stats_slot *s = take_slot(f, 0, getpid());
	struct kiln_buf b, expect;
	size_t i;

	request(s, 0, 200, 1 * MS);
	kiln_stats_count(s, 0, 3);
	f->w.hdr->restarts[KILN_RESTART_CRASH] = 2;
	f->w.hdr->restarts[KILN_RESTART_RELOAD] = 1;
	kiln_buf_init(&expect);
	for (i = 0; i < KILN_ARRAY_LEN(want); i++)
		assert_int_equal(kiln_buf_printf(&expect, "%s\n", want[i]), 0);
	assert_string_equal(render(f, 0, &b), expect.data);
	kiln_buf_free(&b);
	kiln_buf_free(&expect);
}
#undef DUR
#undef RT

/* Every line is a HELP/TYPE comment or `name{labels} value`. */
static void assert_prom_lines(const char *text)
{
	static const char *const sample_re = "^[a-zA-Z_:][a-zA-Z0-9_:]*"
	                                     "\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
	                                     "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\} "
	                                     "[0-9]+(\\.[0-9]+)?$";
	regex_t sample, comment;
	char *copy = strdup(text), *line, *save = NULL;
	int n = 0;

	assert_non_null(copy);
	assert_int_equal(regcomp(&sample, sample_re, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&comment, "^# (HELP|TYPE) [a-z_]+ .+$", REG_EXTENDED | REG_NOSUB),
	                 0);
	assert_true(text[0] && text[strlen(text) - 1] == '\n');
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++)
		if (regexec(&sample, line, 0, NULL, 0) != 0 &&
		    regexec(&comment, line, 0, NULL, 0) != 0)
			fail_msg("malformed line: %s", line);
	assert_true(n > 20);
	regfree(&sample);
	regfree(&comment);
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
	render(f, 1, &out);
	assert_prom_lines(out.data);
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
	kiln_buf_reset(&out);
	assert_int_equal(kiln_stats_render_prom(&f->r, &out, 0), 0);
	assert_null(strchr(out.data, '#'));
	kiln_buf_free(&out);
}

static void test_render_escapes_label_values(void **state)
{
	static const char *const m[] = {"GET"};
	static const char *const p[] = {"/q\"uote\\back\nnl"};
	char path[] = "/tmp/kiln-stats-XXXXXX";
	struct kiln_stats st, rd;
	struct kiln_buf b;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(kiln_stats_create(&st, path, "a\"pp", m, p, 1, NULL), 0);
	kiln_stats_slot(&st, 0)->pid = getpid();
	kiln_stats_end(kiln_stats_slot(&st, 0), 0, 200, MS, 0, 0);
	assert_int_equal(kiln_stats_open(&rd, path), 0);
	unlink(path);
	kiln_buf_init(&b);
	assert_int_equal(kiln_stats_render_prom(&rd, &b, 0), 0);
	assert_non_null(
	    strstr(b.data, "kiln_http_requests_total{app=\"a\\\"pp\","
	                   "route=\"/q\\\"uote\\\\back\\nnl\",method=\"GET\",code=\"2xx\"} 1\n"));
	assert_prom_lines(b.data);
	kiln_buf_free(&b);
	kiln_stats_close(&rd);
	kiln_stats_close(&st);
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
	render(f, 0, &b);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_bounds_are_the_documented_ones),
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
	    T(test_render_escapes_label_values),
	    T(test_dead_worker_is_not_counted),
	    T(test_extra_routes_are_dropped_from_the_table),
	    T(test_open_rejects_a_file_that_is_not_a_scoreboard),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
