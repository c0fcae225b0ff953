/* stats: the shared-memory scoreboard and its Prometheus rendering.
 * One writer per slot (the worker owning it), any number of read-only
 * readers in other processes. 64-bit fields go through relaxed atomic loads
 * and stores: the single writer needs no read-modify-write, and a reader on
 * another CPU never sees half of an update of one field. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/stats.h"
#include "kiln/util.h"

/* Bumped whenever the layout of the file changes. */
#define KILN_STATS_VERSION 1u

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static const uint64_t bucket_bounds_us[KILN_STATS_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
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
	return bucket_bounds_us[i];
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

int kiln_stats_create(struct kiln_stats *st, const char *path, const char *app,
                      const char *const *methods, const char *const *patterns, size_t nroutes,
                      const char *const *counter_names)
{
	size_t len = stats_map_len();
	struct kiln_stats_header *h;
	void *map;
	int fd, saved;

	memset(st, 0, sizeof(*st));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	/* ftruncate leaves the file sparse: untouched slots cost no disk. */
	if (ftruncate(fd, (off_t)len) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd);
	if (map == MAP_FAILED) {
		errno = saved;
		return -1;
	}
	h = map;
	h->version = KILN_STATS_VERSION;
	h->nslots = KILN_STATS_MAX_SLOTS;
	kiln_strlcpy(h->app, app ? app : "", sizeof(h->app));
	h->master_pid = (int32_t)getpid();
	h->start_wall_ms = kiln_wall_ms();
	stats_fill_labels(h, methods, patterns, nroutes, counter_names);
	/* The magic goes in last so a reader never accepts a half-made header. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(h->magic, KILN_STATS_MAGIC, sizeof(h->magic));
	st->hdr = h;
	st->slots = (struct kiln_stats_slot *)(h + 1);
	st->map_len = len;
	st->writable = 1;
	return 0;
}

static int stats_header_valid(const struct kiln_stats_header *h)
{
	return memcmp(h->magic, KILN_STATS_MAGIC, sizeof(h->magic)) == 0 &&
	       h->version == KILN_STATS_VERSION && h->nslots == KILN_STATS_MAX_SLOTS &&
	       h->nroutes <= KILN_STATS_MAX_ROUTES && h->ncounters <= KILN_STATS_MAX_COUNTERS;
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

static int stats_bucket(uint64_t us)
{
	int i;

	for (i = 0; i < KILN_STATS_BUCKETS; i++)
		if (us <= bucket_bounds_us[i])
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
	stats_add(&r->buckets[stats_bucket(us)], 1);
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

static void stats_route_add(const struct kiln_stats *st, int route, struct kiln_stats_route *out)
{
	uint32_t i;
	int k;

	for (i = 0; i < st->hdr->nslots; i++) {
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

/* Append s (at most n bytes, stopping at a NUL) as an escaped label value. */
static int prom_add_label_value(struct kiln_buf *out, const char *s, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n && s[i]; i++) {
		switch (s[i]) {
		case '\\':
			rc = kiln_buf_adds(out, "\\\\");
			break;
		case '"':
			rc = kiln_buf_adds(out, "\\\"");
			break;
		case '\n':
			rc = kiln_buf_adds(out, "\\n");
			break;
		default:
			rc = kiln_buf_addc(out, s[i]);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Append ,name="value" (every sample starts with the app label). */
static int prom_add_label(struct kiln_buf *out, const char *name, const char *v, size_t n)
{
	if (kiln_buf_printf(out, ",%s=\"", name) < 0 || prom_add_label_value(out, v, n) < 0)
		return -1;
	return kiln_buf_addc(out, '"');
}

/* Format microseconds as decimal seconds without floating point, so bucket
 * bounds read exactly "0.0005", "2.5", "10". */
static void prom_us_to_seconds(uint64_t us, char *dst, size_t len)
{
	char frac[8];
	int i;

	snprintf(frac, sizeof(frac), "%06llu", (unsigned long long)(us % 1000000));
	for (i = 5; i >= 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	snprintf(dst, len, "%llu%s%s", (unsigned long long)(us / 1000000), frac[0] ? "." : "",
	         frac);
}

struct prom_row {
	const char *route;
	size_t route_len;
	const char *method;
	size_t method_len;
	struct kiln_stats_route t;
	uint64_t requests;
};

struct prom_ctx {
	const struct kiln_stats *st;
	struct kiln_buf *out;
	int with_help;
	struct prom_row rows[KILN_STATS_MAX_ROUTES + 2];
	int nrows;
};

static int prom_family(struct prom_ctx *c, const char *name, const char *type, const char *help)
{
	if (!c->with_help)
		return 0;
	return kiln_buf_printf(c->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Start a sample: name{app="..." and the route labels when row != NULL. */
static int prom_begin(struct prom_ctx *c, const char *name, const char *suffix,
                      const struct prom_row *row)
{
	const struct kiln_stats_header *h = c->st->hdr;

	if (kiln_buf_printf(c->out, "%s%s{app=\"", name, suffix) < 0 ||
	    prom_add_label_value(c->out, h->app, sizeof(h->app)) < 0 ||
	    kiln_buf_addc(c->out, '"') < 0)
		return -1;
	if (row == NULL)
		return 0;
	if (prom_add_label(c->out, "route", row->route, row->route_len) < 0 ||
	    prom_add_label(c->out, "method", row->method, row->method_len) < 0)
		return -1;
	return 0;
}

static int prom_end(struct prom_ctx *c, uint64_t v)
{
	return kiln_buf_printf(c->out, "} %llu\n", (unsigned long long)v);
}

static int prom_requests(struct prom_ctx *c)
{
	static const char *const codes[KILN_STATS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	const char *name = "kiln_http_requests_total";
	int i, k;

	if (prom_family(c, name, "counter", "HTTP requests served, by route and status class.") < 0)
		return -1;
	for (i = 0; i < c->nrows; i++) {
		for (k = 0; k < KILN_STATS_CLASSES; k++) {
			if (c->rows[i].t.count[k] == 0)
				continue;
			if (prom_begin(c, name, "", &c->rows[i]) < 0 ||
			    prom_add_label(c->out, "code", codes[k], 3) < 0 ||
			    prom_end(c, c->rows[i].t.count[k]) < 0)
				return -1;
		}
	}
	return 0;
}

static int prom_histogram_row(struct prom_ctx *c, const char *name, const struct prom_row *row)
{
	uint64_t cum = 0;
	char le[32];
	int b;

	for (b = 0; b <= KILN_STATS_BUCKETS; b++) {
		cum += row->t.buckets[b];
		if (b < KILN_STATS_BUCKETS)
			prom_us_to_seconds(bucket_bounds_us[b], le, sizeof(le));
		else
			kiln_strlcpy(le, "+Inf", sizeof(le));
		if (prom_begin(c, name, "_bucket", row) < 0 ||
		    prom_add_label(c->out, "le", le, sizeof(le)) < 0 || prom_end(c, cum) < 0)
			return -1;
	}
	prom_us_to_seconds(row->t.duration_us_sum, le, sizeof(le));
	if (prom_begin(c, name, "_sum", row) < 0 || kiln_buf_printf(c->out, "} %s\n", le) < 0)
		return -1;
	/* _count is the +Inf bucket, so the two agree even when the scrape
	 * races a worker that is halfway through recording a request. */
	if (prom_begin(c, name, "_count", row) < 0 || prom_end(c, cum) < 0)
		return -1;
	return 0;
}

static int prom_durations(struct prom_ctx *c)
{
	const char *name = "kiln_http_request_duration_seconds";
	int i;

	if (prom_family(c, name, "histogram", "Time to serve HTTP requests, by route.") < 0)
		return -1;
	for (i = 0; i < c->nrows; i++)
		if (c->rows[i].requests && prom_histogram_row(c, name, &c->rows[i]) < 0)
			return -1;
	return 0;
}

static int prom_bytes(struct prom_ctx *c, int response)
{
	const char *name =
	    response ? "kiln_http_response_bytes_total" : "kiln_http_request_bytes_total";
	const char *help = response ? "Response body bytes sent, by route."
	                            : "Request body bytes received, by route.";
	int i;

	if (prom_family(c, name, "counter", help) < 0)
		return -1;
	for (i = 0; i < c->nrows; i++) {
		const struct prom_row *row = &c->rows[i];

		if (row->requests == 0)
			continue;
		if (prom_begin(c, name, "", row) < 0 ||
		    prom_end(c, response ? row->t.bytes_out : row->t.bytes_in) < 0)
			return -1;
	}
	return 0;
}

/* A slot counts only while its process exists: a worker that died leaves
 * its last state behind until the master reuses the slot. EPERM means the
 * process exists but belongs to another user. */
static int prom_slot_live(const struct kiln_stats_slot *s)
{
	int32_t pid = LOAD(&s->pid);

	return pid > 0 && LOAD(&s->state) != KILN_WORKER_EMPTY &&
	       (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int prom_workers(struct prom_ctx *c)
{
	uint64_t busy = 0, idle = 0;
	uint32_t i;

	for (i = 0; i < c->st->hdr->nslots; i++) {
		const struct kiln_stats_slot *s = &c->st->slots[i];
		int32_t state = LOAD(&s->state);

		if (!prom_slot_live(s))
			continue;
		busy += state == KILN_WORKER_BUSY;
		idle += state == KILN_WORKER_IDLE;
	}
	if (prom_family(c, "kiln_workers", "gauge", "Live worker processes, by state.") < 0 ||
	    prom_begin(c, "kiln_workers", "", NULL) < 0 ||
	    prom_add_label(c->out, "state", "busy", 4) < 0 || prom_end(c, busy) < 0 ||
	    prom_begin(c, "kiln_workers", "", NULL) < 0 ||
	    prom_add_label(c->out, "state", "idle", 4) < 0 || prom_end(c, idle) < 0)
		return -1;
	if (prom_family(c, "kiln_http_requests_in_flight", "gauge",
	                "HTTP requests being served now.") < 0 ||
	    prom_begin(c, "kiln_http_requests_in_flight", "", NULL) < 0 || prom_end(c, busy) < 0)
		return -1;
	return 0;
}

static int prom_restarts(struct prom_ctx *c)
{
	static const char *const reasons[KILN_RESTART_REASONS] = {"crash", "max_requests",
	                                                          "timeout", "reload"};
	const char *name = "kiln_worker_restarts_total";
	int i;

	if (prom_family(c, name, "counter", "Workers replaced by the master, by reason.") < 0)
		return -1;
	for (i = 0; i < KILN_RESTART_REASONS; i++)
		if (prom_begin(c, name, "", NULL) < 0 ||
		    prom_add_label(c->out, "reason", reasons[i], strlen(reasons[i])) < 0 ||
		    prom_end(c, LOAD(&c->st->hdr->restarts[i])) < 0)
			return -1;
	return 0;
}

/* kiln_<name>_total, with characters a metric name cannot hold as '_'. */
static void prom_counter_name(const char *raw, size_t rawlen, char *dst, size_t len)
{
	size_t i, n = (size_t)snprintf(dst, len, "kiln_");

	for (i = 0; i < rawlen && raw[i] && n + 7 < len; i++) {
		char ch = raw[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		         (ch >= '0' && ch <= '9') || ch == '_';

		dst[n++] = ok ? ch : '_';
	}
	snprintf(dst + n, len - n, "_total");
}

static int prom_counters(struct prom_ctx *c)
{
	const struct kiln_stats_header *h = c->st->hdr;
	char name[80];
	uint32_t i, s;

	for (i = 0; i < h->ncounters; i++) {
		uint64_t sum = 0;

		for (s = 0; s < h->nslots; s++)
			sum += LOAD(&c->st->slots[s].counters[i]);
		prom_counter_name(h->counter_name[i], sizeof(h->counter_name[i]), name,
		                  sizeof(name));
		if (prom_family(c, name, "counter", "Application counter.") < 0 ||
		    prom_begin(c, name, "", NULL) < 0 || prom_end(c, sum) < 0)
			return -1;
	}
	return 0;
}

/* Sum every route row over the slots once; each family then reads rows. */
static void prom_collect(struct prom_ctx *c)
{
	const struct kiln_stats_header *h = c->st->hdr;
	int i, k, n = (int)h->nroutes;

	for (i = 0; i < n + 2; i++) {
		struct prom_row *row = &c->rows[i];
		int idx = i < n ? i : i == n ? KILN_STATS_ROUTE_UNMATCHED : KILN_STATS_ROUTE_OTHER;

		row->route = i < n ? h->route_pattern[i] : i == n ? "unmatched" : "other";
		row->route_len = i < n ? sizeof(h->route_pattern[i]) : strlen(row->route);
		row->method = i < n ? h->route_method[i] : "";
		row->method_len = i < n ? sizeof(h->route_method[i]) : 0;
		kiln_stats_route_total(c->st, idx, &row->t);
		for (k = 0; k < KILN_STATS_CLASSES; k++)
			row->requests += row->t.count[k];
	}
	c->nrows = n + 2;
}

int kiln_stats_render_prom(const struct kiln_stats *st, struct kiln_buf *out, int with_help)
{
	struct prom_ctx *c;
	int rc = -1;

	if (st->hdr == NULL)
		return 0;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	c->st = st;
	c->out = out;
	c->with_help = with_help;
	prom_collect(c);
	if (prom_requests(c) == 0 && prom_durations(c) == 0 && prom_bytes(c, 0) == 0 &&
	    prom_bytes(c, 1) == 0 && prom_workers(c) == 0 && prom_restarts(c) == 0 &&
	    prom_counters(c) == 0)
		rc = 0;
	free(c);
	return rc;
}
