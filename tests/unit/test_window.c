/* test_window: kiln-admin's live-stats window: quantiles interpolated in
 * histogram buckets, the choice of the snapshot to compare with, the ring
 * wrapping, a restarted program measured afresh, snapshots of real
 * scoreboard files, and the shared ring file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/stats.h"
#include "kiln/util.h"
#include "kiln/window.h"

#define S 1000LL /* ms */

static double bound_ms(int i)
{
	return (double)kiln_stats_bucket_us(i) / 1000.0;
}

static void assert_near(double got, double want)
{
	if (got < want - 1e-9 || got > want + 1e-9)
		fail_msg("got %.9f, want %.9f", got, want);
}

/* ---------------------------------------------------------------- quantiles */

static void test_quantile_interpolates_inside_the_bucket(void **state)
{
	uint64_t b[KILN_STATS_BUCKETS + 1] = {0};

	(void)state;
	b[2] = 10;
	/* Rank 5 of 10, all between bound 1 and bound 2: halfway. */
	assert_near(kiln_window_quantile(b, 0.5), bound_ms(1) + (bound_ms(2) - bound_ms(1)) * 0.5);
	assert_near(kiln_window_quantile(b, 0.99),
	            bound_ms(1) + (bound_ms(2) - bound_ms(1)) * 0.99);
	/* Two buckets: rank 95 of 100 is the 15th of 20 in the second. */
	memset(b, 0, sizeof(b));
	b[0] = 80;
	b[3] = 20;
	assert_near(kiln_window_quantile(b, 0.5), bound_ms(0) * 50 / 80);
	assert_near(kiln_window_quantile(b, 0.95),
	            bound_ms(2) + (bound_ms(3) - bound_ms(2)) * 15 / 20);
}

static void test_quantile_empty_and_overflow(void **state)
{
	uint64_t b[KILN_STATS_BUCKETS + 1] = {0};

	(void)state;
	assert_true(kiln_window_quantile(b, 0.5) < 0);
	/* Beyond every finite bound: the largest one, not infinity. */
	b[KILN_STATS_BUCKETS] = 3;
	assert_near(kiln_window_quantile(b, 0.99), bound_ms(KILN_STATS_BUCKETS - 1));
}

/* ---------------------------------------------------------------- the ring */

static struct kiln_window_ring ring;

static struct kiln_window_snap snap_at(int64_t mono_ms)
{
	struct kiln_window_snap s;

	memset(&s, 0, sizeof(s));
	s.mono_ms = mono_ms;
	s.wall_ms = 1700000000000LL + mono_ms;
	return s;
}

static void push_every_second(int64_t from_s, int64_t to_s)
{
	struct kiln_window_snap s;
	int64_t t;

	for (t = from_s; t <= to_s; t++) {
		s = snap_at(t * S);
		assert_int_equal(kiln_window_ring_push(&ring, &s), 1);
	}
}

static void test_ring_wraps_keeping_the_newest(void **state)
{
	struct kiln_window_snap s;

	(void)state;
	kiln_window_ring_init(&ring);
	push_every_second(1, 200);
	assert_int_equal(ring.count, KILN_WINDOW_SLOTS);
	assert_int_equal(ring.snaps[ring.head].mono_ms, 200 * S);
	/* Less than a second after the newest: not kept. */
	s = snap_at(200 * S + 999);
	assert_int_equal(kiln_window_ring_push(&ring, &s), 0);
	assert_int_equal(ring.snaps[ring.head].mono_ms, 200 * S);
	/* The oldest left is 200 - 63 s: with the newest at least 60 s old
	 * among them, a window never exceeds what the ring holds. */
	assert_int_equal(kiln_window_ring_base(&ring, 200 * S + 500)->mono_ms, 140 * S);
}

static void test_base_is_newest_at_least_a_minute_old(void **state)
{
	(void)state;
	kiln_window_ring_init(&ring);
	assert_null(kiln_window_ring_base(&ring, 10 * S));
	push_every_second(1, 100);
	assert_int_equal(kiln_window_ring_base(&ring, 100 * S)->mono_ms, 40 * S);
	assert_int_equal(kiln_window_ring_base(&ring, 100 * S + 700)->mono_ms, 40 * S);
	/* A pause in polling: the last snapshot is older than a minute. */
	assert_int_equal(kiln_window_ring_base(&ring, 1000 * S)->mono_ms, 100 * S);
}

static void test_base_is_oldest_when_none_is_a_minute_old(void **state)
{
	(void)state;
	kiln_window_ring_init(&ring);
	push_every_second(50, 55);
	assert_int_equal(kiln_window_ring_base(&ring, 56 * S)->mono_ms, 50 * S);
	/* Only snapshots at or after now: nothing to compare with. */
	assert_null(kiln_window_ring_base(&ring, 50 * S));
}

static void test_ring_from_another_boot_starts_over(void **state)
{
	struct kiln_window_snap s = snap_at(5 * S);

	(void)state;
	kiln_window_ring_init(&ring);
	push_every_second(1000, 1010);
	assert_int_equal(kiln_window_ring_push(&ring, &s), 1);
	assert_int_equal(ring.count, 1);
	assert_null(kiln_window_ring_base(&ring, 5 * S));
}

/* ---------------------------------------------------------------- rates */

static struct kiln_window_app app_with(const char *name, int32_t pid, int64_t start, uint64_t ok,
                                       uint64_t c4, uint64_t c5, int bucket)
{
	struct kiln_window_app a;

	memset(&a, 0, sizeof(a));
	kiln_strlcpy(a.app, name, sizeof(a.app));
	a.master_pid = pid;
	a.start_wall_ms = start;
	a.count[1] = ok;
	a.count[3] = c4;
	a.count[4] = c5;
	a.requests = ok + c4 + c5;
	a.buckets[bucket] = a.requests;
	return a;
}

static void test_rates_compare_with_the_base(void **state)
{
	struct kiln_window_snap base = snap_at(100 * S);
	struct kiln_window_app now = app_with("api", 7, 1000, 1100, 60, 40, 4);
	struct kiln_window_rates w;

	(void)state;
	base.napps = 1;
	base.apps[0] = app_with("api", 7, 1000, 100, 0, 0, 1);
	kiln_window_rates(&now, &base, 160 * S, 1700000000000LL + 160 * S, &w);
	assert_near(w.window_s, 60.0);
	assert_int_equal(w.requests_total, 1200);
	assert_int_equal(w.requests, 1100);
	assert_near(w.requests_per_second, 1100.0 / 60.0);
	assert_near(w.client_error_rate, 60.0 / 1100.0);
	assert_near(w.error_rate, 40.0 / 1100.0);
	/* Only the window's requests: all 1100 new ones are in bucket 4. */
	assert_near(w.p50_ms, bound_ms(3) + (bound_ms(4) - bound_ms(3)) * 0.5);
}

static void test_restarted_program_gets_a_fresh_window(void **state)
{
	int64_t start = 1700000000000LL + 150 * S;
	struct kiln_window_snap base = snap_at(100 * S);
	struct kiln_window_app now = app_with("api", 8, start, 30, 0, 0, 2);
	struct kiln_window_rates w;

	(void)state;
	base.napps = 1;
	base.apps[0] = app_with("api", 7, 1000, 5000, 0, 0, 1);
	/* Another master: the base's 5000 requests belong to the old run. */
	kiln_window_rates(&now, &base, 160 * S, start + 10 * S, &w);
	assert_near(w.window_s, 10.0);
	assert_int_equal(w.requests, 30);
	assert_near(w.requests_per_second, 3.0);
	/* Not in the base at all (or no base): since it started too. */
	kiln_window_rates(&now, NULL, 160 * S, start + 20 * S, &w);
	assert_near(w.window_s, 20.0);
	assert_near(w.requests_per_second, 1.5);
	now = app_with("auth", 7, 1000, 30, 0, 0, 2);
	kiln_window_rates(&now, &base, 160 * S, 1000 + 30 * S, &w);
	assert_near(w.window_s, 30.0);
}

static void test_no_requests_means_zero_rates_and_no_percentiles(void **state)
{
	struct kiln_window_snap base = snap_at(100 * S);
	struct kiln_window_app now = app_with("api", 7, 1000, 50, 0, 0, 2);
	struct kiln_window_rates w;

	(void)state;
	base.napps = 1;
	base.apps[0] = now;
	kiln_window_rates(&now, &base, 130 * S, 0, &w);
	assert_int_equal(w.requests, 0);
	assert_near(w.requests_per_second, 0);
	assert_near(w.error_rate, 0);
	assert_true(w.p50_ms < 0 && w.p99_ms < 0);
}

/* ---------------------------------------------------------------- real boards and the file */

static void test_snapshot_of_scoreboards(void **state)
{
	static const char *const m[] = {"GET"};
	static const char *const p[] = {"/x"};
	char pa[] = "/tmp/kiln-window-a-XXXXXX", pw[] = "/tmp/kiln-window-w-XXXXXX";
	struct kiln_stats a, w;
	const struct kiln_stats *boards[2] = {&a, &w};
	static struct kiln_window_snap s;

	(void)state;
	close(mkstemp(pa));
	close(mkstemp(pw));
	assert_int_equal(kiln_stats_create(&a, pa, "api", m, p, 1, NULL), 0);
	assert_int_equal(kiln_stats_create(&w, pw, "worker", NULL, NULL, 0, NULL), 0);
	kiln_stats_end(kiln_stats_take(&a, 0), 0, 200, 1000000, 0, 0);
	kiln_stats_end(kiln_stats_take(&a, 1), 0, 503, 1000000, 0, 0);
	kiln_stats_end(kiln_stats_slot(&a, 1), KILN_STATS_ROUTE_UNMATCHED, 404, 100000, 0, 0);
	/* A slot of a program without routes counts nothing. */
	kiln_stats_end(kiln_stats_take(&w, 0), 0, 200, 1000000, 0, 0);
	kiln_window_snap_take(&s, boards, 2, 5 * S, 7 * S);
	assert_int_equal(s.napps, 2);
	assert_string_equal(s.apps[0].app, "api");
	assert_int_equal(s.apps[0].requests, 3);
	assert_int_equal(s.apps[0].count[1], 1);
	assert_int_equal(s.apps[0].count[3], 1);
	assert_int_equal(s.apps[0].count[4], 1);
	assert_int_equal(s.apps[0].master_pid, a.hdr->master_pid);
	assert_int_equal(s.apps[0].start_wall_ms, a.hdr->start_wall_ms);
	assert_string_equal(s.apps[1].app, "worker");
	assert_int_equal(s.apps[1].requests, 0);
	kiln_stats_close(&a);
	kiln_stats_close(&w);
	unlink(pa);
	unlink(pw);
}

static void test_ring_file_is_shared_and_remade_when_foreign(void **state)
{
	char dir[] = "/tmp/kiln-window-XXXXXX", path[64];
	static struct kiln_window_snap now, base;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/admin.window", dir);
	now = snap_at(100 * S);
	now.napps = 1;
	now.apps[0] = app_with("api", 7, 1000, 10, 0, 0, 1);
	assert_int_equal(kiln_window_record(path, &now, &base), 0);
	now = snap_at(101 * S);
	assert_int_equal(kiln_window_record(path, &now, &base), 1);
	assert_int_equal(base.mono_ms, 100 * S);
	assert_int_equal(base.apps[0].requests, 10);
	/* Within the second: compared, not kept. */
	now = snap_at(101 * S + 500);
	assert_int_equal(kiln_window_record(path, &now, &base), 1);
	now = snap_at(102 * S);
	assert_int_equal(kiln_window_record(path, &now, &base), 1);
	assert_int_equal(base.mono_ms, 100 * S);
	/* Something else at the path: made again, with nothing to compare. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a ring", 10), 10);
	close(fd);
	assert_int_equal(kiln_window_record(path, &now, &base), 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quantile_interpolates_inside_the_bucket),
	    cmocka_unit_test(test_quantile_empty_and_overflow),
	    cmocka_unit_test(test_ring_wraps_keeping_the_newest),
	    cmocka_unit_test(test_base_is_newest_at_least_a_minute_old),
	    cmocka_unit_test(test_base_is_oldest_when_none_is_a_minute_old),
	    cmocka_unit_test(test_ring_from_another_boot_starts_over),
	    cmocka_unit_test(test_rates_compare_with_the_base),
	    cmocka_unit_test(test_restarted_program_gets_a_fresh_window),
	    cmocka_unit_test(test_no_requests_means_zero_rates_and_no_percentiles),
	    cmocka_unit_test(test_snapshot_of_scoreboards),
	    cmocka_unit_test(test_ring_file_is_shared_and_remade_when_foreign),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
