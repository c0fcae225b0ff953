/* process_* for each program: its master plus its live workers, from /proc.
 * CPU time adds the master's reaped children (cutime, cstime) to the live
 * workers' own, so a worker's seconds move into its master's sum when it
 * is replaced instead of vanishing: the counter does not go backwards. A
 * worker reaped while we read would count twice or not at all, so the
 * master is read before and after its workers, and the sum is taken again
 * when its reaped children's time changed meanwhile. Resident memory is
 * the plain sum of RSS, so pages the workers share with the master count
 * once per process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/util.h"
#include "metrics.h"

struct proc_stat {
	pid_t ppid;
	double cpu_ticks;   /* utime + stime */
	double child_ticks; /* cutime + cstime: children it has reaped */
	double start_ticks; /* since boot */
	double rss_pages;
};

struct proc_sum {
	int ok;
	double cpu_seconds;
	double rss_bytes;
	double open_fds;
	double start_seconds;
};

/* Fields 4 (ppid) to 24 of /proc/<pid>/stat: 14 utime, 15 stime, 16 cutime,
 * 17 cstime, 22 starttime, 24 rss. Returns 0, or -1 when the process is gone. */
static int proc_read_stat(pid_t pid, struct proc_stat *ps)
{
	unsigned long long v[25];
	const char *p;
	char buf[1024], *end;
	int i;

	p = kiln_proc_stat_fields(pid, buf, sizeof(buf));
	if (p == NULL)
		return -1;
	p++; /* past the one-letter state */
	for (i = 4; i <= 24; i++) {
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno)
			return -1;
		p = end;
	}
	ps->ppid = (pid_t)v[4];
	ps->cpu_ticks = (double)(v[14] + v[15]);
	ps->child_ticks = (double)(v[16] + v[17]);
	ps->start_ticks = (double)v[22];
	ps->rss_pages = (double)v[24];
	return 0;
}

/* Open descriptors: the entries of /proc/<pid>/fd (readable for processes
 * of our own user). Returns the count, or 0 when it cannot be read. */
static double proc_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	double n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	/* Reading our own list shows the descriptor of the listing itself. */
	return pid == getpid() && n > 0 ? n - 1 : n;
}

/* Seconds since the epoch at boot (btime in /proc/stat), or 0. */
static double proc_boot_time(void)
{
	char line[256];
	double bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	fclose(f);
	return bt;
}

static void proc_add(struct proc_sum *sum, pid_t pid, const struct proc_stat *ps, double tck,
                     double page)
{
	sum->cpu_seconds += ps->cpu_ticks / tck;
	sum->rss_bytes += ps->rss_pages * page;
	sum->open_fds += proc_count_fds(pid);
}

/* Add every live slot whose process is still a child of master (a stale
 * slot pid may name someone else by now). */
static void proc_add_workers(const struct kiln_stats *st, pid_t master, double tck, double page,
                             struct proc_sum *sum)
{
	struct proc_stat ps;
	uint32_t i;
	pid_t pid;

	for (i = 0; i < kiln_stats_used(st); i++) {
		const struct kiln_stats_slot *s = &st->slots[i];

		pid = (pid_t)__atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		if (pid <= 0 || __atomic_load_n(&s->state, __ATOMIC_RELAXED) == KILN_WORKER_EMPTY)
			continue;
		if (proc_read_stat(pid, &ps) == 0 && ps.ppid == master)
			proc_add(sum, pid, &ps, tck, page);
	}
}

/* One program: its master and its live workers. */
static void proc_sum_board(const struct kiln_stats *st, double tck, double page, double boot,
                           struct proc_sum *sum)
{
	pid_t master = (pid_t)st->hdr->master_pid;
	struct proc_stat before, after;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		memset(sum, 0, sizeof(*sum));
		if (master <= 0 || proc_read_stat(master, &before) < 0)
			return;
		proc_add_workers(st, master, tck, page, sum);
		if (proc_read_stat(master, &after) < 0)
			return;
		if (after.child_ticks == before.child_ticks)
			break;
	}
	sum->ok = 1;
	sum->start_seconds = boot + after.start_ticks / tck;
	proc_add(sum, master, &after, tck, page);
	sum->cpu_seconds += after.child_ticks / tck;
}

static const struct proc_family {
	const char *name;
	const char *type;
	const char *help;
	size_t offset; /* of the value in struct proc_sum */
} proc_families[] = {
    {"process_cpu_seconds_total", "counter",
     "User and system CPU time of the program's master and workers, in seconds.",
     offsetof(struct proc_sum, cpu_seconds)},
    {"process_resident_memory_bytes", "gauge",
     "Resident memory of the program's master and workers, summed.",
     offsetof(struct proc_sum, rss_bytes)},
    {"process_open_fds", "gauge", "Open file descriptors of the program's master and workers.",
     offsetof(struct proc_sum, open_fds)},
    {"process_start_time_seconds", "gauge",
     "Start time of the program's master, in seconds since the Unix epoch.",
     offsetof(struct proc_sum, start_seconds)},
};

int metrics_process_render(const struct kiln_stats_boards *b, struct kiln_buf *out)
{
	double tck = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
	double boot = proc_boot_time();
	struct proc_sum sums[KILN_STATS_MAX_BOARDS];
	const char *labels[3] = {"app", NULL, NULL};
	char app[sizeof(b->st[0].hdr->app) + 1];
	size_t f, i;

	if (tck <= 0)
		tck = 100;
	for (i = 0; i < b->n; i++)
		proc_sum_board(b->sorted[i], tck, page, boot, &sums[i]);
	for (f = 0; f < KILN_ARRAY_LEN(proc_families); f++) {
		const struct proc_family *pf = &proc_families[f];

		if (kiln_stats_prom_family(out, pf->name, pf->type, pf->help) < 0)
			return -1;
		for (i = 0; i < b->n; i++) {
			if (!sums[i].ok)
				continue;
			kiln_strlcpy(app, b->sorted[i]->hdr->app, sizeof(app));
			labels[1] = app;
			if (kiln_stats_prom_sample(
			        out, pf->name, labels,
			        *(const double *)((const char *)&sums[i] + pf->offset)) < 0)
				return -1;
		}
	}
	return 0;
}
