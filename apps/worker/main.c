/* kiln-worker: the durable job queue's executor daemon. A prefork program
 * without a socket: each worker process of the master is one executor
 * (executor.c) with its own PostgreSQL connection; the master respawns,
 * drains on SIGTERM, reloads on SIGHUP and keeps the scoreboard. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kiln/server.h"
#include "kiln/util.h"
#include "worker.h"

#define QUEUES_MAX 8

const char *const worker_counter_names[] = {
    "jobs_completed",   "jobs_failed",  "jobs_discarded",
    "jobs_interrupted", "jobs_rescued", "jobs_pruned",
    "leader_elected",   "db_errors",    NULL,
};

void worker_count(enum worker_counter c, uint64_t n)
{
	struct kiln_stats_slot *s = kiln_server_slot();

	if (s)
		kiln_stats_count(s, (int)c, n);
}

const char *worker_id(void)
{
	static char id[300];
	static pid_t for_pid;
	char host[256];

	/* Computed once per process: executors are forked from the master. */
	if (for_pid != getpid()) {
		if (gethostname(host, sizeof(host)) < 0)
			kiln_strlcpy(host, "unknown", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(id, sizeof(id), "%s:%d", host, (int)getpid());
		for_pid = getpid();
	}
	return id;
}

/* [worker] queues: 1..QUEUES_MAX comma-separated names of 1..63 bytes of
 * [a-z0-9_], as the jobs table allows. */
static int check_queues(const char *list, char *err, size_t errlen)
{
	const char *p = list, *end;
	size_t len, i;
	int n = 0;

	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < len; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_", p[i]) || !p[i])
				break;
		if (len == 0 || len >= KILN_JOB_QUEUE_MAX || i < len || ++n > QUEUES_MAX) {
			snprintf(err, errlen,
			         "[worker] queues: '%s' must be 1 to %d comma-separated names "
			         "of 1 to %d characters a-z 0-9 _",
			         list, QUEUES_MAX, KILN_JOB_QUEUE_MAX - 1);
			return -1;
		}
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

/* The executor count and drain bound are the master's [server.worker]
 * workers and shutdown_timeout; here only what is kiln-worker's own. */
static int check_config(const struct kiln_config *cfg, char *err, size_t errlen)
{
	return check_queues(cfg->worker.queues, err, errlen);
}

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "worker",
	    .counter_names = worker_counter_names,
	    .job_kinds = job_kind_names(),
	    .check_config = check_config,
	    .run = executor_run,
	};

	return kiln_server_main(&app, argc, argv);
}
