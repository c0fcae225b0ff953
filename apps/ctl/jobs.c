/* kilnctl jobs: look at and steer the durable job queue from the shell.
 * stats and list read; retry, discard and cancel move one job between
 * states; enqueue adds jobs (for operators and tests) in a transaction of
 * its own. Job args are never printed: they may hold personal data. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/db.h"
#include "kiln/jobs.h"
#include "kiln/util.h"
#include "ctl.h"

#define JOBS_LIST_DEFAULT 50
#define JOBS_ENQUEUE_MAX  100000

static const char usage_jobs[] = "jobs stats | list [--state S] [--queue Q] [--limit N] | "
                                 "retry ID | discard ID | cancel ID | enqueue KIND [ARGS_JSON] "
                                 "[--queue Q] [--delay DURATION] [--max-attempts N] "
                                 "[--priority N] [--count N]";

static const char sql_stats[] = "SELECT queue, state, count(*) FROM jobs"
                                " GROUP BY queue, state ORDER BY queue, state";
static const char sql_oldest[] =
    "SELECT queue, round(extract(epoch FROM now() - min(scheduled_at))::numeric, 3)"
    " FROM jobs WHERE state IN ('available', 'scheduled', 'retryable')"
    " AND scheduled_at <= now() GROUP BY queue ORDER BY queue";
static const char sql_list[] =
    "SELECT id, state, queue, kind, attempt || '/' || max_attempts,"
    " to_char(coalesce(finalized_at, scheduled_at) AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " coalesce(errors[array_upper(errors, 1)]->>'error', '')"
    " FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2)"
    " ORDER BY id DESC LIMIT $3::integer";
/* One state change (libcommon jobs): its name, what it is called when
 * done, the state it ends in. */
struct jobs_move {
	const char *name;
	int (*move)(struct kiln_db *db, int64_t id, unsigned from, char *state, char *err,
	            size_t errlen);
	unsigned from;
	const char *done; /* "retried" */
	const char *to;   /* the state it ends in */
};

static const struct jobs_move jobs_moves[] = {
    {"retry", kiln_jobs_retry, KILN_JOBS_RETRY_FROM, "retried", "available"},
    {"discard", kiln_jobs_discard, KILN_JOBS_STOP_FROM, "discarded", "discarded"},
    {"cancel", kiln_jobs_cancel, KILN_JOBS_STOP_FROM, "cancelled", "cancelled"},
};

/* Run one statement; a failure is printed. Returns the result when its
 * status is ok (PQclear it), else NULL. */
static PGresult *jobs_exec(struct kiln_db *db, const char *sql, int n, const char *const *v)
{
	char err[512];
	PGresult *r = kiln_db_query(db, NULL, sql, n, v, 0, NULL, err, sizeof(err));

	if (r == NULL)
		ctl_err("%s", err);
	return r;
}

/* ---------------------------------------------------------------- stats, list */

static int jobs_stats(struct kiln_db *db, int argc, char **argv)
{
	PGresult *r;
	int i;

	(void)argv;
	if (argc != 1)
		return ctl_usage("jobs stats");
	if ((r = jobs_exec(db, sql_stats, 0, NULL)) == NULL)
		return CTL_FAIL;
	printf("%-20s %-10s %10s\n", "QUEUE", "STATE", "JOBS");
	for (i = 0; i < PQntuples(r); i++)
		printf("%-20s %-10s %10s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		       PQgetvalue(r, i, 2));
	PQclear(r);
	if ((r = jobs_exec(db, sql_oldest, 0, NULL)) == NULL)
		return CTL_FAIL;
	printf("\n%-20s %s\n", "QUEUE", "OLDEST RUNNABLE JOB");
	for (i = 0; i < PQntuples(r); i++)
		printf("%-20s %s s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return CTL_OK;
}

static void jobs_print_list(PGresult *r)
{
	int i;

	printf("%-10s %-10s %-16s %-20s %-9s %-20s %s\n", "ID", "STATE", "QUEUE", "KIND", "ATTEMPT",
	       "AT", "LAST ERROR");
	for (i = 0; i < PQntuples(r); i++)
		printf("%-10s %-10s %-16s %-20s %-9s %-20s %s\n", PQgetvalue(r, i, 0),
		       PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
}

static int jobs_list(struct kiln_db *db, int argc, char **argv)
{
	static const char usage[] = "jobs list [--state S] [--queue Q] [--limit N]";
	static const struct option longopts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"queue", required_argument, NULL, 'q'},
	    {"limit", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const char *v[3] = {NULL, NULL, NULL};
	char limit[24];
	int64_t n = JOBS_LIST_DEFAULT;
	PGresult *r;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 's' && kiln_job_state_parse(optarg) >= 0)
			v[0] = optarg;
		else if (c == 'q')
			v[1] = optarg;
		else if (c != 'n' || kiln_parse_int(optarg, 1, 100000, &n) < 0)
			return ctl_usage(usage);
	}
	if (optind != argc)
		return ctl_usage(usage);
	snprintf(limit, sizeof(limit), "%lld", (long long)n);
	v[2] = limit;
	if ((r = jobs_exec(db, sql_list, 3, v)) == NULL)
		return CTL_FAIL;
	jobs_print_list(r);
	PQclear(r);
	return CTL_OK;
}

/* ---------------------------------------------------------------- retry, discard, cancel */

static int jobs_move(struct kiln_db *db, const struct jobs_move *m, int argc, char **argv)
{
	char usage[32], state[KILN_JOB_STATE_MAX], from[96], err[512];
	int64_t id;
	int rc;

	snprintf(usage, sizeof(usage), "jobs %s ID", m->name);
	if (argc != 2 || kiln_parse_int(argv[1], 1, INT64_MAX, &id) < 0)
		return ctl_usage(usage);
	rc = m->move(db, id, m->from, state, err, sizeof(err));
	if (rc == 0) {
		printf("job %s: %s\n", argv[1], m->to);
		return CTL_OK;
	}
	if (rc == KILN_JOBS_NOT_FOUND)
		ctl_err("no job %s", argv[1]);
	else if (rc == KILN_JOBS_WRONG_STATE)
		ctl_err("job %s is %s: only %s jobs can be %s", argv[1], state,
		        kiln_jobs_states_text(m->from, from, sizeof(from)), m->done);
	else
		ctl_err("%s", err);
	return CTL_FAIL;
}

/* ---------------------------------------------------------------- enqueue */

struct jobs_new {
	const char *kind;
	const char *args;
	struct kiln_job_opts opts;
	int64_t count;
};

static int jobs_enqueue_options(struct jobs_new *j, int argc, char **argv)
{
	static const char usage[] = "jobs enqueue KIND [ARGS_JSON] [--queue Q] [--delay DURATION] "
	                            "[--max-attempts N] [--priority N] [--count N]";
	static const struct option longopts[] = {
	    {"queue", required_argument, NULL, 'q'},
	    {"delay", required_argument, NULL, 'd'},
	    {"max-attempts", required_argument, NULL, 'm'},
	    {"priority", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	int64_t v = 0;
	int c, bad = 0;

	j->count = 1;
	while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			j->opts.queue = optarg;
			break;
		case 'd':
			bad = kiln_parse_duration_ms(optarg, &j->opts.delay_ms) < 0;
			break;
		case 'm':
			bad = kiln_parse_int(optarg, 1, 1000, &v) < 0;
			j->opts.max_attempts = (int)v;
			break;
		case 'p':
			bad = kiln_parse_int(optarg, 1, 4, &v) < 0;
			j->opts.priority = (int)v;
			break;
		case 'c':
			bad = kiln_parse_int(optarg, 1, JOBS_ENQUEUE_MAX, &j->count) < 0;
			break;
		default:
			bad = 1;
		}
	}
	/* argv[0] is "enqueue"; getopt moved the operands to the end. */
	if (bad || optind >= argc || argc - optind > 2)
		return ctl_usage(usage);
	j->kind = argv[optind];
	j->args = optind + 1 < argc ? argv[optind + 1] : "{}";
	return CTL_OK;
}

/* Enqueue j->count jobs in one transaction; print each new id. */
static int jobs_enqueue_all(struct kiln_db *db, const struct jobs_new *j)
{
	char err[512];
	int64_t i, id;
	PGresult *r;

	if ((r = jobs_exec(db, "BEGIN", 0, NULL)) == NULL)
		return CTL_FAIL;
	PQclear(r);
	for (i = 0; i < j->count; i++) {
		id = kiln_jobs_enqueue(db, j->kind, j->args, &j->opts, err, sizeof(err));
		if (id <= 0) {
			if (id == 0)
				ctl_err("a job with this unique key is waiting already");
			else
				ctl_err("%s", err);
			PQclear(kiln_db_exec(db, "ROLLBACK", 0, NULL, 0, err, sizeof(err)));
			return CTL_FAIL;
		}
		printf("%lld\n", (long long)id);
	}
	if ((r = jobs_exec(db, "COMMIT", 0, NULL)) == NULL)
		return CTL_FAIL;
	PQclear(r);
	return CTL_OK;
}

static int jobs_enqueue(struct kiln_db *db, int argc, char **argv)
{
	struct jobs_new j = {0};
	int rc = jobs_enqueue_options(&j, argc, argv);

	return rc == CTL_OK ? jobs_enqueue_all(db, &j) : rc;
}

/* ---------------------------------------------------------------- dispatch */

int ctl_jobs(struct ctl *ctx, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	const struct jobs_move *move = NULL;
	struct kiln_db *db;
	size_t i;
	int rc;

	for (i = 0; i < KILN_ARRAY_LEN(jobs_moves); i++)
		if (strcmp(jobs_moves[i].name, sub) == 0)
			move = &jobs_moves[i];
	if (!move && strcmp(sub, "stats") && strcmp(sub, "list") && strcmp(sub, "enqueue"))
		return ctl_usage(usage_jobs);
	if (ctl_load_config(ctx) < 0)
		return CTL_FAIL;
	db = kiln_db_new(&ctx->cfg.database);
	if (db == NULL) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	optind = 0; /* the subcommand's own options: argv[1] is its name */
	if (move)
		rc = jobs_move(db, move, argc - 1, argv + 1);
	else if (strcmp(sub, "stats") == 0)
		rc = jobs_stats(db, argc - 1, argv + 1);
	else if (strcmp(sub, "list") == 0)
		rc = jobs_list(db, argc - 1, argv + 1);
	else
		rc = jobs_enqueue(db, argc - 1, argv + 1);
	kiln_db_free(db);
	return rc;
}
