/* stats: the shared-memory scoreboard (its Prometheus rendering: prom.c).
 * One writer per slot (the worker owning it), any number of read-only
 * readers in other processes. 64-bit fields go through relaxed atomic loads
 * and stores: the single writer needs no read-modify-write, and a reader on
 * another CPU never sees half of an update of one field. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/stats.h"
#include "kiln/util.h"

/* Bumped whenever the layout of the file changes. 2: per-slot PostgreSQL
 * figures, the build in the header. 3: job runs by kind. */
#define KILN_STATS_VERSION 3u

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_COMMIT
#define KILN_COMMIT "unknown"
#endif

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

const uint64_t kiln_stats_http_bounds_us[KILN_STATS_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

/* A prepared statement on a local socket takes ~100 us: start lower. */
const uint64_t kiln_stats_db_bounds_us[KILN_STATS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000,
};

/* Jobs range from a noop's microseconds to minutes of work. */
const uint64_t kiln_stats_job_bounds_us[KILN_STATS_BUCKETS] = {
    1000,   5000,    10000,   25000,    50000,    100000,   250000,
    500000, 1000000, 2500000, 10000000, 30000000, 60000000, 300000000,
};

static size_t stats_map_len(void)
{
	return sizeof(struct kiln_stats_header) +
	       (size_t)KILN_STATS_MAX_SLOTS * sizeof(struct kiln_stats_slot);
}

uint64_t kiln_stats_bucket_us(int i)
{
	if (i < 0 || i >= KILN_STATS_BUCKETS)
		return UINT64_MAX;
	return kiln_stats_http_bounds_us[i];
}

uint64_t kiln_stats_db_bucket_us(int i)
{
	if (i < 0 || i >= KILN_STATS_BUCKETS)
		return UINT64_MAX;
	return kiln_stats_db_bounds_us[i];
}

uint64_t kiln_stats_job_bucket_us(int i)
{
	if (i < 0 || i >= KILN_STATS_BUCKETS)
		return UINT64_MAX;
	return kiln_stats_job_bounds_us[i];
}

/* Label the route table and the app counters of a fresh header. */
static void stats_fill_labels(struct kiln_stats_header *h, const char *const *methods,
                              const char *const *patterns, size_t nroutes,
                              const char *const *counter_names)
{
	size_t i;

	if (nroutes > KILN_STATS_MAX_ROUTES)
		nroutes = KILN_STATS_MAX_ROUTES;
	for (i = 0; i < nroutes; i++) {
		kiln_strlcpy(h->route_method[i], methods && methods[i] ? methods[i] : "",
		             sizeof(h->route_method[i]));
		kiln_strlcpy(h->route_pattern[i], patterns && patterns[i] ? patterns[i] : "",
		             sizeof(h->route_pattern[i]));
	}
	h->nroutes = (uint32_t)nroutes;
	for (i = 0; counter_names && counter_names[i] && i < KILN_STATS_MAX_COUNTERS; i++)
		kiln_strlcpy(h->counter_name[i], counter_names[i], sizeof(h->counter_name[i]));
	h->ncounters = (uint32_t)i;
}

/* A new, sized, 0644 file beside path (same filesystem, so it can be renamed
 * over path); its name goes to tmp. Returns the fd, or -1 with errno. */
static int stats_create_tmp(const char *path, size_t len, char *tmp, size_t tmplen)
{
	int fd, saved;

	fd = kiln_tmpfile_beside(path, 0644, tmp, tmplen);
	if (fd < 0)
		return -1;
	/* ftruncate leaves the file sparse: untouched slots cost no disk. */
	if (ftruncate(fd, (off_t)len) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return fd;
}

int kiln_stats_create(struct kiln_stats *st, const char *path, const char *app,
                      const char *const *methods, const char *const *patterns, size_t nroutes,
                      const char *const *counter_names)
{
	size_t len = stats_map_len();
	struct kiln_stats_header *h;
	char tmp[4096];
	void *map;
	int fd, saved;

	memset(st, 0, sizeof(*st));
	fd = stats_create_tmp(path, len, tmp, sizeof(tmp));
	if (fd < 0)
		return -1;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd);
	if (map == MAP_FAILED) {
		unlink(tmp);
		errno = saved;
		return -1;
	}
	h = map;
	h->version = KILN_STATS_VERSION;
	h->nslots = KILN_STATS_MAX_SLOTS;
	kiln_strlcpy(h->app, app ? app : "", sizeof(h->app));
	kiln_strlcpy(h->build_version, KILN_VERSION, sizeof(h->build_version));
	kiln_strlcpy(h->build_commit, KILN_COMMIT, sizeof(h->build_commit));
	h->master_pid = (int32_t)getpid();
	h->start_wall_ms = kiln_wall_ms();
	stats_fill_labels(h, methods, patterns, nroutes, counter_names);
	memcpy(h->magic, KILN_STATS_MAGIC, sizeof(h->magic));
	/* Readers find the file only by its name, complete from the start. A
	 * reader still mapping the file this replaces keeps the old inode. */
	if (rename(tmp, path) < 0) {
		saved = errno;
		munmap(map, len);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	st->hdr = h;
	st->slots = (struct kiln_stats_slot *)(h + 1);
	st->map_len = len;
	st->writable = 1;
	return 0;
}

int kiln_stats_label_kinds(struct kiln_stats *st, const char *const *kinds)
{
	uint32_t i;

	if (st->hdr == NULL || !st->writable)
		return 0;
	for (i = 0; kinds && kinds[i] && i < KILN_STATS_MAX_KINDS; i++)
		kiln_strlcpy(st->hdr->job_kind[i], kinds[i], sizeof(st->hdr->job_kind[i]));
	STORE(&st->hdr->nkinds, i);
	return (int)i;
}

static int stats_header_valid(const struct kiln_stats_header *h)
{
	return memcmp(h->magic, KILN_STATS_MAGIC, sizeof(h->magic)) == 0 &&
	       h->version == KILN_STATS_VERSION && h->nslots == KILN_STATS_MAX_SLOTS &&
	       h->nroutes <= KILN_STATS_MAX_ROUTES && h->ncounters <= KILN_STATS_MAX_COUNTERS &&
	       h->nkinds <= KILN_STATS_MAX_KINDS;
}

int kiln_stats_open(struct kiln_stats *st, const char *path)
{
	size_t len = stats_map_len();
	struct stat sb;
	void *map;
	int fd, saved;

	memset(st, 0, sizeof(*st));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	/* Check the size before mapping: touching pages past the end of a
	 * shorter file would raise SIGBUS. */
	if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size != len) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd);
	if (map == MAP_FAILED) {
		errno = saved;
		return -1;
	}
	if (!stats_header_valid(map)) {
		munmap(map, len);
		errno = EINVAL;
		return -1;
	}
	st->hdr = map;
	st->slots = (struct kiln_stats_slot *)(st->hdr + 1);
	st->map_len = len;
	return 0;
}

void kiln_stats_close(struct kiln_stats *st)
{
	if (st->hdr)
		munmap(st->hdr, st->map_len);
	memset(st, 0, sizeof(*st));
}

struct kiln_stats_slot *kiln_stats_slot(const struct kiln_stats *st, int i)
{
	if (st->hdr == NULL || i < 0 || (uint32_t)i >= st->hdr->nslots)
		return NULL;
	return &st->slots[i];
}

struct kiln_stats_slot *kiln_stats_take(struct kiln_stats *st, int i)
{
	struct kiln_stats_slot *s = kiln_stats_slot(st, i);

	if (s == NULL || !st->writable)
		return NULL;
	if ((uint32_t)i >= LOAD(&st->hdr->slots_used))
		STORE(&st->hdr->slots_used, (uint32_t)i + 1);
	return s;
}

uint32_t kiln_stats_used(const struct kiln_stats *st)
{
	uint32_t n = LOAD(&st->hdr->slots_used);

	return n < st->hdr->nslots ? n : st->hdr->nslots;
}

void kiln_stats_begin(struct kiln_stats_slot *s, const char *method, const char *route_pattern)
{
	kiln_strlcpy(s->method, method ? method : "", sizeof(s->method));
	kiln_strlcpy(s->route, route_pattern ? route_pattern : "", sizeof(s->route));
	STORE(&s->req_start_ms, kiln_wall_ms());
	STORE(&s->state, (int32_t)KILN_WORKER_BUSY);
}

/* Single writer: a plain load and store is enough, and cheaper than an RMW. */
static void stats_add(uint64_t *p, uint64_t n)
{
	STORE(p, LOAD(p) + n);
}

static int stats_bucket(const uint64_t *bounds, uint64_t us)
{
	int i;

	for (i = 0; i < KILN_STATS_BUCKETS; i++)
		if (us <= bounds[i])
			return i;
	return KILN_STATS_BUCKETS;
}

void kiln_stats_end(struct kiln_stats_slot *s, int route, int status, int64_t duration_ns,
                    uint64_t bytes_in, uint64_t bytes_out)
{
	struct kiln_stats_route *r;
	uint64_t us = duration_ns > 0 ? (uint64_t)duration_ns / 1000 : 0;
	int cls = status / 100;

	if (route < 0 || route >= KILN_STATS_ROUTES)
		route = KILN_STATS_ROUTE_OTHER;
	if (cls < 1)
		cls = 1;
	if (cls > KILN_STATS_CLASSES)
		cls = KILN_STATS_CLASSES;
	r = &s->routes[route];
	stats_add(&r->count[cls - 1], 1);
	stats_add(&r->duration_us_sum, us);
	stats_add(&r->buckets[stats_bucket(kiln_stats_http_bounds_us, us)], 1);
	stats_add(&r->bytes_in, bytes_in);
	stats_add(&r->bytes_out, bytes_out);
	stats_add(&s->requests, 1);
	STORE(&s->busy_ms_total, LOAD(&s->busy_ms_total) + (int64_t)(us / 1000));
	STORE(&s->state, (int32_t)KILN_WORKER_IDLE);
	STORE(&s->req_start_ms, (int64_t)0);
}

void kiln_stats_count(struct kiln_stats_slot *s, int counter, uint64_t n)
{
	if (counter < 0 || counter >= KILN_STATS_MAX_COUNTERS)
		return;
	stats_add(&s->counters[counter], n);
}

void kiln_stats_db_query(struct kiln_stats_db *d, int outcome, int64_t duration_ns)
{
	uint64_t us = duration_ns > 0 ? (uint64_t)duration_ns / 1000 : 0;

	if (outcome < 0 || outcome >= KILN_STATS_DB_OUTCOMES)
		outcome = KILN_STATS_DB_UNAVAILABLE;
	stats_add(&d->outcomes[outcome], 1);
	if (duration_ns < 0)
		return;
	stats_add(&d->duration_us_sum, us);
	stats_add(&d->buckets[stats_bucket(kiln_stats_db_bounds_us, us)], 1);
}

void kiln_stats_db_connect(struct kiln_stats_db *d, int ok)
{
	stats_add(ok ? &d->connects : &d->connect_failures, 1);
}

void kiln_stats_job(struct kiln_stats_slot *s, int kind, int outcome, int64_t duration_ns)
{
	uint64_t us = duration_ns > 0 ? (uint64_t)duration_ns / 1000 : 0;
	struct kiln_stats_job *j;

	if (kind < 0 || kind >= KILN_STATS_KINDS)
		kind = KILN_STATS_KIND_OTHER;
	if (outcome < 0 || outcome >= KILN_STATS_JOB_OUTCOMES)
		outcome = KILN_STATS_JOB_FAILED;
	j = &s->jobs[kind];
	stats_add(&j->outcomes[outcome], 1);
	stats_add(&j->duration_us_sum, us);
	stats_add(&j->buckets[stats_bucket(kiln_stats_job_bounds_us, us)], 1);
}

static void stats_route_add(const struct kiln_stats *st, int route, struct kiln_stats_route *out)
{
	uint32_t i, n = kiln_stats_used(st);
	int k;

	for (i = 0; i < n; i++) {
		const struct kiln_stats_route *r = &st->slots[i].routes[route];

		for (k = 0; k < KILN_STATS_CLASSES; k++)
			out->count[k] += LOAD(&r->count[k]);
		for (k = 0; k <= KILN_STATS_BUCKETS; k++)
			out->buckets[k] += LOAD(&r->buckets[k]);
		out->duration_us_sum += LOAD(&r->duration_us_sum);
		out->bytes_in += LOAD(&r->bytes_in);
		out->bytes_out += LOAD(&r->bytes_out);
	}
}

void kiln_stats_route_total(const struct kiln_stats *st, int route, struct kiln_stats_route *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (st->hdr == NULL || route < 0 || route >= KILN_STATS_ROUTES)
		return;
	stats_route_add(st, route, out);
	/* Rows past the labelled table have no name of their own: a caller
	 * that passed such an index gets them reported as "other". */
	if (route == KILN_STATS_ROUTE_OTHER)
		for (i = (int)st->hdr->nroutes; i < KILN_STATS_MAX_ROUTES; i++)
			stats_route_add(st, i, out);
}
