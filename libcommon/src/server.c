/* server: command line, config, listen-socket discovery, sd_notify, and the
 * accessors apps use inside a worker. The master lives in prefork.c, the
 * request loop in worker.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "kiln/router.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "server_int.h"

#define KILN_DEFAULT_CONFIG "/etc/kiln/kiln.conf"

struct kiln_server kiln_srv;

volatile sig_atomic_t kiln_sig_term;
volatile sig_atomic_t kiln_sig_hup;
volatile sig_atomic_t kiln_sig_usr1;
volatile sig_atomic_t kiln_sig_chld;

static void on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		kiln_sig_term = 1;
		break;
	case SIGHUP:
		kiln_sig_hup = 1;
		break;
	case SIGUSR1:
		kiln_sig_usr1 = 1;
		break;
	case SIGCHLD:
		kiln_sig_chld = 1;
		break;
	}
}

int kiln_server_signals(sigset_t *waitmask)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD};
	struct sigaction sa;
	sigset_t block;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits return EINTR */
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (i = 0; i < KILN_ARRAY_LEN(sigs); i++) {
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -1;
		sigaddset(&block, sigs[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &block, waitmask) < 0)
		return -1;
	for (i = 0; i < KILN_ARRAY_LEN(sigs); i++)
		sigdelset(waitmask, sigs[i]);
	return 0;
}

int kiln_server_worker_count(const struct kiln_config *cfg)
{
	long n = cfg->server.workers;

	if (n <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		n = n > 0 ? 2 * n : 2;
	}
	if (n > KILN_STATS_MAX_SLOTS / 2)
		n = KILN_STATS_MAX_SLOTS / 2;
	return (int)n;
}

int kiln_server_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	ssize_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return 0;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	close(fd);
	return n < 0 ? -1 : 1;
}

/* Is fd a listening stream socket? */
static int is_listening_socket(int fd)
{
	int val = 0;
	socklen_t len = sizeof(val);
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) < 0)
		return 0;
	return val != 0;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1 → fd 3. */
static int listen_from_systemd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int64_t p, n;

	if (pid == NULL || fds == NULL)
		return -1;
	if (kiln_parse_int(pid, 1, INT32_MAX, &p) < 0 || p != getpid())
		return -1;
	if (kiln_parse_int(fds, 1, 64, &n) < 0)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n > 1)
		kiln_warn("more than one socket passed; using the first", "listen_fds=%d", (int)n);
	if (!is_listening_socket(3))
		return -1;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

static int listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (kiln_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(path); /* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int listen_tcp(const char *addr, int backlog, char *err, size_t errlen)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;
	int fd = -1, one = 1, rc, p;

	if (kiln_parse_addr(addr, host, sizeof(host), &p) < 0 || p < 0) {
		snprintf(err, errlen, "--listen wants PATH or HOST:PORT, got '%s'", addr);
		return -1;
	}
	snprintf(port, sizeof(port), "%d", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		snprintf(err, errlen, "%s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Find the listening socket: systemd, then spawn-fcgi's fd 0, then --listen. */
static int find_listen_fd(const char *listen_arg, int backlog, char *err, size_t errlen)
{
	int fd = listen_from_systemd();

	if (fd >= 0)
		return fd;
	if (is_listening_socket(0))
		return 0;
	if (listen_arg == NULL) {
		snprintf(err, errlen,
		         "no listening socket: not socket-activated (LISTEN_FDS), "
		         "fd 0 is not a socket (spawn-fcgi), and no --listen given");
		return -1;
	}
	if (listen_arg[0] == '/' || listen_arg[0] == '.')
		return listen_unix(listen_arg, backlog, err, errlen);
	return listen_tcp(listen_arg, backlog, err, errlen);
}

/* One address of len bytes into out as IPv6 (IPv4 mapped). Returns 0, or -1. */
static int allow_parse_one(const char *item, size_t len, unsigned char out[16])
{
	char a[INET6_ADDRSTRLEN];
	struct in_addr v4;

	if (len == 0 || len >= sizeof(a))
		return -1;
	memcpy(a, item, len);
	a[len] = '\0';
	if (inet_pton(AF_INET6, a, out) == 1)
		return 0;
	if (inet_pton(AF_INET, a, &v4) != 1)
		return -1;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &v4, 4);
	return 0;
}

int kiln_server_allow_add(struct kiln_allow *a, const char *list, char *err, size_t errlen)
{
	const char *p = list;
	size_t len;

	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			return 0;
		len = strcspn(p, " \t,");
		if (a->n >= KILN_ALLOW_MAX) {
			snprintf(err, errlen, "more than %d allowed addresses", KILN_ALLOW_MAX);
			return -1;
		}
		if (allow_parse_one(p, len, a->addr[a->n]) < 0) {
			snprintf(err, errlen, "'%.*s' is not an IPv4 or IPv6 address",
			         (int)(len > 64 ? 64 : len), p);
			return -1;
		}
		a->n++;
		p += len;
	}
}

int kiln_server_allow_ok(const struct kiln_allow *a, const struct sockaddr *sa, socklen_t len)
{
	unsigned char peer[16];
	size_t i;

	if (a->n == 0)
		return 1;
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(peer, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memset(peer, 0, 10);
		peer[10] = peer[11] = 0xff;
		memcpy(peer + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		return sa->sa_family == AF_UNIX;
	}
	for (i = 0; i < a->n; i++)
		if (memcmp(a->addr[i], peer, 16) == 0)
			return 1;
	return 0;
}

int kiln_server_allow_load(struct kiln_allow *a, const struct kiln_config *cfg, char *err,
                           size_t errlen)
{
	const char *env = getenv("FCGI_WEB_SERVER_ADDRS");
	char why[160];

	memset(a, 0, sizeof(*a));
	if (kiln_server_allow_add(a, cfg->server.allow_from, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "[server] allow_from: %s", why);
		return -1;
	}
	if (env && kiln_server_allow_add(a, env, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "FCGI_WEB_SERVER_ADDRS: %s", why);
		return -1;
	}
	return 0;
}

static void usage(FILE *f, const char *app)
{
	fprintf(f,
	        "usage: kiln-%s [-c FILE] [-t] [--listen PATH|HOST:PORT] [-V]\n"
	        "  -c, --config FILE   configuration (default $KILN_CONFIG or %s)\n"
	        "  -t, --test          check the configuration and exit\n"
	        "  -l, --listen ADDR   listen here when not socket-activated (development)\n"
	        "  -V, --version       print the version and exit\n",
	        app, KILN_DEFAULT_CONFIG);
}

struct kiln_args {
	const char *config;
	const char *listen;
	int test;
};

/* Returns -1 to continue, else an exit status. */
static int parse_args(const struct kiln_app *app, int argc, char **argv, struct kiln_args *a)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
	    {"listen", required_argument, NULL, 'l'}, {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	int c;

	a->config = getenv("KILN_CONFIG");
	if (a->config == NULL)
		a->config = KILN_DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:tl:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 't':
			a->test = 1;
			break;
		case 'l':
			a->listen = optarg;
			break;
		case 'V':
			printf("kiln-%s %s (%s)\n", app->name, KILN_VERSION, KILN_COMMIT);
			return 0;
		case 'h':
			usage(stdout, app->name);
			return 0;
		default:
			usage(stderr, app->name);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, app->name);
		return 2;
	}
	return -1;
}

/* Create the scoreboard labelled with the app's routes. */
static int open_scoreboard(void)
{
	const struct kiln_app *app = kiln_srv.app;
	const char *methods[KILN_STATS_MAX_ROUTES], *patterns[KILN_STATS_MAX_ROUTES];
	const char *counters[KILN_STATS_MAX_COUNTERS + 1];
	char path[KILN_CFG_STR_MAX + 64];
	size_t i, n = app->nroutes < KILN_STATS_MAX_ROUTES ? app->nroutes : KILN_STATS_MAX_ROUTES;
	size_t nc = 0;

	for (i = 0; i < n; i++) {
		methods[i] = app->routes[i].method;
		patterns[i] = app->routes[i].pattern;
	}
	/* The server's own counter follows the app's, so app indexes stay. */
	while (app->counter_names && app->counter_names[nc] && nc < KILN_STATS_MAX_COUNTERS - 1) {
		counters[nc] = app->counter_names[nc];
		nc++;
	}
	kiln_srv.refused_counter = (int)nc;
	counters[nc++] = "server_refused_connections";
	counters[nc] = NULL;
	snprintf(path, sizeof(path), "%s/%s.stats", kiln_srv.cfg.server.run_dir, app->name);
	if (kiln_stats_create(&kiln_srv.stats, path, app->name, methods, patterns, n, counters) <
	    0) {
		kiln_error("cannot create scoreboard", "path=%s error=%s", path, strerror(errno));
		return -1;
	}
	kiln_stats_label_kinds(&kiln_srv.stats, app->job_kinds);
	return 0;
}

int kiln_server_main(const struct kiln_app *app, int argc, char **argv)
{
	struct kiln_args args = {0};
	char err[512];
	int rc;

	kiln_srv.app = app;
	rc = parse_args(app, argc, argv, &args);
	if (rc >= 0)
		return rc;
	kiln_srv.config_path = args.config;
	if (kiln_config_load(&kiln_srv.cfg, args.config, app->name, err, sizeof(err)) < 0) {
		fprintf(stderr, "kiln-%s: %s\n", app->name, err);
		return 1;
	}
	if (app->check_config && app->check_config(&kiln_srv.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kiln-%s: %s: %s\n", app->name, args.config, err);
		return 1;
	}
	if (kiln_router_check(app->routes, app->nroutes, err, sizeof(err)) < 0) {
		fprintf(stderr, "kiln-%s: bad route table: %s\n", app->name, err);
		return 1;
	}
	if (kiln_server_allow_load(&kiln_srv.allow, &kiln_srv.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kiln-%s: %s: %s\n", app->name, args.config, err);
		return 1;
	}
	if (args.test) {
		printf("kiln-%s: configuration %s is valid\n", app->name, args.config);
		return 0;
	}
	kiln_log_init(app->name, kiln_srv.cfg.log.format, kiln_srv.cfg.log.level,
	              kiln_srv.cfg.log.file);
	kiln_srv.listen_fd = -1;
	if (app->run == NULL) {
		kiln_srv.listen_fd =
		    find_listen_fd(args.listen, (int)kiln_srv.cfg.server.backlog, err, sizeof(err));
		if (kiln_srv.listen_fd < 0) {
			kiln_error("cannot listen", "error=%s", err);
			return 3;
		}
		/* Non-blocking, so a worker that loses the race for a connection
		 * gets EAGAIN from accept instead of sleeping in it, deaf to
		 * signals. */
		fcntl(kiln_srv.listen_fd, F_SETFL, fcntl(kiln_srv.listen_fd, F_GETFL) | O_NONBLOCK);
	}
	kiln_srv.workers = kiln_server_worker_count(&kiln_srv.cfg);
	kiln_srv.master_pid = getpid();
	kiln_srv.start_wall_ms = kiln_wall_ms();
	kiln_srv.start_mono_ms = kiln_now_ms();
	if (app->shared_size) {
		kiln_srv.shared = mmap(NULL, app->shared_size, PROT_READ | PROT_WRITE,
		                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (kiln_srv.shared == MAP_FAILED) {
			kiln_error("cannot map shared memory", "error=%s", strerror(errno));
			return 1;
		}
	}
	if (open_scoreboard() < 0)
		return 1;
	if (app->run == NULL)
		FCGX_Init();
	return kiln_prefork_run();
}

const struct kiln_config *kiln_server_config(void)
{
	return &kiln_srv.cfg;
}

void *kiln_server_shared(void)
{
	return kiln_srv.shared;
}

const struct kiln_stats *kiln_server_stats(void)
{
	return &kiln_srv.stats;
}

double kiln_server_uptime(void)
{
	return (double)(kiln_now_ms() - kiln_srv.start_mono_ms) / 1000.0;
}

/* Per-worker dependency handles, created on first use. */
static struct kiln_db *worker_db;
static struct kiln_db_set *worker_replicas;
static struct kiln_redis *worker_redis;
static struct kiln_mc *worker_mc;

struct kiln_db *kiln_server_db(void)
{
	if (worker_db == NULL)
		worker_db = kiln_db_new(&kiln_srv.cfg.database);
	return worker_db;
}

struct kiln_db_set *kiln_server_db_replicas(void)
{
	const struct kiln_cfg_database *c = &kiln_srv.cfg.database;

	if (c->replica_url[0] == '\0' && c->replica_urls[strspn(c->replica_urls, " \t")] == '\0')
		return NULL;
	if (worker_replicas == NULL)
		worker_replicas = kiln_db_set_new(c);
	return worker_replicas;
}

struct kiln_db *kiln_server_db_replica(void)
{
	return kiln_db_set_next(kiln_server_db_replicas());
}

struct kiln_redis *kiln_server_redis(void)
{
	if (worker_redis == NULL)
		worker_redis = kiln_redis_new(&kiln_srv.cfg.redis);
	return worker_redis;
}

struct kiln_mc *kiln_server_mc(void)
{
	if (worker_mc == NULL)
		worker_mc = kiln_mc_new(&kiln_srv.cfg.memcached);
	return worker_mc;
}

void kiln_server_drop_handles(void)
{
	kiln_db_free(worker_db);
	kiln_db_set_free(worker_replicas);
	kiln_redis_free(worker_redis);
	kiln_mc_free(worker_mc);
	worker_db = NULL;
	worker_replicas = NULL;
	worker_redis = NULL;
	worker_mc = NULL;
}
