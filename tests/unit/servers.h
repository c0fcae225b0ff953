/* servers.h: real PostgreSQL, Redis and memcached for the unit tests,
 * started in a temporary directory, stopped and restarted by the tests. A
 * server that cannot be started fails the test: the modules over them are
 * only proven against the real thing.
 *
 * As root, PostgreSQL runs as the "postgres" user and memcached as
 * "nobody". The children drop privileges themselves after fork (what
 * `runuser -u postgres --` or `memcached -u` would do) so that each server
 * is a direct child that keeps PR_SET_PDEATHSIG: it dies with the test even
 * when the test itself is killed.
 *
 * Static functions in a header: each unit test is one .c file linked with
 * libcommon.a only, so there is no test library to hold them. A test uses
 *
 *	srv_init("name")     in its group setup: temp dir, ports, users;
 *	srv_start(SRV_...)   for each server it needs (again after a stop);
 *	srv_stop(SRV_..., sig)
 *	srv_cleanup()        in its group teardown: stops all, removes the dir;
 *
 * and srv_db_cfg / srv_redis_cfg / srv_mc_cfg for configurations that
 * point at them. Each server logs to <dir>/<server>.log, dumped to stderr
 * when it fails to start. */
#ifndef KILN_TEST_SERVERS_H
#define KILN_TEST_SERVERS_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kiln/config.h"
#include "kiln/db.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "kiln/util.h"

/* Not every test uses every helper. */
#define SRV_FN static __attribute__((unused))

#define SRV_PG_BIN           "/usr/lib/postgresql/15/bin/"
#define SRV_START_TIMEOUT_MS 15000

enum srv_id { SRV_PG, SRV_REDIS, SRV_MC, SRV_MC_TCP, SRV_COUNT };

static const char *const srv_names[SRV_COUNT] = {"postgres", "redis", "memcached", "memcached-tcp"};

static struct {
	const char *test; /* for messages */
	char dir[64];
	char pgdata[128], pgsock[128], pg_conninfo[256];
	char redis_sock[128], mc_dir[128], mc_sock[128];
	int redis_port, mc_port;
	const char *redis_password; /* set before srv_start(SRV_REDIS); NULL = none */
	int pg_ready;               /* initdb done */
	pid_t pid[SRV_COUNT];
	uid_t pg_uid, mc_uid;
	gid_t pg_gid, mc_gid;
} SRV;

SRV_FN void srv_msleep(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A TCP port that was free a moment ago. */
SRV_FN int srv_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* In the child: log to <dir>/<name>.log, become uid/gid when root, die
 * with the parent, exec. Never returns. */
SRV_FN void srv_child_exec(char *const argv[], const char *name, uid_t uid, gid_t gid, pid_t parent)
{
	char log[160];
	int fd;

	snprintf(log, sizeof(log), "%s/%s.log", SRV.dir, name);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, 0);
	if (geteuid() == 0 && uid != 0 &&
	    (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
		_exit(126);
	/* After setuid: a credential change clears the death signal. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

SRV_FN pid_t srv_spawn(char *const argv[], const char *name, uid_t uid, gid_t gid)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0)
		srv_child_exec(argv, name, uid, gid, parent);
	return pid;
}

/* Wait for pid for at most ms; SIGKILL it after that. Returns its status,
 * or -1 when it had to be killed. */
SRV_FN int srv_reap(pid_t pid, int64_t ms)
{
	int64_t deadline = kiln_now_ms() + ms;
	int status = -1;

	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (kiln_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		srv_msleep(10);
	}
	return status;
}

SRV_FN void srv_dump_log(const char *name)
{
	char path[160], *text;

	snprintf(path, sizeof(path), "%s/%s.log", SRV.dir, name);
	text = kiln_read_file(path, 1 << 16, NULL);
	fprintf(stderr, "--- %s:\n%s\n---\n", path, text ? text : "(no log)");
	free(text);
}

/* Has server s exited (it is then reaped and forgotten)? */
SRV_FN int srv_gone(int s)
{
	if (SRV.pid[s] <= 0 || waitpid(SRV.pid[s], NULL, WNOHANG) == 0)
		return SRV.pid[s] <= 0;
	SRV.pid[s] = 0;
	return 1;
}

/* Until a stream connect to the unix socket path (or 127.0.0.1:port when
 * path is NULL) succeeds; gives up early when server s has exited. */
SRV_FN int srv_wait_connectable(int s, const char *path, int port)
{
	int64_t deadline = kiln_now_ms() + SRV_START_TIMEOUT_MS;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, ok;

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (path)
		kiln_strlcpy(un.sun_path, path, sizeof(un.sun_path));
	while (kiln_now_ms() < deadline && !srv_gone(s)) {
		fd = socket(path ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 && (path ? connect(fd, (struct sockaddr *)&un, sizeof(un))
		                      : connect(fd, (struct sockaddr *)&in, sizeof(in))) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		srv_msleep(10);
	}
	return -1;
}

/* initdb once per test run (superuser "kiln", trust authentication). */
SRV_FN int srv_initdb(void)
{
	char *argv[] = {
	    SRV_PG_BIN "initdb", "-D", SRV.pgdata, "-A", "trust", "-U", "kiln", "-N", "-E", "UTF8",
	    "--locale=C",        NULL};
	pid_t pid = srv_spawn(argv, "initdb", SRV.pg_uid, SRV.pg_gid);
	int status = pid > 0 ? srv_reap(pid, 60000) : -1;

	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		srv_dump_log("initdb");
		return -1;
	}
	SRV.pg_ready = 1;
	return 0;
}

SRV_FN int srv_start_pg(void)
{
	char *argv[] = {SRV_PG_BIN "postgres", "-D", SRV.pgdata,  "-k", SRV.pgsock, "-c",
	                "listen_addresses=",   "-c", "fsync=off", NULL};
	int64_t deadline = kiln_now_ms() + SRV_START_TIMEOUT_MS;

	if (!SRV.pg_ready && srv_initdb() < 0)
		return -1;
	SRV.pid[SRV_PG] = srv_spawn(argv, "postgres", SRV.pg_uid, SRV.pg_gid);
	while (SRV.pid[SRV_PG] > 0 && kiln_now_ms() < deadline && !srv_gone(SRV_PG)) {
		if (PQping(SRV.pg_conninfo) == PQPING_OK)
			return 0;
		srv_msleep(20);
	}
	srv_dump_log("postgres");
	return -1;
}

/* On the unix socket SRV.redis_sock and on 127.0.0.1:SRV.redis_port. */
SRV_FN int srv_start_redis(void)
{
	char port[16];
	char *argv[] = {"redis-server", "--port",       port,     "--bind", "127.0.0.1",
	                "--unixsocket", SRV.redis_sock, "--save", "",       "--appendonly",
	                "no",           "--daemonize",  "no",     "--dir",  SRV.dir,
	                NULL,           NULL,           NULL};
	size_t n = 0;

	snprintf(port, sizeof(port), "%d", SRV.redis_port);
	while (argv[n])
		n++;
	if (SRV.redis_password) { /* into the two spare slots */
		argv[n] = "--requirepass";
		argv[n + 1] = (char *)SRV.redis_password;
	}
	SRV.pid[SRV_REDIS] = srv_spawn(argv, "redis", 0, 0);
	if (SRV.pid[SRV_REDIS] < 0 || srv_wait_connectable(SRV_REDIS, SRV.redis_sock, 0) < 0 ||
	    srv_wait_connectable(SRV_REDIS, NULL, SRV.redis_port) < 0) {
		srv_dump_log("redis");
		return -1;
	}
	return 0;
}

/* SRV_MC on the unix socket SRV.mc_sock, SRV_MC_TCP on 127.0.0.1:SRV.mc_port. */
SRV_FN int srv_start_mc(int s)
{
	char port[16];
	char *unix_argv[] = {"memcached", "-s", SRV.mc_sock, "-m", "16", NULL};
	char *tcp_argv[] = {"memcached", "-l", "127.0.0.1", "-p", port,
	                    "-U",        "0",  "-m",        "16", NULL};
	int tcp = s == SRV_MC_TCP;

	snprintf(port, sizeof(port), "%d", SRV.mc_port);
	/* Dropping root here rather than with memcached's -u keeps the death
	 * signal: memcached's own setuid() would clear it. */
	SRV.pid[s] = srv_spawn(tcp ? tcp_argv : unix_argv, srv_names[s], SRV.mc_uid, SRV.mc_gid);
	if (SRV.pid[s] < 0 || srv_wait_connectable(s, tcp ? NULL : SRV.mc_sock, SRV.mc_port) < 0) {
		srv_dump_log(srv_names[s]);
		return -1;
	}
	return 0;
}

/* Start server s and wait until it accepts connections. Returns 0, or -1
 * (its log dumped to stderr). */
SRV_FN int srv_start(int s)
{
	int rc = -1;

	switch (s) {
	case SRV_PG:
		rc = srv_start_pg();
		break;
	case SRV_REDIS:
		rc = srv_start_redis();
		break;
	case SRV_MC:
	case SRV_MC_TCP:
		rc = srv_start_mc(s);
		break;
	}
	if (rc < 0)
		fprintf(stderr, "%s: could not start %s in %s\n", SRV.test, srv_names[s], SRV.dir);
	return rc;
}

/* Send sig to server s (if running) and wait for it to exit. */
SRV_FN void srv_stop(int s, int sig)
{
	if (SRV.pid[s] > 0) {
		kill(SRV.pid[s], sig);
		srv_reap(SRV.pid[s], 10000);
	}
	SRV.pid[s] = 0;
}

/* Make dir owned by uid/gid (as root) with the given mode. */
SRV_FN int srv_make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, mode) < 0 || chmod(path, mode) < 0)
		return -1;
	return geteuid() == 0 ? chown(path, uid, gid) : 0;
}

/* The account a server runs as: name when root, else ourselves. */
SRV_FN int srv_lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	*uid = geteuid();
	*gid = getegid();
	if (geteuid() != 0)
		return 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		fprintf(stderr, "%s: no '%s' user to run a server as\n", SRV.test, name);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

SRV_FN int srv_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Stop every server (PostgreSQL by immediate shutdown) and remove the
 * directory. Safe to call more than once, and after a failed srv_init. */
SRV_FN void srv_cleanup(void)
{
	int s;

	for (s = 0; s < SRV_COUNT; s++)
		srv_stop(s, s == SRV_PG ? SIGQUIT : SIGKILL);
	if (SRV.dir[0])
		nftw(SRV.dir, srv_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	SRV.dir[0] = '\0';
	SRV.pg_ready = 0;
}

/* Prepare /tmp/kiln-<test>-XXXXXX with the servers' directories, pick the
 * TCP ports and the accounts. Starts nothing. Returns 0, or -1 (cleaned
 * up, reason on stderr). */
SRV_FN int srv_init(const char *test)
{
	SRV.test = test;
	if (snprintf(SRV.dir, sizeof(SRV.dir), "/tmp/kiln-%s-XXXXXX", test) >=
	        (int)sizeof(SRV.dir) ||
	    mkdtemp(SRV.dir) == NULL || chmod(SRV.dir, 0755) < 0) {
		fprintf(stderr, "%s: cannot make a temporary directory: %s\n", test,
		        strerror(errno));
		SRV.dir[0] = '\0';
		return -1;
	}
	snprintf(SRV.pgdata, sizeof(SRV.pgdata), "%s/pg", SRV.dir);
	snprintf(SRV.pgsock, sizeof(SRV.pgsock), "%s/pgsock", SRV.dir);
	snprintf(SRV.pg_conninfo, sizeof(SRV.pg_conninfo), "host=%s dbname=postgres user=kiln",
	         SRV.pgsock);
	snprintf(SRV.redis_sock, sizeof(SRV.redis_sock), "%s/redis.sock", SRV.dir);
	snprintf(SRV.mc_dir, sizeof(SRV.mc_dir), "%s/mc", SRV.dir);
	snprintf(SRV.mc_sock, sizeof(SRV.mc_sock), "%s/mc/mc.sock", SRV.dir);
	SRV.redis_port = srv_free_port();
	SRV.mc_port = srv_free_port();
	if (SRV.redis_port < 0 || SRV.mc_port < 0 ||
	    srv_lookup_user("postgres", &SRV.pg_uid, &SRV.pg_gid) < 0 ||
	    srv_lookup_user("nobody", &SRV.mc_uid, &SRV.mc_gid) < 0 ||
	    srv_make_dir(SRV.pgdata, 0700, SRV.pg_uid, SRV.pg_gid) < 0 ||
	    srv_make_dir(SRV.pgsock, 0755, SRV.pg_uid, SRV.pg_gid) < 0 ||
	    srv_make_dir(SRV.mc_dir, 0755, SRV.mc_uid, SRV.mc_gid) < 0) {
		fprintf(stderr, "%s: cannot prepare %s: %s\n", test, SRV.dir, strerror(errno));
		srv_cleanup();
		return -1;
	}
	return 0;
}

/* Run the SQL file at path (relative to the repository root, where tests
 * run) as one simple query: its statements run in one transaction, as
 * kilnctl's BEGIN ... COMMIT around a migration would. Returns 0, or -1
 * with the reason on stderr. */
SRV_FN int srv_pg_apply(const char *path)
{
	char *sql = kiln_read_file(path, 1 << 20, NULL);
	int rc = -1, read_errno = errno;
	PGconn *c = PQconnectdb(SRV.pg_conninfo);
	PGresult *r = sql ? PQexec(c, sql) : NULL;

	if (sql == NULL)
		fprintf(stderr, "%s: cannot read %s: %s\n", SRV.test, path, strerror(read_errno));
	else if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fprintf(stderr, "%s: %s: %s", SRV.test, path,
		        r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	else
		rc = 0;
	PQclear(r);
	PQfinish(c);
	free(sql);
	return rc;
}

/* Configurations pointing at the servers, with short timeouts. */
SRV_FN void srv_db_cfg(struct kiln_cfg_database *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kiln_strlcpy(cfg->url, SRV.pg_conninfo, sizeof(cfg->url));
	cfg->connect_timeout_ms = 2000;
	cfg->statement_timeout_ms = 5000;
}

SRV_FN void srv_redis_cfg(struct kiln_cfg_redis *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kiln_strlcpy(cfg->address, SRV.redis_sock, sizeof(cfg->address));
	if (SRV.redis_password)
		kiln_strlcpy(cfg->password, SRV.redis_password, sizeof(cfg->password));
	cfg->connect_timeout_ms = 500;
	cfg->command_timeout_ms = 300;
}

SRV_FN void srv_mc_cfg(struct kiln_cfg_memcached *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kiln_strlcpy(cfg->servers, SRV.mc_sock, sizeof(cfg->servers));
	cfg->connect_timeout_ms = 200;
	cfg->command_timeout_ms = 200;
}

/* Handles for those configurations; a handle that cannot even be created
 * (out of memory) ends the test. */
SRV_FN void *srv_handle(void *h, const char *what)
{
	if (h == NULL) {
		fprintf(stderr, "servers: cannot create a %s handle\n", what);
		abort();
	}
	return h;
}

SRV_FN struct kiln_db *srv_db_new(void)
{
	struct kiln_cfg_database cfg;

	srv_db_cfg(&cfg);
	return srv_handle(kiln_db_new(&cfg), "PostgreSQL");
}

SRV_FN struct kiln_redis *srv_redis_new(void)
{
	struct kiln_cfg_redis cfg;

	srv_redis_cfg(&cfg);
	return srv_handle(kiln_redis_new(&cfg), "Redis");
}

SRV_FN struct kiln_mc *srv_mc_new(void)
{
	struct kiln_cfg_memcached cfg;

	srv_mc_cfg(&cfg);
	return srv_handle(kiln_mc_new(&cfg), "memcached");
}

#endif
