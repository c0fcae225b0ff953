/* kinds: the table of job kinds kiln-worker knows, and the small handlers
 * (grade_submission lives in grade.c).
 * A kind not in the table fails with "unknown job kind", so it is retried
 * (a newer executor may know it) and in the end discarded, never lost.
 * The test kinds exist for the e2e suite and benchmarks of failure paths;
 * they run only with [worker] test_kinds = on. */
#include <stdio.h>
#include <string.h>

#include "kiln/db.h"
#include "kiln/json.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "worker.h"

#define SLEEP_MAX_MS   (24LL * 3600 * 1000)
#define SLEEP_SLICE_MS 50 /* how soon a sleeping job notices SIGTERM */

/* noop: completes at once; measures the queue's own overhead. */
static int kind_noop(struct job_run *run, char *err, size_t errlen)
{
	(void)run;
	(void)err;
	(void)errlen;
	return JOB_OK;
}

/* fail: always fails, to exercise retries, backoff and discarding. */
static int kind_fail(struct job_run *run, char *err, size_t errlen)
{
	snprintf(err, errlen, "the fail test kind always fails (attempt %d)", run->job->attempt);
	return JOB_FAILED;
}

int job_arg_int(const struct kiln_job *job, const char *name, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errlen)
{
	struct kiln_field_errors errs = {0};
	char perr[128];
	json_object *obj;
	int rc;

	obj = kiln_json_parse(job->args ? job->args : "{}", job->args ? strlen(job->args) : 2, 0,
	                      perr, sizeof(perr));
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "args: %s", obj ? "not a JSON object" : perr);
		json_object_put(obj);
		return -1;
	}
	rc = kiln_json_int(obj, name, 1, min, max, out, &errs);
	json_object_put(obj);
	if (rc != 0) {
		snprintf(err, errlen, "args: %s %s", errs.e[0].field, errs.e[0].reason);
		return -1;
	}
	return 0;
}

/* sleep {"ms": N}: sleeps N ms in slices, heartbeating, so rescue and
 * shutdown can be tested; a SIGTERM ends it early as a retryable failure. */
static int kind_sleep(struct job_run *run, char *err, size_t errlen)
{
	int64_t ms, end, left;
	int rc;

	if (job_arg_int(run->job, "ms", 0, SLEEP_MAX_MS, &ms, err, errlen) < 0)
		return JOB_FAILED;
	end = kiln_now_ms() + ms;
	while ((left = end - kiln_now_ms()) > 0) {
		kiln_server_wait(-1, left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS);
		rc = job_heartbeat(run);
		if (rc == JOB_INTERRUPTED) {
			snprintf(err, errlen, "interrupted by shutdown");
			return rc;
		}
		if (rc == JOB_FAILED) {
			snprintf(err, errlen, "timed out");
			return rc;
		}
	}
	return JOB_OK;
}

/* count: records its run in job_runs (a table the e2e suite creates), so a
 * test can prove every job ran exactly once. */
static int kind_count(struct job_run *run, char *err, size_t errlen)
{
	static const char sql[] = "INSERT INTO job_runs (job_id) VALUES ($1)";
	char id[24];
	const char *v[1] = {id};
	PGresult *r;

	snprintf(id, sizeof(id), "%lld", (long long)run->job->id);
	r = kiln_db_query(run->db, "worker_count_run", sql, 1, v, 0, NULL, err, errlen);
	if (r == NULL)
		return JOB_FAILED;
	PQclear(r);
	return JOB_OK;
}

static const struct job_kind kinds[] = {
    {"noop", 0, 0, kind_noop},   {"grade_submission", 0, 0, grade_submission},
    {"fail", 0, 1, kind_fail},   {"sleep", 0, 1, kind_sleep},
    {"count", 0, 1, kind_count},
};

const char *const *job_kind_names(void)
{
	static const char *names[KILN_ARRAY_LEN(kinds) + 1];
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(kinds); i++)
		names[i] = kinds[i].kind;
	return names;
}

int job_kind_index(const char *kind)
{
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(kinds) && i < KILN_STATS_MAX_KINDS; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return (int)i;
	return KILN_STATS_KIND_OTHER;
}

const struct job_kind *job_kind_find(const char *kind, int test_kinds)
{
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(kinds); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return kinds[i].test_only && !test_kinds ? NULL : &kinds[i];
	return NULL;
}

int64_t job_kinds_max_timeout(const struct kiln_config *cfg)
{
	int64_t max = 0, t;
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(kinds); i++) {
		if (kinds[i].test_only && !cfg->worker.test_kinds)
			continue;
		t = kinds[i].timeout_ms ? kinds[i].timeout_ms : cfg->worker.job_timeout_ms;
		if (t > max)
			max = t;
	}
	return max;
}
