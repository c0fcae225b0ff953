/* The job queue as gauges: jobs by state, and how long the oldest runnable
 * job has waited. Each worker keeps the last figures for [metrics] cache,
 * so a scrape costs two small statements at most once per period per
 * worker; nothing is shared between workers because Prometheus scrapes
 * seldom enough that they rarely both refresh. When PostgreSQL cannot
 * answer, the gauges are left out and the failure is counted, so /metrics
 * never fails with the database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "metrics.h"

/* Every state sql/002_jobs.sql allows, so each series exists even at 0. */
static const char *const job_states[] = {"available", "scheduled", "running",  "retryable",
                                         "completed", "discarded", "cancelled"};
#define NSTATES KILN_ARRAY_LEN(job_states)

static const char sql_by_state[] = "SELECT state, count(*) FROM jobs GROUP BY state";

/* Runnable now and not claimed: what an executor would fetch (jobs.c's
 * fetch statement), so the age measures how far the executors lag. */
static const char sql_oldest[] =
    "SELECT COALESCE(GREATEST(extract(epoch FROM now() - min(scheduled_at)), 0), 0)::float8"
    " FROM jobs WHERE state IN ('available', 'scheduled', 'retryable')"
    " AND scheduled_at <= now()";

static struct {
	int valid;
	int64_t at_ms; /* monotonic time of the figures */
	int64_t count[NSTATES];
	double oldest_s;
} jobs;

/* Fill the per-state counts from the rows of sql_by_state. */
static int jobs_read_states(PGresult *r)
{
	int64_t n;
	size_t k;
	int i;

	memset(jobs.count, 0, sizeof(jobs.count));
	for (i = 0; i < PQntuples(r); i++) {
		for (k = 0; k < NSTATES && strcmp(job_states[k], PQgetvalue(r, i, 0)) != 0; k++)
			;
		if (k == NSTATES)
			continue; /* a state newer than this program */
		if (kiln_parse_int(PQgetvalue(r, i, 1), 0, INT64_MAX, &n) < 0)
			return -1;
		jobs.count[k] = n;
	}
	return 0;
}

static int jobs_refresh(const struct kiln_config *cfg)
{
	struct kiln_db *db = kiln_server_db();
	int64_t timeout = cfg->metrics.query_timeout_ms;
	char err[256] = "out of memory", *end;
	PGresult *r = NULL;
	int rc = -1;

	jobs.valid = 0;
	if (db == NULL)
		goto out;
	r = kiln_db_query(db, "metrics_jobs_by_state", sql_by_state, 0, NULL, timeout, NULL, err,
	                  sizeof(err));
	if (r == NULL)
		goto out;
	if (jobs_read_states(r) < 0) {
		snprintf(err, sizeof(err), "unexpected count in the job states");
		goto out;
	}
	PQclear(r);
	r = kiln_db_query(db, "metrics_jobs_oldest", sql_oldest, 0, NULL, timeout, NULL, err,
	                  sizeof(err));
	if (r == NULL)
		goto out;
	jobs.oldest_s = PQntuples(r) == 1 ? strtod(PQgetvalue(r, 0, 0), &end) : -1;
	if (PQntuples(r) != 1 || *end != '\0' || jobs.oldest_s < 0) {
		snprintf(err, sizeof(err), "unexpected age of the oldest job");
		goto out;
	}
	jobs.valid = 1;
	rc = 0;
out:
	PQclear(r);
	if (rc < 0)
		kiln_warn("job queue figures unavailable", "error=%s", err);
	return rc;
}

int metrics_jobs_update(const struct kiln_config *cfg)
{
	int64_t now = kiln_now_ms();

	if (jobs.valid && now - jobs.at_ms < cfg->metrics.cache_ms)
		return 0;
	jobs.at_ms = now;
	if (jobs_refresh(cfg) == 0)
		return 0;
	metrics_count(C_SCRAPE_ERRORS);
	return -1;
}

int metrics_jobs_render(struct kiln_buf *out)
{
	const char *labels[3] = {"state", NULL, NULL};
	size_t k;

	if (!jobs.valid)
		return 0;
	if (kiln_stats_prom_family(out, "kiln_jobs", "gauge", "Jobs in the queue, by state.") < 0)
		return -1;
	for (k = 0; k < NSTATES; k++) {
		labels[1] = job_states[k];
		if (kiln_stats_prom_sample(out, "kiln_jobs", labels, (double)jobs.count[k]) < 0)
			return -1;
	}
	if (kiln_stats_prom_family(out, "kiln_jobs_oldest_available_age_seconds", "gauge",
	                           "Seconds the oldest runnable, unclaimed job has waited; "
	                           "0 when none waits.") < 0 ||
	    kiln_stats_prom_sample(out, "kiln_jobs_oldest_available_age_seconds", NULL,
	                           jobs.oldest_s) < 0)
		return -1;
	return 0;
}
