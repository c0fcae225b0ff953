/* window: the live-stats window over the scoreboards (see kiln/window.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/util.h"
#include "kiln/window.h"

#define WINDOW_VERSION 1

/* The r-th row of a board with routes: its labelled routes, then
 * "unmatched" and "other" (which kiln_stats_route_total sums with every
 * unlabelled row). */
static int window_route(const struct kiln_stats_header *h, int r)
{
	if (r < (int)h->nroutes)
		return r;
	return r == (int)h->nroutes ? KILN_STATS_ROUTE_UNMATCHED : KILN_STATS_ROUTE_OTHER;
}

void kiln_window_snap_take(struct kiln_window_snap *s, const struct kiln_stats *const *boards,
                           size_t n, int64_t mono_ms, int64_t wall_ms)
{
	struct kiln_stats_route t;
	size_t i;
	int r, k;

	memset(s, 0, sizeof(*s));
	s->mono_ms = mono_ms;
	s->wall_ms = wall_ms;
	for (i = 0; i < n && i < KILN_STATS_MAX_BOARDS; i++) {
		const struct kiln_stats_header *h = boards[i]->hdr;
		struct kiln_window_app *a = &s->apps[s->napps++];

		kiln_strlcpy(a->app, h->app, sizeof(a->app));
		a->master_pid = h->master_pid;
		a->start_wall_ms = h->start_wall_ms;
		/* A program without routes (kiln-worker) serves no requests,
		 * whatever its slots hold. */
		for (r = 0; h->nroutes > 0 && r < (int)h->nroutes + 2; r++) {
			kiln_stats_route_total(boards[i], window_route(h, r), &t);
			for (k = 0; k < KILN_STATS_CLASSES; k++) {
				a->count[k] += t.count[k];
				a->requests += t.count[k];
			}
			for (k = 0; k <= KILN_STATS_BUCKETS; k++)
				a->buckets[k] += t.buckets[k];
		}
	}
}

void kiln_window_ring_init(struct kiln_window_ring *r)
{
	memset(r, 0, offsetof(struct kiln_window_ring, snaps));
	memcpy(r->magic, KILN_WINDOW_MAGIC, sizeof(r->magic));
	r->version = WINDOW_VERSION;
	r->nslots = KILN_WINDOW_SLOTS;
}

/* The i-th newest snapshot (0 = newest), i < r->count. */
static const struct kiln_window_snap *ring_at(const struct kiln_window_ring *r, uint32_t i)
{
	return &r->snaps[(r->head + KILN_WINDOW_SLOTS - i) % KILN_WINDOW_SLOTS];
}

const struct kiln_window_snap *kiln_window_ring_base(const struct kiln_window_ring *r,
                                                     int64_t mono_ms)
{
	const struct kiln_window_snap *s, *oldest = NULL;
	uint32_t i;

	for (i = 0; i < r->count && i < KILN_WINDOW_SLOTS; i++) {
		s = ring_at(r, i);
		if (s->mono_ms >= mono_ms)
			continue;
		if (mono_ms - s->mono_ms >= KILN_WINDOW_SECONDS * 1000LL)
			return s;
		oldest = s;
	}
	return oldest;
}

int kiln_window_ring_push(struct kiln_window_ring *r, const struct kiln_window_snap *s)
{
	const struct kiln_window_snap *newest = r->count ? ring_at(r, 0) : NULL;

	if (newest && newest->mono_ms > s->mono_ms)
		r->count = 0;
	else if (newest && s->mono_ms - newest->mono_ms < KILN_WINDOW_GAP_MS)
		return 0;
	r->head = r->count ? (r->head + 1) % KILN_WINDOW_SLOTS : 0;
	r->snaps[r->head] = *s;
	if (r->count < KILN_WINDOW_SLOTS)
		r->count++;
	return 1;
}

double kiln_window_quantile(const uint64_t *buckets, double q)
{
	uint64_t total = 0, cum = 0;
	double rank, lower, upper;
	int i;

	for (i = 0; i <= KILN_STATS_BUCKETS; i++)
		total += buckets[i];
	if (total == 0)
		return -1;
	q = q < 0 ? 0 : q > 1 ? 1 : q;
	rank = q * (double)total;
	for (i = 0; i <= KILN_STATS_BUCKETS; i++) {
		if (buckets[i] == 0 || (double)(cum + buckets[i]) < rank) {
			cum += buckets[i];
			continue;
		}
		lower = i == 0 ? 0 : (double)kiln_stats_bucket_us(i - 1);
		if (i == KILN_STATS_BUCKETS)
			return lower / 1000.0;
		upper = (double)kiln_stats_bucket_us(i);
		return (lower + (upper - lower) * (rank - (double)cum) / (double)buckets[i]) /
		       1000.0;
	}
	return (double)kiln_stats_bucket_us(KILN_STATS_BUCKETS - 1) / 1000.0;
}

/* a's figures in base, when base holds the same run of the program with
 * counts not ahead of a's. */
static const struct kiln_window_app *rates_base_app(const struct kiln_window_app *a,
                                                    const struct kiln_window_snap *base)
{
	const struct kiln_window_app *b;
	uint32_t i;

	for (i = 0; base && i < base->napps && i < KILN_STATS_MAX_BOARDS; i++) {
		b = &base->apps[i];
		if (strncmp(b->app, a->app, sizeof(a->app)) != 0)
			continue;
		if (b->master_pid != a->master_pid || b->start_wall_ms != a->start_wall_ms ||
		    b->requests > a->requests)
			return NULL;
		return b;
	}
	return NULL;
}

void kiln_window_rates(const struct kiln_window_app *a, const struct kiln_window_snap *base,
                       int64_t now_mono, int64_t now_wall, struct kiln_window_rates *out)
{
	const struct kiln_window_app *b = rates_base_app(a, base);
	uint64_t d[KILN_STATS_BUCKETS + 1], c4, c5;
	int64_t ms;
	int k;

	memset(out, 0, sizeof(*out));
	ms = b ? now_mono - base->mono_ms : now_wall - a->start_wall_ms;
	out->window_s = ms > 0 ? (double)ms / 1000.0 : 0;
	out->requests_total = a->requests;
	out->requests = a->requests - (b ? b->requests : 0);
	for (k = 0; k <= KILN_STATS_BUCKETS; k++)
		d[k] = a->buckets[k] - (b && b->buckets[k] <= a->buckets[k] ? b->buckets[k] : 0);
	c4 = a->count[3] - (b ? b->count[3] : 0);
	c5 = a->count[4] - (b ? b->count[4] : 0);
	if (out->window_s > 0)
		out->requests_per_second = (double)out->requests / out->window_s;
	if (out->requests > 0) {
		out->client_error_rate = (double)c4 / (double)out->requests;
		out->error_rate = (double)c5 / (double)out->requests;
	}
	out->p50_ms = kiln_window_quantile(d, 0.50);
	out->p95_ms = kiln_window_quantile(d, 0.95);
	out->p99_ms = kiln_window_quantile(d, 0.99);
}

/* Is the mapped file a ring of this layout, with clocks a host can have?
 * The clocks are subtracted from each other: a negative one (a corrupt
 * file) could overflow. */
static int window_valid(const struct kiln_window_ring *r)
{
	uint32_t i;

	if (memcmp(r->magic, KILN_WINDOW_MAGIC, sizeof(r->magic)) != 0 ||
	    r->version != WINDOW_VERSION || r->nslots != KILN_WINDOW_SLOTS ||
	    r->head >= KILN_WINDOW_SLOTS || r->count > KILN_WINDOW_SLOTS)
		return 0;
	for (i = 0; i < r->count; i++)
		if (ring_at(r, i)->mono_ms < 0 || ring_at(r, i)->wall_ms < 0)
			return 0;
	return 1;
}

int kiln_window_record(const char *path, const struct kiln_window_snap *now,
                       struct kiln_window_snap *base)
{
	const struct kiln_window_snap *b;
	struct kiln_window_ring *r;
	struct stat st;
	int fd, rc = 0, saved;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0 ||
	    (st.st_size != (off_t)sizeof(*r) && ftruncate(fd, (off_t)sizeof(*r)) < 0))
		goto fail;
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED)
		goto fail;
	if (!window_valid(r))
		kiln_window_ring_init(r);
	b = kiln_window_ring_base(r, now->mono_ms);
	if (b) {
		*base = *b;
		rc = 1;
	}
	kiln_window_ring_push(r, now);
	munmap(r, sizeof(*r));
	close(fd); /* releases the lock */
	return rc;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
