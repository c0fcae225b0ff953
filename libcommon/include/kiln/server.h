/* server: listen-socket discovery, the prefork master and its workers.
 * An app's main() fills a struct kiln_app and calls kiln_server_main(). */
#ifndef KILN_SERVER_H
#define KILN_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "kiln/config.h"
#include "kiln/http.h"
#include "kiln/router.h"
#include "kiln/stats.h"

struct kiln_db;
struct kiln_redis;
struct kiln_mc;

struct kiln_app {
	const char *name; /* "health" → program kiln-health, scoreboard health.stats */
	const struct kiln_route *routes;
	size_t nroutes;
	const char *const *counter_names; /* app counters in the scoreboard, or NULL */
	const char *const *job_kinds;     /* kiln-worker: its job kinds (kiln_stats_label_kinds) */
	size_t shared_size;               /* zeroed anonymous shared memory, mapped before fork */
	/* App-specific checks of a loaded config (also for -t and SIGHUP).
	 * Return 0, or -1 with a reason in err. May be NULL. */
	int (*check_config)(const struct kiln_config *cfg, char *err, size_t errlen);
	/* A program that serves no FastCGI socket (kiln-worker): each worker
	 * process runs this instead of the request loop and returns its exit
	 * status once kiln_server_stopping() is true. No listening socket is
	 * looked for. NULL for FastCGI programs. */
	int (*run)(int slot);
	/* In each worker after fork. Return 0, or nonzero to make the worker exit. */
	int (*worker_init)(const struct kiln_config *cfg);
	void (*worker_exit)(void);
	/* After a matched route's handler returned, before its response is
	 * sent (kiln-api marks a writer for read-your-writes here). May be NULL. */
	void (*after_handler)(struct kiln_req *req);
};

/* Parse the command line (-c FILE, -t, --listen ADDR, -V, -h), load the
 * config, find the listening socket (LISTEN_FDS, spawn-fcgi's fd 0, or
 * --listen), run the master and its workers until SIGTERM/SIGINT.
 * Returns the process exit status: 0 after a clean shutdown or a good -t,
 * 1 on a config error, 2 on a usage error, 3 when no socket is available. */
int kiln_server_main(const struct kiln_app *app, int argc, char **argv);

/* Inside a worker: the loaded config, the app's shared memory, this worker's
 * scoreboard slot, and its lazily created dependency handles. */
const struct kiln_config *kiln_server_config(void);
void *kiln_server_shared(void);
struct kiln_stats_slot *kiln_server_slot(void);
const struct kiln_stats *kiln_server_stats(void);
struct kiln_db *kiln_server_db(void);
/* The replica set ([database] replica_url and replica_urls), or NULL when
 * no replica is configured. */
struct kiln_db_set *kiln_server_db_replicas(void);
/* The next replica to read from (kiln_db_set_next: round-robin, skipping
 * those resting after a failure), or NULL when no replica is configured or
 * every one rests: then read from the primary. */
struct kiln_db *kiln_server_db_replica(void);
struct kiln_redis *kiln_server_redis(void);
struct kiln_mc *kiln_server_mc(void);

/* Inside a worker: has SIGTERM/SIGINT (or the master's death) asked this
 * process to stop? */
int kiln_server_stopping(void);

/* Inside a worker: wait until fd is readable (fd < 0: just wait) or
 * timeout_ms passes; a signal cuts the wait short. SIGUSR1 reopens the log.
 * Returns 1 when fd is readable, 0 on timeout or signal, -1 on error. */
int kiln_server_wait(int fd, int64_t timeout_ms);

/* The peers allowed to connect to a TCP listener: [server] allow_from plus
 * $FCGI_WEB_SERVER_ADDRS, IPv4 addresses kept as IPv4-mapped IPv6. */
#define KILN_ALLOW_MAX 64
struct kiln_allow {
	size_t n; /* 0 = every peer is allowed */
	unsigned char addr[KILN_ALLOW_MAX][16];
};

/* Add the addresses of list (IPv4 or IPv6, separated by spaces, tabs or
 * commas as in FCGI_WEB_SERVER_ADDRS) to a. Returns 0, or -1 with err set
 * for an item that is not an address or when a would hold more than
 * KILN_ALLOW_MAX. */
int kiln_server_allow_add(struct kiln_allow *a, const char *list, char *err, size_t errlen);

/* May the peer sa (len bytes) connect? Returns 1 when a is empty, when the
 * peer is not an IP peer (a unix socket, guarded by its file mode) or when
 * its address is listed; else 0. */
int kiln_server_allow_ok(const struct kiln_allow *a, const struct sockaddr *sa, socklen_t len);

/* Seconds since the master started. */
double kiln_server_uptime(void);

#endif
