/* Internal interface between server.c (entry), prefork.c (master) and
 * worker.c (request loop). Not installed; apps use kiln/server.h. */
#ifndef KILN_SERVER_INT_H
#define KILN_SERVER_INT_H

#include <signal.h>
#include <stdint.h>

#include "kiln/config.h"
#include "kiln/server.h"
#include "kiln/stats.h"

/* Worker exit codes the master understands. */
#define KILN_EXIT_OK          0  /* asked to stop, or recycled after max_requests */
#define KILN_EXIT_RECYCLE     10 /* reached max_requests */
#define KILN_EXIT_INIT_FAILED 11

struct kiln_server {
	const struct kiln_app *app;
	struct kiln_config cfg;
	const char *config_path;
	int listen_fd;
	int workers; /* resolved from cfg (0 → 2 x cores, capped) */
	struct kiln_stats stats;
	void *shared;
	pid_t master_pid;
	int64_t start_wall_ms;
	int64_t start_mono_ms;
	struct kiln_allow allow; /* TCP peers allowed; workers inherit it */
	int refused_counter;     /* scoreboard counter of refused connections */
};

extern struct kiln_server kiln_srv;

/* Flags set by signal handlers, read by the loops. */
extern volatile sig_atomic_t kiln_sig_term;
extern volatile sig_atomic_t kiln_sig_hup;
extern volatile sig_atomic_t kiln_sig_usr1;
extern volatile sig_atomic_t kiln_sig_chld;

/* Install flag-setting handlers (no SA_RESTART) and block them; the loops
 * unblock them only while waiting. Returns 0, or -1. */
int kiln_server_signals(sigset_t *waitmask);

/* Resolve the worker count of cfg. */
int kiln_server_worker_count(const struct kiln_config *cfg);

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when not under systemd, -1 on error. */
int kiln_server_notify(const char *state);

/* The allow-list of cfg: [server] allow_from plus $FCGI_WEB_SERVER_ADDRS.
 * Returns 0, or -1 with err set. */
int kiln_server_allow_load(struct kiln_allow *a, const struct kiln_config *cfg, char *err,
                           size_t errlen);

/* Run the prefork master until shutdown. Returns the exit status. */
int kiln_prefork_run(void);

/* Close a worker's dependency handles (at worker exit). */
void kiln_server_drop_handles(void);

/* Body of a worker process for scoreboard slot `slot`. Never returns. */
void kiln_worker_main(int slot) __attribute__((noreturn));

#endif
