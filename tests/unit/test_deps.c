/* test_deps: db, redis and mc against real PostgreSQL, Redis and memcached
 * servers that this test starts in a temporary directory, stops and
 * restarts. A server that cannot be started fails the test: these modules
 * are only proven against the real thing.
 *
 * As root, PostgreSQL runs as the "postgres" user and memcached as
 * "nobody". The children drop privileges themselves after fork (what
 * `runuser -u postgres --` or `memcached -u` would do) so that each server
 * is a direct child that keeps PR_SET_PDEATHSIG: it dies with the test even
 * when the test itself is killed. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

#include <cmocka.h>

#include "kiln/db.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "kiln/util.h"

#define PG_BIN           "/usr/lib/postgresql/15/bin/"
#define PG_PASSWORD      "s3cret-never-in-errors"
#define REDIS_PASSWORD   "redis-test-pw"
#define START_TIMEOUT_MS 15000

enum { SRV_PG, SRV_REDIS, SRV_MC, SRV_MC_TCP, SRV_COUNT };

static const char *const srv_names[SRV_COUNT] = {"postgres", "redis", "memcached", "memcached-tcp"};

static struct {
	char dir[64];
	char pgdata[128], pgsock[128], redis_sock[128], mc_dir[128], mc_sock[128];
	int redis_port, mc_port;
	pid_t pid[SRV_COUNT];
	uid_t pg_uid, mc_uid;
	gid_t pg_gid, mc_gid;
} E;

static void msleep(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A TCP port that was free a moment ago. */
static int free_port(void)
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
static void child_exec(char *const argv[], const char *name, uid_t uid, gid_t gid, pid_t parent)
{
	char log[160];
	int fd;

	snprintf(log, sizeof(log), "%s/%s.log", E.dir, name);
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
	_exit(127);
}

static pid_t spawn(char *const argv[], const char *name, uid_t uid, gid_t gid)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0)
		child_exec(argv, name, uid, gid, parent);
	return pid;
}

/* Wait for pid for at most ms; SIGKILL it after that. Returns its status. */
static int reap(pid_t pid, int64_t ms)
{
	int64_t deadline = kiln_now_ms() + ms;
	int status = -1;

	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (kiln_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		msleep(10);
	}
	return status;
}

static void stop_server(int s, int sig)
{
	if (E.pid[s] > 0) {
		kill(E.pid[s], sig);
		reap(E.pid[s], 10000);
	}
	E.pid[s] = 0;
}

static void dump_log(const char *name)
{
	char path[160], *text;

	snprintf(path, sizeof(path), "%s/%s.log", E.dir, name);
	text = kiln_read_file(path, 1 << 16, NULL);
	fprintf(stderr, "--- %s:\n%s\n---\n", path, text ? text : "(no log)");
	free(text);
}

/* Until a stream connect to a unix socket or 127.0.0.1:port succeeds. */
static int wait_connectable(const char *path, int port, int64_t ms)
{
	int64_t deadline = kiln_now_ms() + ms;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, ok;

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (path)
		kiln_strlcpy(un.sun_path, path, sizeof(un.sun_path));
	while (kiln_now_ms() < deadline) {
		fd = socket(path ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 && (path ? connect(fd, (struct sockaddr *)&un, sizeof(un))
		                      : connect(fd, (struct sockaddr *)&in, sizeof(in))) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		msleep(10);
	}
	return -1;
}

static void pg_conninfo(char *out, size_t len)
{
	snprintf(out, len, "host=%s dbname=postgres user=kiln", E.pgsock);
}

static int start_pg(void)
{
	char *argv[] = {PG_BIN "postgres",
	                "-D",
	                E.pgdata,
	                "-k",
	                E.pgsock,
	                "-c",
	                "listen_addresses=",
	                "-c",
	                "fsync=off",
	                "-c",
	                "max_connections=20",
	                NULL};
	char ci[256];
	int64_t deadline = kiln_now_ms() + START_TIMEOUT_MS;

	E.pid[SRV_PG] = spawn(argv, "postgres", E.pg_uid, E.pg_gid);
	if (E.pid[SRV_PG] < 0)
		return -1;
	pg_conninfo(ci, sizeof(ci));
	while (kiln_now_ms() < deadline) {
		if (PQping(ci) == PQPING_OK)
			return 0;
		if (waitpid(E.pid[SRV_PG], NULL, WNOHANG) != 0)
			break;
		msleep(20);
	}
	dump_log("postgres");
	return -1;
}

static int start_redis(void)
{
	char port[16];
	char *argv[] = {
	    "redis-server", "--port", port,  "--bind",        "127.0.0.1",    "--unixsocket",
	    E.redis_sock,   "--save", "",    "--appendonly",  "no",           "--daemonize",
	    "no",           "--dir",  E.dir, "--requirepass", REDIS_PASSWORD, NULL};

	snprintf(port, sizeof(port), "%d", E.redis_port);
	E.pid[SRV_REDIS] = spawn(argv, "redis", 0, 0);
	if (E.pid[SRV_REDIS] < 0 || wait_connectable(E.redis_sock, 0, START_TIMEOUT_MS) < 0 ||
	    wait_connectable(NULL, E.redis_port, START_TIMEOUT_MS) < 0) {
		dump_log("redis");
		return -1;
	}
	return 0;
}

static int start_mc(int tcp)
{
	char port[16];
	char *unix_argv[] = {"memcached", "-s", E.mc_sock, "-m", "16", NULL};
	char *tcp_argv[] = {"memcached", "-l", "127.0.0.1", "-p", port,
	                    "-U",        "0",  "-m",        "16", NULL};
	int s = tcp ? SRV_MC_TCP : SRV_MC;

	snprintf(port, sizeof(port), "%d", E.mc_port);
	/* Dropping root here rather than with memcached's -u keeps the death
	 * signal: memcached's own setuid() would clear it. */
	E.pid[s] = spawn(tcp ? tcp_argv : unix_argv, srv_names[s], E.mc_uid, E.mc_gid);
	if (E.pid[s] < 0 ||
	    wait_connectable(tcp ? NULL : E.mc_sock, E.mc_port, START_TIMEOUT_MS) < 0) {
		dump_log(srv_names[s]);
		return -1;
	}
	return 0;
}

/* Make dir owned by uid/gid (as root) with the given mode. */
static int make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, mode) < 0 || chmod(path, mode) < 0)
		return -1;
	return geteuid() == 0 ? chown(path, uid, gid) : 0;
}

static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	*uid = geteuid();
	*gid = getegid();
	if (geteuid() != 0)
		return 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		fprintf(stderr, "test_deps: no '%s' user to run the server as\n", name);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int init_pg(void)
{
	char *argv[] = {PG_BIN "initdb", "-D", E.pgdata, "-A",   "trust",      "-U",
	                "kiln",          "-N", "-E",     "UTF8", "--locale=C", NULL};
	pid_t pid = spawn(argv, "initdb", E.pg_uid, E.pg_gid);
	int status = pid > 0 ? reap(pid, 60000) : -1;

	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "test_deps: initdb failed\n");
		dump_log("initdb");
		return -1;
	}
	return 0;
}

static int layout(void)
{
	strcpy(E.dir, "/tmp/kiln-deps-XXXXXX");
	if (mkdtemp(E.dir) == NULL || chmod(E.dir, 0755) < 0)
		return -1;
	snprintf(E.pgdata, sizeof(E.pgdata), "%s/pg", E.dir);
	snprintf(E.pgsock, sizeof(E.pgsock), "%s/pgsock", E.dir);
	snprintf(E.redis_sock, sizeof(E.redis_sock), "%s/redis.sock", E.dir);
	snprintf(E.mc_dir, sizeof(E.mc_dir), "%s/mc", E.dir);
	snprintf(E.mc_sock, sizeof(E.mc_sock), "%s/mc/mc.sock", E.dir);
	E.redis_port = free_port();
	E.mc_port = free_port();
	if (E.redis_port < 0 || E.mc_port < 0 ||
	    lookup_user("postgres", &E.pg_uid, &E.pg_gid) < 0 ||
	    lookup_user("nobody", &E.mc_uid, &E.mc_gid) < 0)
		return -1;
	if (make_dir(E.pgdata, 0700, E.pg_uid, E.pg_gid) < 0 ||
	    make_dir(E.pgsock, 0755, E.pg_uid, E.pg_gid) < 0 ||
	    make_dir(E.mc_dir, 0755, E.mc_uid, E.mc_gid) < 0)
		return -1;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	stop_server(SRV_PG, SIGQUIT); /* immediate shutdown */
	stop_server(SRV_REDIS, SIGKILL);
	stop_server(SRV_MC, SIGKILL);
	stop_server(SRV_MC_TCP, SIGKILL);
	if (E.dir[0])
		nftw(E.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static int group_setup(void **state)
{
	int64_t t0 = kiln_now_ms();

	(void)state;
	if (layout() < 0) {
		fprintf(stderr, "test_deps: cannot prepare %s: %s\n", E.dir, strerror(errno));
		group_teardown(NULL);
		return -1;
	}
	if (init_pg() < 0 || start_pg() < 0 || start_redis() < 0 || start_mc(0) < 0 ||
	    start_mc(1) < 0) {
		fprintf(stderr, "test_deps: could not start the servers in %s\n", E.dir);
		group_teardown(NULL);
		return -1;
	}
	fprintf(stderr, "test_deps: servers up in %lld ms\n", (long long)(kiln_now_ms() - t0));
	return 0;
}

/* ---- PostgreSQL ---- */

static struct kiln_db *new_db(void)
{
	struct kiln_cfg_database cfg;
	struct kiln_db *db;

	memset(&cfg, 0, sizeof(cfg));
	pg_conninfo(cfg.url, sizeof(cfg.url));
	kiln_strlcpy(cfg.password, PG_PASSWORD, sizeof(cfg.password));
	cfg.connect_timeout_ms = 2000;
	cfg.statement_timeout_ms = 5000;
	db = kiln_db_new(&cfg);
	assert_non_null(db);
	return db;
}

/* Run sql and return the first value as a new string (the test frees it). */
static char *db_value(struct kiln_db *db, const char *sql, int n, const char *const *v)
{
	char err[256] = "";
	PGresult *res = kiln_db_exec(db, sql, n, v, 0, err, sizeof(err));
	char *out;

	if (res == NULL)
		fail_msg("%s: %s", sql, err);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

static void assert_db_value(struct kiln_db *db, const char *sql, int n, const char *const *v,
                            const char *want)
{
	char *got = db_value(db, sql, n, v);

	assert_string_equal(got, want);
	free(got);
}

static void test_db_exec_with_parameters(void **state)
{
	const char *const v[] = {"2", "40", "it's \"quoted\"; DROP TABLE x"};
	struct kiln_db *db = new_db();
	char err[256] = "";
	PGresult *res;

	(void)state;
	assert_db_value(db, "SELECT $1::int + $2::int", 2, v, "42");
	assert_db_value(db, "SELECT $1::text", 1, v + 2, v[2]);
	assert_db_value(db, "SELECT current_setting('application_name')", 0, NULL, "kiln");
	assert_db_value(db, "SHOW statement_timeout", 0, NULL, "5s");
	/* An SQL error is a result, and the connection stays. */
	res = kiln_db_exec(db, "SELECT 1/0", 0, NULL, 0, err, sizeof(err));
	assert_non_null(res);
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22012");
	PQclear(res);
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	assert_int_equal(kiln_db_connects(db), 1);
	assert_non_null(kiln_db_conn(db, err, sizeof(err)));
	assert_int_equal(kiln_db_ping(db, 1000, err, sizeof(err)), 0);
	kiln_db_free(db);
}

/* kiln_db_query: success is a result; a statement PostgreSQL refuses and a
 * server that cannot be reached are both NULL, told apart by *failed, with a
 * one-line reason carrying the SQLSTATE. */
static void test_db_query_tells_refused_from_unavailable(void **state)
{
	const char *const v[] = {"41"};
	struct kiln_db *db = new_db(), *nowhere;
	struct kiln_cfg_database cfg = {0};
	char err[256] = "";
	PGresult *res;
	int failed = 0;

	(void)state;
	res = kiln_db_query(db, "q_ok", "SELECT $1::int + 1", 1, v, 0, &failed, err, sizeof(err));
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "42");
	PQclear(res);
	res = kiln_db_query(db, NULL, "SELECT 1/0", 0, NULL, 0, &failed, err, sizeof(err));
	assert_null(res);
	assert_int_equal(failed, KILN_DB_REFUSED);
	assert_non_null(strstr(err, "division by zero"));
	assert_non_null(strstr(err, "(SQLSTATE 22012)"));
	assert_null(strchr(err, '\n'));
	/* the connection survives a refused statement */
	res = kiln_db_query(db, NULL, "SELECT 1", 0, NULL, 0, NULL, err, sizeof(err));
	assert_non_null(res);
	PQclear(res);
	kiln_db_free(db);
	snprintf(cfg.url, sizeof(cfg.url), "host=%s/nowhere dbname=kiln", E.dir);
	cfg.connect_timeout_ms = 200;
	nowhere = kiln_db_new(&cfg);
	failed = 0;
	assert_null(
	    kiln_db_query(nowhere, NULL, "SELECT 1", 0, NULL, 0, &failed, err, sizeof(err)));
	assert_int_equal(failed, KILN_DB_UNAVAILABLE);
	kiln_db_free(nowhere);
}

static void test_db_prepares_once_per_connection(void **state)
{
	static const char *const sql = "SELECT $1::int * 2";
	static const char *const count_sql =
	    "SELECT count(*) FROM pg_prepared_statements WHERE name = 'kiln_test_double'";
	const char *const v1[] = {"21"}, *const v2[] = {"50"};
	struct kiln_db *db = new_db();
	char err[256] = "";
	PGresult *res;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		res = kiln_db_exec_prepared(db, "kiln_test_double", sql, 1, i ? v2 : v1, 0, err,
		                            sizeof(err));
		assert_non_null(res);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(res, 0, 0), i ? "100" : "42");
		PQclear(res);
	}
	assert_db_value(db, count_sql, 0, NULL, "1");
	/* A statement that fails to prepare returns the error every time
	 * (it was not remembered as prepared). */
	for (i = 0; i < 2; i++) {
		res = kiln_db_exec_prepared(db, "kiln_test_bad", "SELEC nope", 0, NULL, 0, err,
		                            sizeof(err));
		assert_non_null(res);
		assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42601");
		PQclear(res);
	}
	assert_int_equal(kiln_db_connects(db), 1);
	kiln_db_free(db);
}

static void test_db_timeout_cancels_and_connection_survives(void **state)
{
	struct kiln_db *db = new_db();
	char err[256] = "";
	int64_t t0;
	PGresult *res;

	(void)state;
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	t0 = kiln_now_ms();
	res = kiln_db_exec(db, "SELECT pg_sleep(2)", 0, NULL, 200, err, sizeof(err));
	assert_null(res);
	assert_true(kiln_now_ms() - t0 < 500);
	assert_non_null(strstr(err, "timed out"));
	/* Cancelled, not merely abandoned: the backend is idle again. */
	assert_db_value(db,
	                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
	                "AND query LIKE 'SELECT pg_sleep%'",
	                0, NULL, "0");
	assert_int_equal(kiln_db_connects(db), 1);
	kiln_db_free(db);
}

static void test_db_backs_off_while_down_and_recovers(void **state)
{
	struct kiln_db *db = new_db();
	char err[256] = "";
	int64_t t0, waited;
	PGresult *res = NULL;

	(void)state;
	assert_db_value(db, "SELECT 1", 0, NULL, "1");
	stop_server(SRV_PG, SIGINT); /* fast shutdown: sessions are terminated */
	t0 = kiln_now_ms();
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_true(kiln_now_ms() - t0 < 200);
	assert_null(strstr(err, PG_PASSWORD));
	/* Within the backoff: no I/O, no wait, and the error says so. */
	t0 = kiln_now_ms();
	assert_null(kiln_db_exec(db, "SELECT 1", 0, NULL, 0, err, sizeof(err)));
	assert_true(kiln_now_ms() - t0 < 5);
	assert_non_null(strstr(err, "next attempt in"));
	assert_null(kiln_db_conn(db, err, sizeof(err)));
	assert_int_equal(kiln_db_ping(db, 300, err, sizeof(err)), -1);
	assert_null(strstr(err, PG_PASSWORD));
	assert_int_equal(start_pg(), 0);
	t0 = kiln_now_ms();
	while (res == NULL && kiln_now_ms() - t0 < 5000) {
		res = kiln_db_exec(db, "SELECT 7", 0, NULL, 0, err, sizeof(err));
		if (res == NULL)
			msleep(10);
	}
	waited = kiln_now_ms() - t0;
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "7");
	PQclear(res);
	assert_true(waited <= 2100); /* at most one full backoff (2 s cap) */
	assert_int_equal(kiln_db_connects(db), 2);
	kiln_db_free(db);
}

/* ---- Redis ---- */

static struct kiln_redis *new_redis(const char *address, const char *password)
{
	struct kiln_cfg_redis cfg;
	struct kiln_redis *r;

	memset(&cfg, 0, sizeof(cfg));
	kiln_strlcpy(cfg.address, address, sizeof(cfg.address));
	kiln_strlcpy(cfg.password, password, sizeof(cfg.password));
	cfg.db = 1;
	cfg.connect_timeout_ms = 500;
	cfg.command_timeout_ms = 300;
	r = kiln_redis_new(&cfg);
	assert_non_null(r);
	return r;
}

static void assert_redis_str(struct kiln_redis *r, const char *want, const char *fmt,
                             const char *arg)
{
	char err[256] = "";
	redisReply *reply = kiln_redis_command(r, err, sizeof(err), fmt, arg);

	if (reply == NULL)
		fail_msg("%s: %s", fmt, err);
	if (want == NULL)
		assert_int_equal(reply->type, REDIS_REPLY_NIL);
	else
		assert_string_equal(reply->str, want);
	freeReplyObject(reply);
}

static void test_redis_commands_auth_and_select(void **state)
{
	struct kiln_redis *r = new_redis(E.redis_sock, REDIS_PASSWORD), *r0;
	char err[256] = "", tcp[64];
	redisReply *reply;

	(void)state;
	assert_int_equal(kiln_redis_ping(r, 500, err, sizeof(err)), 0);
	assert_redis_str(r, "OK", "SET kiln:test %s", "v a l");
	assert_redis_str(r, "v a l", "GET %s", "kiln:test");
	/* SELECT 1 happened: database 0 does not have the key. */
	r0 = new_redis(E.redis_sock, REDIS_PASSWORD);
	assert_redis_str(r0, "OK", "SELECT %s", "0");
	assert_redis_str(r0, NULL, "GET %s", "kiln:test");
	kiln_redis_free(r0);
	/* Error replies come back as replies. */
	reply = kiln_redis_command(r, err, sizeof(err), "INCR %s", "kiln:test");
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_ERROR);
	freeReplyObject(reply);
	assert_redis_str(r, "PONG", "PING", NULL);
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", E.redis_port);
	r0 = new_redis(tcp, REDIS_PASSWORD);
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), 0);
	kiln_redis_free(r0);
	r0 = new_redis(E.redis_sock, "wrong-password");
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "AUTH"));
	assert_null(strstr(err, "wrong-password"));
	kiln_redis_free(r0);
	r0 = new_redis("no-port-here", "");
	assert_int_equal(kiln_redis_ping(r0, 500, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad address"));
	kiln_redis_free(r0);
	kiln_redis_free(r);
}

static void test_redis_command_timeout_drops_connection(void **state)
{
	struct kiln_redis *r = new_redis(E.redis_sock, REDIS_PASSWORD);
	char err[256] = "";
	int64_t t0;

	(void)state;
	assert_redis_str(r, "PONG", "PING", NULL);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "BLPOP kiln:empty 2"));
	assert_true(kiln_now_ms() - t0 >= 250 && kiln_now_ms() - t0 < 600);
	msleep(60); /* first backoff step is 50 ms */
	assert_redis_str(r, "PONG", "PING", NULL);
	kiln_redis_free(r);
}

static void test_redis_backs_off_while_down_and_recovers(void **state)
{
	struct kiln_redis *r = new_redis(E.redis_sock, REDIS_PASSWORD);
	redisReply *reply = NULL;
	char err[256] = "";
	int64_t t0;

	(void)state;
	assert_redis_str(r, "PONG", "PING", NULL);
	stop_server(SRV_REDIS, SIGKILL);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "PING"));
	assert_true(kiln_now_ms() - t0 < 200);
	t0 = kiln_now_ms();
	assert_null(kiln_redis_command(r, err, sizeof(err), "PING"));
	assert_true(kiln_now_ms() - t0 < 5);
	assert_non_null(strstr(err, "next attempt in"));
	assert_int_equal(kiln_redis_ping(r, 300, err, sizeof(err)), -1);
	assert_int_equal(start_redis(), 0);
	t0 = kiln_now_ms();
	while (reply == NULL && kiln_now_ms() - t0 < 5000) {
		reply = kiln_redis_command(r, err, sizeof(err), "PING");
		if (reply == NULL)
			msleep(10);
	}
	assert_non_null(reply);
	assert_string_equal(reply->str, "PONG");
	freeReplyObject(reply);
	assert_true(kiln_now_ms() - t0 <= 2100);
	kiln_redis_free(r);
}

/* ---- memcached ---- */

static struct kiln_mc *new_mc(const char *servers)
{
	struct kiln_cfg_memcached cfg;

	memset(&cfg, 0, sizeof(cfg));
	kiln_strlcpy(cfg.servers, servers, sizeof(cfg.servers));
	cfg.connect_timeout_ms = 200;
	cfg.command_timeout_ms = 200;
	return kiln_mc_new(&cfg);
}

static void assert_mc_hit(struct kiln_mc *mc, const char *key, const void *want, size_t wlen)
{
	char *v = NULL;
	size_t vlen = 0;

	assert_int_equal(kiln_mc_get(mc, key, strlen(key), &v, &vlen), 0);
	assert_int_equal(vlen, wlen);
	assert_memory_equal(v, want, wlen);
	assert_int_equal(v[vlen], '\0');
	free(v);
}

static void test_mc_set_get_miss_delete(void **state)
{
	static const char bin[] = {'a', 0, 'b', '\r', '\n', 'c'};
	struct kiln_mc *mc = new_mc(E.mc_sock);
	char *v = NULL, long_key[300], err[256] = "";
	size_t vlen;

	(void)state;
	assert_non_null(mc);
	assert_int_equal(kiln_mc_ping(mc, 500, err, sizeof(err)), 0);
	assert_int_equal(kiln_mc_set(mc, "k1", 2, bin, sizeof(bin), 60), 0);
	assert_mc_hit(mc, "k1", bin, sizeof(bin));
	assert_int_equal(kiln_mc_set(mc, "empty", 5, "", 0, 60), 0);
	assert_mc_hit(mc, "empty", "", 0);
	/* Beyond 30 days memcached wants an absolute time; still a hit. */
	assert_int_equal(kiln_mc_set(mc, "long-ttl", 8, "x", 1, 40 * 86400), 0);
	assert_mc_hit(mc, "long-ttl", "x", 1);
	assert_int_equal(kiln_mc_get(mc, "nope", 4, &v, &vlen), 1);
	assert_null(v);
	assert_int_equal(kiln_mc_delete(mc, "k1", 2), 0);
	assert_int_equal(kiln_mc_get(mc, "k1", 2, &v, &vlen), 1);
	assert_int_equal(kiln_mc_delete(mc, "k1", 2), 0); /* absent is fine */
	/* Bad keys fail without I/O. */
	memset(long_key, 'k', sizeof(long_key));
	assert_int_equal(kiln_mc_set(mc, long_key, 250, "x", 1, 60), 0);
	assert_int_equal(kiln_mc_set(mc, long_key, 251, "x", 1, 60), -1);
	assert_int_equal(kiln_mc_get(mc, "a b", 3, &v, &vlen), -1);
	assert_int_equal(kiln_mc_get(mc, "a\nb", 3, &v, &vlen), -1);
	assert_int_equal(kiln_mc_delete(mc, "", 0), -1);
	kiln_mc_free(mc);
}

static void test_mc_server_lists(void **state)
{
	static const char *const bad[] = {
	    "",     " ",     "host",   "host:",    "host:0",    "host:70000",
	    "[::1", "[::1]", "[::1]:", "a:1,,b:2", "::1:11211", "h:1x"};
	char list[512], key[32], val[32];
	struct kiln_mc *mc;
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++)
		if ((mc = new_mc(bad[i])) != NULL)
			fail_msg("accepted bad server list '%s'", bad[i]);
	mc = new_mc("[::1]:11211, 127.0.0.1:11211 ,/run/x.sock");
	assert_non_null(mc);
	kiln_mc_free(mc);
	snprintf(list, sizeof(list), "%s,127.0.0.1:%d", E.mc_sock, E.mc_port);
	mc = new_mc(list);
	assert_non_null(mc);
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "spread:%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		assert_int_equal(kiln_mc_set(mc, key, strlen(key), val, strlen(val), 60), 0);
	}
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "spread:%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		assert_mc_hit(mc, key, val, strlen(val));
	}
	kiln_mc_free(mc);
}

static void test_mc_fails_fast_while_down_and_recovers(void **state)
{
	struct kiln_mc *mc = new_mc(E.mc_sock), *both;
	char err[512] = "", list[256], *v = NULL, tcp[32];
	int64_t t0;
	size_t vlen;
	int i, rc = -1;

	(void)state;
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", E.mc_port);
	snprintf(list, sizeof(list), "%s,%s", tcp, E.mc_sock);
	both = new_mc(list);
	assert_non_null(mc);
	assert_non_null(both);
	assert_int_equal(kiln_mc_set(mc, "k", 1, "v", 1, 60), 0);
	assert_int_equal(kiln_mc_ping(both, 500, err, sizeof(err)), 0);
	stop_server(SRV_MC, SIGKILL);
	t0 = kiln_now_ms();
	assert_int_equal(kiln_mc_get(mc, "k", 1, &v, &vlen), -1);
	assert_int_equal(kiln_mc_set(mc, "k", 1, "v", 1, 60), -1);
	for (i = 0; i < 20; i++) /* no stall per request on a dead server */
		assert_int_equal(kiln_mc_get(mc, "k", 1, &v, &vlen), -1);
	assert_true(kiln_now_ms() - t0 < 300);
	assert_int_equal(kiln_mc_ping(mc, 300, err, sizeof(err)), -1);
	assert_non_null(strstr(err, E.mc_sock));
	assert_int_equal(kiln_mc_ping(both, 300, err, sizeof(err)), -1);
	assert_non_null(strstr(err, E.mc_sock));
	assert_null(strstr(err, tcp)); /* the live server is not blamed */
	assert_int_equal(start_mc(0), 0);
	t0 = kiln_now_ms();
	while (rc != 0 && kiln_now_ms() - t0 < 5000) {
		rc = kiln_mc_set(mc, "k", 1, "back", 4, 60);
		if (rc != 0)
			msleep(20);
	}
	assert_int_equal(rc, 0);
	assert_true(kiln_now_ms() - t0 <= 2500); /* retry_timeout 1 s = within ~2 s */
	assert_mc_hit(mc, "k", "back", 4);
	kiln_mc_free(mc);
	kiln_mc_free(both);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_db_exec_with_parameters),
	    cmocka_unit_test(test_db_query_tells_refused_from_unavailable),
	    cmocka_unit_test(test_db_prepares_once_per_connection),
	    cmocka_unit_test(test_db_timeout_cancels_and_connection_survives),
	    cmocka_unit_test(test_db_backs_off_while_down_and_recovers),
	    cmocka_unit_test(test_redis_commands_auth_and_select),
	    cmocka_unit_test(test_redis_command_timeout_drops_connection),
	    cmocka_unit_test(test_redis_backs_off_while_down_and_recovers),
	    cmocka_unit_test(test_mc_set_get_miss_delete),
	    cmocka_unit_test(test_mc_server_lists),
	    cmocka_unit_test(test_mc_fails_fast_while_down_and_recovers),
	};
	int64_t t0 = kiln_now_ms();
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

	fprintf(stderr, "test_deps: %lld ms\n", (long long)(kiln_now_ms() - t0));
	return rc;
}
