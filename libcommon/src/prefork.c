/* prefork: the master process. It forks the workers, respawns the ones that
 * die (with backoff and a crash-loop brake), kills the ones whose request
 * runs past request_timeout, replaces them one by one on SIGHUP, drains on
 * SIGTERM, and talks to systemd. Signal handlers only set flags; the loop
 * waits in ppoll() with the signals unblocked only there, so no signal is
 * ever missed between a check and the wait. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "kiln/log.h"
#include "kiln/util.h"
#include "server_int.h"

#define TICK_MS          100
#define TIMEOUT_GRACE_MS 1000 /* SIGTERM → SIGKILL for a timed-out worker */
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   10000
#define CRASH_RESET_MS   30000 /* a quiet period that forgives earlier crashes */
#define BRAKE_CRASHES    10    /* this many crashes ... */
#define BRAKE_WINDOW_MS  10000 /* ... within this window ... */
#define BRAKE_PAUSE_MS   30000 /* ... pause respawning this long */

struct child {
	pid_t pid;
	int gen;
	int stopping;    /* SIGTERM sent by us: reload, shrink or shutdown */
	int timed_out;   /* killed for request_timeout */
	int64_t term_ms; /* when SIGTERM was sent for a timeout */
	int64_t started_ms;
};

static struct child children[KILN_STATS_MAX_SLOTS];
static int generation;
static int shutting_down;
static int64_t shutdown_deadline_ms;
static int reloading;
static sigset_t waitmask;

static struct {
	int consecutive;
	int64_t last_ms;
	int64_t next_spawn_ms;
	int64_t recent[BRAKE_CRASHES];
	int nrecent;
} crash;

static const char *const restart_reason_name[KILN_RESTART_REASONS] = {"crash", "max_requests",
                                                                      "timeout", "reload"};

static int spawn_worker(void)
{
	struct kiln_stats_slot *s;
	pid_t pid;
	int i;

	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++)
		if (children[i].pid == 0)
			break;
	if (i == KILN_STATS_MAX_SLOTS)
		return -1;
	s = kiln_stats_take(&kiln_srv.stats, i);
	/* STARTING before fork: the child sets IDLE itself, and must not be
	 * overwritten by a late store from the parent. */
	__atomic_store_n(&s->state, KILN_WORKER_STARTING, __ATOMIC_RELAXED);
	__atomic_store_n(&s->req_start_ms, 0, __ATOMIC_RELAXED);
	pid = fork();
	if (pid < 0) {
		kiln_error("fork failed", "error=%s", strerror(errno));
		__atomic_store_n(&s->state, KILN_WORKER_EMPTY, __ATOMIC_RELAXED);
		return -1;
	}
	if (pid == 0)
		kiln_worker_main(i);
	__atomic_store_n(&s->pid, pid, __ATOMIC_RELAXED);
	children[i] = (struct child){.pid = pid, .gen = generation, .started_ms = kiln_now_ms()};
	kiln_debug("worker started", "pid=%d slot=%d generation=%d", (int)pid, i, generation);
	return 0;
}

static void note_crash(int64_t now)
{
	int i, in_window = 0;

	if (now - crash.last_ms > CRASH_RESET_MS)
		crash.consecutive = 0;
	crash.last_ms = now;
	crash.consecutive++;
	crash.recent[crash.nrecent++ % BRAKE_CRASHES] = now;
	int64_t backoff = BACKOFF_MIN_MS;
	for (i = 1; i < crash.consecutive && backoff < BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	crash.next_spawn_ms = now + backoff;
	for (i = 0; i < BRAKE_CRASHES && i < crash.nrecent; i++)
		if (now - crash.recent[i] <= BRAKE_WINDOW_MS)
			in_window++;
	if (in_window >= BRAKE_CRASHES) {
		crash.next_spawn_ms = now + BRAKE_PAUSE_MS;
		crash.nrecent = 0;
		kiln_error("crash loop: pausing respawn", "crashes=%d window_ms=%d pause_ms=%d",
		           BRAKE_CRASHES, BRAKE_WINDOW_MS, BRAKE_PAUSE_MS);
	}
}

static int classify_exit(const struct child *c, int status)
{
	if (c->timed_out)
		return KILN_RESTART_TIMEOUT;
	if (WIFEXITED(status) && WEXITSTATUS(status) == KILN_EXIT_RECYCLE)
		return KILN_RESTART_MAX_REQUESTS;
	if (c->stopping && WIFEXITED(status) && WEXITSTATUS(status) == KILN_EXIT_OK)
		return KILN_RESTART_RELOAD;
	return KILN_RESTART_CRASH;
}

static void log_exit(const struct child *c, const struct kiln_stats_slot *s, int status, int reason)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

	if (reason == KILN_RESTART_CRASH)
		kiln_error("worker died", "pid=%d exit=%d signal=%d route=%s", (int)c->pid, code,
		           sig, s->state == KILN_WORKER_BUSY ? s->route : "");
	else if (reason == KILN_RESTART_TIMEOUT)
		kiln_warn("timed-out worker gone", "pid=%d exit=%d signal=%d", (int)c->pid, code,
		          sig);
	else
		kiln_debug("worker exited", "pid=%d reason=%s", (int)c->pid,
		           restart_reason_name[reason]);
}

static void reap_children(void)
{
	int status, i, reason;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < KILN_STATS_MAX_SLOTS && children[i].pid != pid; i++)
			;
		if (i == KILN_STATS_MAX_SLOTS)
			continue;
		struct kiln_stats_slot *s = kiln_stats_slot(&kiln_srv.stats, i);
		reason = classify_exit(&children[i], status);
		log_exit(&children[i], s, status, reason);
		if (!shutting_down) {
			kiln_srv.stats.hdr->restarts[reason]++;
			if (reason == KILN_RESTART_CRASH)
				note_crash(kiln_now_ms());
		}
		__atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->req_start_ms, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->state, KILN_WORKER_EMPTY, __ATOMIC_RELAXED);
		children[i] = (struct child){0};
	}
}

static void stop_child(int i)
{
	children[i].stopping = 1;
	kill(children[i].pid, SIGTERM);
}

/* Keep `workers` workers of the current generation; during a reload replace
 * old-generation workers one at a time: start a new one, wait until it is
 * idle (accepting), then stop one old one. */
static void maintain_workers(void)
{
	int i, live_new = 0, old = 0, starting_new = 0, oldest = -1;
	int64_t now = kiln_now_ms();

	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++) {
		const struct child *c = &children[i];
		if (c->pid == 0 || c->stopping)
			continue;
		if (c->gen == generation) {
			live_new++;
			if (kiln_stats_slot(&kiln_srv.stats, i)->state == KILN_WORKER_STARTING)
				starting_new++;
		} else {
			old++;
			oldest = i;
		}
	}
	if (old > 0) {
		if (starting_new > 0)
			return;
		if (live_new + old > kiln_srv.workers || live_new >= kiln_srv.workers)
			stop_child(oldest);
		else if (now >= crash.next_spawn_ms)
			spawn_worker();
		return;
	}
	if (reloading && starting_new == 0) {
		reloading = 0;
		kiln_info("reload complete", "workers=%d generation=%d", live_new, generation);
		kiln_server_notify("READY=1\nSTATUS=reloaded");
	}
	while (live_new < kiln_srv.workers && now >= crash.next_spawn_ms) {
		if (spawn_worker() < 0)
			break;
		live_new++;
	}
}

/* SIGTERM (then SIGKILL) a worker whose request outlived request_timeout. */
static void enforce_timeouts(void)
{
	int64_t limit = kiln_srv.cfg.server.request_timeout_ms, wall = kiln_wall_ms();
	int64_t now = kiln_now_ms();
	int i;

	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++) {
		struct child *c = &children[i];
		const struct kiln_stats_slot *s;
		int64_t start;

		if (c->pid == 0)
			continue;
		if (c->timed_out) {
			if (now - c->term_ms >= TIMEOUT_GRACE_MS)
				kill(c->pid, SIGKILL);
			continue;
		}
		s = kiln_stats_slot(&kiln_srv.stats, i);
		start = __atomic_load_n(&s->req_start_ms, __ATOMIC_RELAXED);
		if (limit <= 0 || start <= 0 || s->state != KILN_WORKER_BUSY ||
		    wall - start <= limit)
			continue;
		kiln_error("request timeout: replacing worker",
		           "pid=%d method=%s route=%s elapsed_ms=%lld timeout_ms=%lld", (int)c->pid,
		           s->method, s->route, (long long)(wall - start), (long long)limit);
		c->timed_out = 1;
		c->stopping = 1;
		c->term_ms = now;
		kill(c->pid, SIGTERM);
	}
}

static void begin_shutdown(void)
{
	int i;

	shutting_down = 1;
	shutdown_deadline_ms = kiln_now_ms() + kiln_srv.cfg.server.shutdown_timeout_ms;
	kiln_info("shutting down", "timeout_ms=%lld",
	          (long long)kiln_srv.cfg.server.shutdown_timeout_ms);
	kiln_server_notify("STOPPING=1");
	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++)
		if (children[i].pid)
			stop_child(i);
	if (kiln_srv.listen_fd >= 0)
		close(kiln_srv.listen_fd);
}

static void reload_config(void)
{
	struct kiln_config cfg;
	struct kiln_allow allow;
	char err[512];

	kiln_server_notify("RELOADING=1");
	if (kiln_config_load(&cfg, kiln_srv.config_path, kiln_srv.app->name, err, sizeof(err)) <
	        0 ||
	    (kiln_srv.app->check_config &&
	     kiln_srv.app->check_config(&cfg, err, sizeof(err)) < 0) ||
	    kiln_server_allow_load(&allow, &cfg, err, sizeof(err)) < 0) {
		kiln_error("reload failed; keeping the running configuration", "error=%s", err);
		kiln_server_notify("READY=1\nSTATUS=reload failed; see the log");
		return;
	}
	if (strcmp(cfg.server.run_dir, kiln_srv.cfg.server.run_dir) != 0)
		kiln_warn("run_dir changes need a restart", "run_dir=%s",
		          kiln_srv.cfg.server.run_dir);
	kiln_strlcpy(cfg.server.run_dir, kiln_srv.cfg.server.run_dir, sizeof(cfg.server.run_dir));
	kiln_srv.cfg = cfg;
	kiln_srv.allow = allow; /* the new workers use it */
	kiln_log_init(kiln_srv.app->name, cfg.log.format, cfg.log.level, cfg.log.file);
	kiln_srv.workers = kiln_server_worker_count(&cfg);
	generation++;
	reloading = 1;
	kiln_info("reloading", "workers=%d generation=%d", kiln_srv.workers, generation);
}

static void forward_usr1(void)
{
	int i;

	kiln_log_reopen();
	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++)
		if (children[i].pid)
			kill(children[i].pid, SIGUSR1);
}

/* STATUS= for systemctl status, at most once a second, and the watchdog. */
static void notify_status(void)
{
	static int64_t last_status_ms, last_watchdog_ms;
	static char last[128];
	int64_t now = kiln_now_ms(), wd_ms = 0;
	const char *wd = getenv("WATCHDOG_USEC");
	int64_t wd_usec;
	int i, busy = 0, idle = 0;
	uint64_t served = 0;
	char line[128];

	if (wd && kiln_parse_int(wd, 1, INT64_MAX, &wd_usec) == 0)
		wd_ms = wd_usec / 2000;
	if (wd_ms > 0 && now - last_watchdog_ms >= wd_ms) {
		kiln_server_notify("WATCHDOG=1");
		last_watchdog_ms = now;
	}
	if (now - last_status_ms < 1000)
		return;
	last_status_ms = now;
	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++) {
		const struct kiln_stats_slot *s = kiln_stats_slot(&kiln_srv.stats, i);
		served += __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
		if (children[i].pid == 0)
			continue;
		busy += s->state == KILN_WORKER_BUSY;
		idle += s->state == KILN_WORKER_IDLE;
	}
	snprintf(line, sizeof(line), "STATUS=%d busy, %d idle workers; %llu requests served", busy,
	         idle, (unsigned long long)served);
	if (strcmp(line, last) != 0) {
		kiln_server_notify(line);
		memcpy(last, line, sizeof(last));
	}
}

static int live_children(void)
{
	int i, n = 0;

	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++)
		n += children[i].pid != 0;
	return n;
}

static void kill_all(void)
{
	int i;

	for (i = 0; i < KILN_STATS_MAX_SLOTS; i++)
		if (children[i].pid)
			kill(children[i].pid, SIGKILL);
}

int kiln_prefork_run(void)
{
	struct timespec tick = {0, TICK_MS * 1000000L};
	int killed = 0;

	if (kiln_server_signals(&waitmask) < 0) {
		kiln_error("cannot install signal handlers", "error=%s", strerror(errno));
		return 1;
	}
	kiln_info("started", "version=%s workers=%d max_body=%lld", KILN_VERSION, kiln_srv.workers,
	          (long long)kiln_srv.cfg.server.max_body);
	maintain_workers();
	kiln_server_notify("READY=1");
	for (;;) {
		if (kiln_sig_chld) {
			kiln_sig_chld = 0;
			reap_children();
		}
		if (kiln_sig_term && !shutting_down)
			begin_shutdown();
		if (kiln_sig_hup && !shutting_down) {
			kiln_sig_hup = 0;
			reload_config();
		}
		if (kiln_sig_usr1) {
			kiln_sig_usr1 = 0;
			forward_usr1();
		}
		if (shutting_down) {
			if (live_children() == 0)
				break;
			if (!killed && kiln_now_ms() >= shutdown_deadline_ms) {
				kiln_warn("shutdown timeout: killing workers", "left=%d",
				          live_children());
				kill_all();
				killed = 1;
			}
		} else {
			enforce_timeouts();
			maintain_workers();
			notify_status();
		}
		if (ppoll(NULL, 0, &tick, &waitmask) < 0 && errno != EINTR)
			kiln_error("ppoll failed", "error=%s", strerror(errno));
	}
	kiln_info("stopped", NULL);
	return 0;
}
