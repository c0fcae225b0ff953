/* prom: the Prometheus text rendering of the scoreboards (format 0.0.4),
 * kiln_stats_render and the helpers kiln-metrics uses for its own families.
 * See kiln/stats.h for what is rendered. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/stats.h"
#include "kiln/util.h"

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_COMMIT
#define KILN_COMMIT "unknown"
#endif

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- Prometheus text format 0.0.4 */

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

static int prom_name_char(char ch, int first)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
	       (!first && ch >= '0' && ch <= '9');
}

/* kiln_<name>_total, with characters a metric name cannot hold as '_'. */
static void prom_counter_name(const char *raw, size_t rawlen, char *dst, size_t len)
{
	size_t i, n = (size_t)snprintf(dst, len, "kiln_");

	for (i = 0; i < rawlen && raw[i] && n + 7 < len; i++)
		dst[n++] = prom_name_char(raw[i], 0) ? raw[i] : '_';
	snprintf(dst + n, len - n, "_total");
}

/* The label of an app counter named "family:label=value": the offset of
 * the ':' in raw, with label and value copied out; or -1 (the whole name
 * is the family) when there is none or it is malformed: label a valid
 * label name other than app, value not empty. */
static int prom_counter_label(const char *raw, size_t rawlen, char *label, size_t labellen,
                              char *value, size_t valuelen)
{
	const char *colon = memchr(raw, ':', strnlen(raw, rawlen));
	size_t i, rest, eq;

	label[0] = value[0] = '\0';
	if (colon == NULL)
		return -1;
	rest = strnlen(colon + 1, rawlen - (size_t)(colon + 1 - raw));
	for (eq = 0; eq < rest && colon[1 + eq] != '='; eq++)
		if (!prom_name_char(colon[1 + eq], eq == 0))
			return -1;
	if (eq == 0 || eq >= labellen || eq + 1 >= rest || rest - eq - 1 >= valuelen)
		return -1;
	if (eq == 3 && strncmp(colon + 1, "app", 3) == 0)
		return -1;
	memcpy(label, colon + 1, eq);
	label[eq] = '\0';
	for (i = 0; i < rest - eq - 1; i++)
		value[i] = colon[2 + eq + i];
	value[i] = '\0';
	return (int)(colon - raw);
}

/* The labels after app="..." of one row of series: route and method of a
 * route, or the kind of a job. Values are bounded by their lengths. */
struct prom_labels {
	int n;
	const char *name[2];
	const char *value[2];
	size_t len[2];
};

struct prom_row {
	struct prom_labels l; /* route, method */
	struct kiln_stats_route t;
	uint64_t requests;
};

/* One job kind of a board, summed over its slots. */
struct prom_kind {
	struct prom_labels l; /* kind */
	struct kiln_stats_job t;
	uint64_t runs;
};

/* One scoreboard summed over its slots once; every family reads from it. */
struct prom_board {
	const struct kiln_stats_header *h;
	struct prom_row rows[KILN_STATS_ROUTES];
	int nrows; /* 0 for a program without routes: no HTTP families */
	struct prom_kind kinds[KILN_STATS_KINDS];
	int nkinds; /* 0 for a program without job kinds: no job families */
	uint64_t busy, idle;
	struct kiln_stats_db db;
	char counter[KILN_STATS_MAX_COUNTERS][64]; /* metric names, "" = not rendered */
	char clabel[KILN_STATS_MAX_COUNTERS][48];  /* label name, "" = none */
	char cvalue[KILN_STATS_MAX_COUNTERS][48];
	uint64_t counter_sum[KILN_STATS_MAX_COUNTERS];
};

struct prom_ctx {
	struct kiln_buf *out;
	struct prom_board *boards;
	size_t n;
};

/* Start a sample: name{app="..." and the row's labels when l != NULL. */
static int prom_begin(struct prom_ctx *c, const struct prom_board *b, const char *name,
                      const char *suffix, const struct prom_labels *l)
{
	int i;

	if (kiln_buf_printf(c->out, "%s%s{app=\"", name, suffix) < 0 ||
	    prom_add_label_value(c->out, b->h->app, sizeof(b->h->app)) < 0 ||
	    kiln_buf_addc(c->out, '"') < 0)
		return -1;
	for (i = 0; l && i < l->n; i++)
		if (prom_add_label(c->out, l->name[i], l->value[i], l->len[i]) < 0)
			return -1;
	return 0;
}

static int prom_end(struct prom_ctx *c, uint64_t v)
{
	return kiln_buf_printf(c->out, "} %llu\n", (unsigned long long)v);
}

/* name{app} v, or name{app,label="value"} v when label is set. */
static int prom_simple(struct prom_ctx *c, const struct prom_board *b, const char *name,
                       const char *label, const char *value, uint64_t v)
{
	if (prom_begin(c, b, name, "", NULL) < 0)
		return -1;
	if (label && prom_add_label(c->out, label, value, strlen(value)) < 0)
		return -1;
	return prom_end(c, v);
}

static int prom_requests(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	static const char *const codes[KILN_STATS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	int i, k;

	for (i = 0; i < b->nrows; i++) {
		for (k = 0; k < KILN_STATS_CLASSES; k++) {
			if (b->rows[i].t.count[k] == 0)
				continue;
			if (prom_begin(c, b, name, "", &b->rows[i].l) < 0 ||
			    prom_add_label(c->out, "code", codes[k], 3) < 0 ||
			    prom_end(c, b->rows[i].t.count[k]) < 0)
				return -1;
		}
	}
	return 0;
}

/* The series of one histogram: cumulative buckets, _sum, _count. */
static int prom_histogram(struct prom_ctx *c, const struct prom_board *b, const char *name,
                          const struct prom_labels *row, const uint64_t *bounds,
                          const uint64_t *buckets, uint64_t sum_us)
{
	uint64_t cum = 0;
	char le[32];
	int i;

	for (i = 0; i <= KILN_STATS_BUCKETS; i++) {
		cum += buckets[i];
		if (i < KILN_STATS_BUCKETS)
			prom_us_to_seconds(bounds[i], le, sizeof(le));
		else
			kiln_strlcpy(le, "+Inf", sizeof(le));
		if (prom_begin(c, b, name, "_bucket", row) < 0 ||
		    prom_add_label(c->out, "le", le, sizeof(le)) < 0 || prom_end(c, cum) < 0)
			return -1;
	}
	prom_us_to_seconds(sum_us, le, sizeof(le));
	if (prom_begin(c, b, name, "_sum", row) < 0 || kiln_buf_printf(c->out, "} %s\n", le) < 0)
		return -1;
	/* _count is the +Inf bucket, so the two agree even when the scrape
	 * races a worker that is halfway through recording a request. */
	if (prom_begin(c, b, name, "_count", row) < 0 || prom_end(c, cum) < 0)
		return -1;
	return 0;
}

static int prom_durations(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	const struct prom_row *r;
	int i;

	for (i = 0; i < b->nrows; i++) {
		r = &b->rows[i];
		if (r->requests && prom_histogram(c, b, name, &r->l, kiln_stats_http_bounds_us,
		                                  r->t.buckets, r->t.duration_us_sum) < 0)
			return -1;
	}
	return 0;
}

static int prom_bytes(struct prom_ctx *c, const struct prom_board *b, const char *name,
                      int response)
{
	int i;

	for (i = 0; i < b->nrows; i++) {
		const struct prom_row *row = &b->rows[i];

		if (row->requests == 0)
			continue;
		if (prom_begin(c, b, name, "", &row->l) < 0 ||
		    prom_end(c, response ? row->t.bytes_out : row->t.bytes_in) < 0)
			return -1;
	}
	return 0;
}

static int prom_bytes_in(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	return prom_bytes(c, b, name, 0);
}

static int prom_bytes_out(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	return prom_bytes(c, b, name, 1);
}

static int prom_in_flight(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	return b->nrows ? prom_simple(c, b, name, NULL, NULL, b->busy) : 0;
}

static int prom_workers(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	if (prom_simple(c, b, name, "state", "busy", b->busy) < 0 ||
	    prom_simple(c, b, name, "state", "idle", b->idle) < 0)
		return -1;
	return 0;
}

static int prom_restarts(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	static const char *const reasons[KILN_RESTART_REASONS] = {"crash", "max_requests",
	                                                          "timeout", "reload"};
	int i;

	for (i = 0; i < KILN_RESTART_REASONS; i++)
		if (prom_simple(c, b, name, "reason", reasons[i], LOAD(&b->h->restarts[i])) < 0)
			return -1;
	return 0;
}

static int prom_db_queries(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < KILN_STATS_DB_OUTCOMES; i++)
		sum += b->db.outcomes[i];
	return prom_simple(c, b, name, NULL, NULL, sum);
}

static int prom_db_errors(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	static const char *const reasons[KILN_STATS_DB_OUTCOMES] = {NULL, "unavailable", "timeout",
	                                                            "refused"};
	int i;

	for (i = KILN_STATS_DB_OK + 1; i < KILN_STATS_DB_OUTCOMES; i++)
		if (prom_simple(c, b, name, "reason", reasons[i], b->db.outcomes[i]) < 0)
			return -1;
	return 0;
}

static int prom_db_durations(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i <= KILN_STATS_BUCKETS; i++)
		n += b->db.buckets[i];
	if (n == 0)
		return 0;
	return prom_histogram(c, b, name, NULL, kiln_stats_db_bounds_us, b->db.buckets,
	                      b->db.duration_us_sum);
}

static int prom_db_connects(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	return prom_simple(c, b, name, NULL, NULL, b->db.connects);
}

static int prom_db_connect_errors(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	return prom_simple(c, b, name, NULL, NULL, b->db.connect_failures);
}

static int prom_jobs_executed(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	static const char *const outcomes[KILN_STATS_JOB_OUTCOMES] = {"completed", "failed",
	                                                              "discarded", "interrupted"};
	const struct prom_kind *k;
	int i, o;

	for (i = 0; i < b->nkinds; i++) {
		k = &b->kinds[i];
		for (o = 0; k->runs && o < KILN_STATS_JOB_OUTCOMES; o++)
			if (prom_begin(c, b, name, "", &k->l) < 0 ||
			    prom_add_label(c->out, "outcome", outcomes[o], strlen(outcomes[o])) <
			        0 ||
			    prom_end(c, k->t.outcomes[o]) < 0)
				return -1;
	}
	return 0;
}

static int prom_job_durations(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	const struct prom_kind *k;
	int i;

	for (i = 0; i < b->nkinds; i++) {
		k = &b->kinds[i];
		if (k->runs && prom_histogram(c, b, name, &k->l, kiln_stats_job_bounds_us,
		                              k->t.buckets, k->t.duration_us_sum) < 0)
			return -1;
	}
	return 0;
}

static int prom_build(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	const struct kiln_stats_header *h = b->h;

	if (prom_begin(c, b, name, "", NULL) < 0 ||
	    prom_add_label(c->out, "version", h->build_version, sizeof(h->build_version)) < 0 ||
	    prom_add_label(c->out, "commit", h->build_commit, sizeof(h->build_commit)) < 0)
		return -1;
	return prom_end(c, 1);
}

/* The families every scoreboard feeds, in output order. */
static const struct prom_family {
	const char *name;
	const char *type;
	const char *help;
	int (*emit)(struct prom_ctx *c, const struct prom_board *b, const char *name);
} prom_families[] = {
    {"kiln_http_requests_total", "counter",
     "HTTP requests served, by route template, method and status class.", prom_requests},
    {"kiln_http_request_duration_seconds", "histogram",
     "Time to serve HTTP requests, by route template and method.", prom_durations},
    {"kiln_http_request_bytes_total", "counter", "Request body bytes received, by route.",
     prom_bytes_in},
    {"kiln_http_response_bytes_total", "counter", "Response bytes sent, by route.", prom_bytes_out},
    {"kiln_http_requests_in_flight", "gauge", "HTTP requests being served now.", prom_in_flight},
    {"kiln_workers", "gauge", "Live worker processes, by state.", prom_workers},
    {"kiln_worker_restarts_total", "counter", "Workers replaced by the master, by reason.",
     prom_restarts},
    {"kiln_db_queries_total", "counter", "PostgreSQL statements attempted.", prom_db_queries},
    {"kiln_db_query_errors_total", "counter", "PostgreSQL statements that failed, by reason.",
     prom_db_errors},
    {"kiln_db_query_duration_seconds", "histogram",
     "Time of PostgreSQL statements sent to the server.", prom_db_durations},
    {"kiln_db_connects_total", "counter",
     "PostgreSQL connections opened (the first one and every reconnect).", prom_db_connects},
    {"kiln_db_connect_errors_total", "counter", "Failed PostgreSQL connection attempts.",
     prom_db_connect_errors},
    {"kiln_jobs_executed_total", "counter",
     "Job runs, by kind (\"other\" for kinds the worker does not know) and outcome.",
     prom_jobs_executed},
    {"kiln_job_duration_seconds", "histogram", "Time to run a job, by kind.", prom_job_durations},
    {"kiln_build_info", "gauge", "The build of the running program; always 1.", prom_build},
};

/* Is name one of the families above? */
static int prom_reserved(const char *name)
{
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(prom_families); i++)
		if (strcmp(prom_families[i].name, name) == 0)
			return 1;
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

static void prom_collect_rows(struct prom_board *b, const struct kiln_stats *st)
{
	const struct kiln_stats_header *h = st->hdr;
	int i, k, n = (int)h->nroutes;

	if (n == 0)
		return;
	for (i = 0; i < n + 2; i++) {
		struct prom_row *row = &b->rows[i];
		int idx = i < n ? i : i == n ? KILN_STATS_ROUTE_UNMATCHED : KILN_STATS_ROUTE_OTHER;

		row->l.n = 2;
		row->l.name[0] = "route";
		row->l.value[0] = i < n ? h->route_pattern[i] : i == n ? "unmatched" : "other";
		row->l.len[0] = i < n ? sizeof(h->route_pattern[i]) : strlen(row->l.value[0]);
		row->l.name[1] = "method";
		row->l.value[1] = i < n ? h->route_method[i] : "";
		row->l.len[1] = i < n ? sizeof(h->route_method[i]) : 0;
		kiln_stats_route_total(st, idx, &row->t);
		for (k = 0; k < KILN_STATS_CLASSES; k++)
			row->requests += row->t.count[k];
	}
	b->nrows = n + 2;
}

static void prom_collect_db(struct kiln_stats_db *sum, const struct kiln_stats_db *d)
{
	int i;

	for (i = 0; i < KILN_STATS_DB_OUTCOMES; i++)
		sum->outcomes[i] += LOAD(&d->outcomes[i]);
	for (i = 0; i <= KILN_STATS_BUCKETS; i++)
		sum->buckets[i] += LOAD(&d->buckets[i]);
	sum->duration_us_sum += LOAD(&d->duration_us_sum);
	sum->connects += LOAD(&d->connects);
	sum->connect_failures += LOAD(&d->connect_failures);
}

/* The labelled job kinds and "other", summed over the slots. */
static void prom_collect_kinds(struct prom_board *b, const struct kiln_stats *st)
{
	const struct kiln_stats_header *h = st->hdr;
	int i, k, n = (int)LOAD(&h->nkinds);
	uint32_t s, used = kiln_stats_used(st);

	if (n <= 0)
		return;
	for (i = 0; i < n + 1; i++) {
		struct prom_kind *pk = &b->kinds[i];
		const struct kiln_stats_job *j;
		int idx = i < n ? i : KILN_STATS_KIND_OTHER;

		pk->l.n = 1;
		pk->l.name[0] = "kind";
		pk->l.value[0] = i < n ? h->job_kind[i] : "other";
		pk->l.len[0] = i < n ? sizeof(h->job_kind[i]) : strlen("other");
		for (s = 0; s < used; s++) {
			j = &st->slots[s].jobs[idx];
			for (k = 0; k < KILN_STATS_JOB_OUTCOMES; k++)
				pk->t.outcomes[k] += LOAD(&j->outcomes[k]);
			for (k = 0; k <= KILN_STATS_BUCKETS; k++)
				pk->t.buckets[k] += LOAD(&j->buckets[k]);
			pk->t.duration_us_sum += LOAD(&j->duration_us_sum);
		}
		for (k = 0; k < KILN_STATS_JOB_OUTCOMES; k++)
			pk->runs += pk->t.outcomes[k];
	}
	b->nkinds = n + 1;
}

/* Sum one scoreboard over its slots. */
static void prom_collect(struct prom_board *b, const struct kiln_stats *st)
{
	const struct kiln_stats_header *h = st->hdr;
	uint32_t i, k, used = kiln_stats_used(st);
	int colon;

	b->h = h;
	prom_collect_rows(b, st);
	prom_collect_kinds(b, st);
	for (i = 0; i < used; i++) {
		const struct kiln_stats_slot *s = &st->slots[i];
		int32_t state = LOAD(&s->state);

		if (prom_slot_live(s)) {
			b->busy += state == KILN_WORKER_BUSY;
			b->idle += state == KILN_WORKER_IDLE;
		}
		prom_collect_db(&b->db, &s->db);
		for (k = 0; k < h->ncounters; k++)
			b->counter_sum[k] += LOAD(&s->counters[k]);
	}
	for (k = 0; k < h->ncounters; k++) {
		if (h->counter_name[k][0] == '\0')
			continue;
		colon =
		    prom_counter_label(h->counter_name[k], sizeof(h->counter_name[k]), b->clabel[k],
		                       sizeof(b->clabel[k]), b->cvalue[k], sizeof(b->cvalue[k]));
		prom_counter_name(h->counter_name[k],
		                  colon >= 0 ? (size_t)colon : sizeof(h->counter_name[k]),
		                  b->counter[k], sizeof(b->counter[k]));
		if (prom_reserved(b->counter[k]))
			b->counter[k][0] = '\0';
	}
}

/* Index of the first counter of board b named name, or -1. */
static int prom_find_counter(const struct prom_board *b, const char *name)
{
	uint32_t k;

	for (k = 0; k < b->h->ncounters; k++)
		if (strcmp(b->counter[k], name) == 0)
			return (int)k;
	return -1;
}

/* Does counter k of board b repeat the series of an earlier counter? */
static int prom_counter_repeats(const struct prom_board *b, uint32_t k)
{
	uint32_t i;

	for (i = 0; i < k; i++)
		if (strcmp(b->counter[i], b->counter[k]) == 0 &&
		    strcmp(b->clabel[i], b->clabel[k]) == 0 &&
		    strcmp(b->cvalue[i], b->cvalue[k]) == 0)
			return 1;
	return 0;
}

/* The series of family name in board b: one per counter of that name (a
 * labelled counter carries its label). */
static int prom_counter_series(struct prom_ctx *c, const struct prom_board *b, const char *name)
{
	uint32_t k;

	for (k = 0; k < b->h->ncounters; k++) {
		if (strcmp(b->counter[k], name) != 0 || prom_counter_repeats(b, k))
			continue;
		if (prom_simple(c, b, name, b->clabel[k][0] ? b->clabel[k] : NULL, b->cvalue[k],
		                b->counter_sum[k]) < 0)
			return -1;
	}
	return 0;
}

/* App counters: one family per name, holding every board that has it. A
 * family is written where its name first appears. */
static int prom_counters(struct prom_ctx *c)
{
	const struct prom_board *b;
	const char *name;
	size_t i, j;
	uint32_t k;
	int first;

	for (i = 0; i < c->n; i++) {
		b = &c->boards[i];
		for (k = 0; k < b->h->ncounters; k++) {
			name = b->counter[k];
			if (name[0] == '\0' || prom_find_counter(b, name) != (int)k)
				continue;
			for (first = 1, j = 0; j < i && first; j++)
				first = prom_find_counter(&c->boards[j], name) < 0;
			if (!first)
				continue;
			if (kiln_stats_prom_family(c->out, name, "counter",
			                           "Application counter.") < 0)
				return -1;
			for (j = i; j < c->n; j++)
				if (prom_counter_series(c, &c->boards[j], name) < 0)
					return -1;
		}
	}
	return 0;
}

static int prom_render(struct prom_ctx *c)
{
	const struct prom_family *f;
	size_t i, j;

	for (i = 0; i < KILN_ARRAY_LEN(prom_families); i++) {
		f = &prom_families[i];
		if (kiln_stats_prom_family(c->out, f->name, f->type, f->help) < 0)
			return -1;
		for (j = 0; j < c->n; j++)
			if (f->emit(c, &c->boards[j], f->name) < 0)
				return -1;
	}
	return prom_counters(c);
}

/* Has an earlier board the same app? */
static int prom_duplicate(const struct kiln_stats *const *boards, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (boards[j]->hdr && strncmp(boards[j]->hdr->app, boards[i]->hdr->app,
		                              sizeof(boards[i]->hdr->app)) == 0)
			return 1;
	return 0;
}

int kiln_stats_render(const struct kiln_stats *const *boards, size_t n, struct kiln_buf *out)
{
	struct prom_ctx c = {.out = out};
	size_t i;
	int rc;

	c.boards = calloc(n ? n : 1, sizeof(*c.boards));
	if (c.boards == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (boards[i]->hdr && !prom_duplicate(boards, i))
			prom_collect(&c.boards[c.n++], boards[i]);
	rc = prom_render(&c);
	free(c.boards);
	return rc;
}

int kiln_stats_prom_family(struct kiln_buf *out, const char *name, const char *type,
                           const char *help)
{
	return kiln_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int kiln_stats_prom_sample(struct kiln_buf *out, const char *name, const char *const *labels,
                           double value)
{
	size_t i;

	if (kiln_buf_adds(out, name) < 0)
		return -1;
	for (i = 0; labels && labels[i] && labels[i + 1]; i += 2)
		if (kiln_buf_printf(out, "%c%s=\"", i ? ',' : '{', labels[i]) < 0 ||
		    prom_add_label_value(out, labels[i + 1], strlen(labels[i + 1])) < 0 ||
		    kiln_buf_addc(out, '"') < 0)
			return -1;
	if (i && kiln_buf_addc(out, '}') < 0)
		return -1;
	if (isnan(value))
		return kiln_buf_adds(out, " NaN\n");
	if (isinf(value))
		return kiln_buf_adds(out, value > 0 ? " +Inf\n" : " -Inf\n");
	return kiln_buf_printf(out, " %.15g\n", value);
}
