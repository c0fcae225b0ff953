/* db: one libpq connection per worker. Every wait (connect, send, result)
 * is a poll() on the connection's socket bounded by our own millisecond
 * deadline; libpq's connect_timeout (whole seconds, minimum 2) is only a
 * fallback. A failed connection is dropped and re-opened lazily after a
 * backoff, so a dead PostgreSQL costs each request one check of the clock
 * instead of a connect attempt; one the server closed while it sat idle
 * (a restart) is re-opened at once instead. Two waits escape the deadline because
 * libpq 15 offers no non-blocking form of them: the host name lookup when
 * connecting, and PQcancel's own connect after a timeout. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/stats.h"
#include "kiln/util.h"

#define DB_BACKOFF_MIN_MS  50
#define DB_BACKOFF_MAX_MS  2000
#define DB_CANCEL_DRAIN_MS 100
/* Used when the config leaves a timeout at 0: every wait stays bounded. */
#define DB_DEFAULT_CONNECT_MS   5000
#define DB_DEFAULT_STATEMENT_MS 30000
#define DB_ERR_PREFIX           "postgresql: "

struct kiln_db {
	struct kiln_cfg_database cfg;
	PGconn *conn;
	char **prepared; /* statement names prepared on conn */
	size_t nprepared;
	size_t capprepared;
	int64_t next_attempt_ms; /* monotonic; no connect attempt before this */
	int64_t backoff_ms;
	uint64_t connects;
	char last_err[256];          /* why the last attempt failed, for backoff errors */
	struct kiln_stats_db *stats; /* where statements are counted, or NULL */
	int timed_out;               /* the last statement passed its deadline */
	int64_t rest_ms;             /* a replica: left out this long after a failure */
	int64_t resting_until_ms;    /* monotonic; kiln_db_resting() until then */
};

struct kiln_db *kiln_db_new(const struct kiln_cfg_database *cfg)
{
	struct kiln_db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->cfg = *cfg;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
	/* Inside a server worker the handle reports to that worker's
	 * scoreboard slot; elsewhere (kilnctl, tests) nowhere. */
	if (kiln_server_slot())
		db->stats = &kiln_server_slot()->db;
	return db;
}

void kiln_db_set_stats(struct kiln_db *db, struct kiln_stats_db *stats)
{
	db->stats = stats;
}

static void db_forget_prepared(struct kiln_db *db)
{
	size_t i;

	for (i = 0; i < db->nprepared; i++)
		free(db->prepared[i]);
	db->nprepared = 0;
}

void kiln_db_free(struct kiln_db *db)
{
	if (db == NULL)
		return;
	if (db->conn)
		PQfinish(db->conn);
	db_forget_prepared(db);
	free(db->prepared);
	explicit_bzero(db->cfg.password, sizeof(db->cfg.password));
	free(db);
}

uint64_t kiln_db_connects(const struct kiln_db *db)
{
	return db->connects;
}

/* Copy a libpq message into err on one line: libpq ends messages with a
 * newline and indents hints with a tab. */
static void db_err(char *err, size_t errlen, const char *what, const char *msg)
{
	size_t n;

	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, DB_ERR_PREFIX "%s%s%s", what, msg && *msg ? ": " : "",
	         msg ? msg : "");
	for (n = 0; err[n]; n++)
		if (err[n] == '\n' || err[n] == '\t')
			err[n] = ' ';
	while (n > 0 && err[n - 1] == ' ')
		err[--n] = '\0';
}

static void db_backoff(struct kiln_db *db)
{
	db->next_attempt_ms = kiln_now_ms() + db->backoff_ms;
	db->backoff_ms =
	    db->backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : db->backoff_ms * 2;
}

/* Close the connection after a failure and hold off the next attempt. */
static void db_drop(struct kiln_db *db, const char *err)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db_forget_prepared(db);
	if (err && strncmp(err, DB_ERR_PREFIX, strlen(DB_ERR_PREFIX)) == 0)
		err += strlen(DB_ERR_PREFIX);
	kiln_strlcpy(db->last_err, err ? err : "", sizeof(db->last_err));
	db_backoff(db);
}

/* Wait until fd is ready for events or the deadline (monotonic ms) passes.
 * Returns 1 when ready, 0 on timeout, -1 on error. */
static int db_poll(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int n;

	if (fd < 0)
		return -1;
	for (;;) {
		left = deadline - kiln_now_ms();
		if (left <= 0)
			return 0;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* The "options" keyword for the connection: the URL's own options plus our
 * statement_timeout (a later keyword would replace, not extend, them).
 * Returns 0, or -1 when the URL does not parse. */
static int db_options(const struct kiln_db *db, char *out, size_t outlen)
{
	PQconninfoOption *opts, *o;
	const char *have = "";
	char *perr = NULL;

	opts = PQconninfoParse(db->cfg.url, &perr);
	if (opts == NULL) {
		PQfreemem(perr);
		return -1;
	}
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val)
			have = o->val;
	if (db->cfg.statement_timeout_ms > 0)
		snprintf(out, outlen, "%s%s-c statement_timeout=%lld", have, *have ? " " : "",
		         (long long)db->cfg.statement_timeout_ms);
	else
		kiln_strlcpy(out, have, outlen);
	PQconninfoFree(opts);
	return 0;
}

/* Start a connection: keywords before dbname are defaults the URL may
 * override; those after it override the URL. */
static PGconn *db_start(const struct kiln_db *db, const char *options, int64_t timeout_ms)
{
	const char *kw[8], *val[8];
	char ct[24];
	int n = 0;

	/* 0 would mean "wait forever" to libpq. */
	snprintf(ct, sizeof(ct), "%lld",
	         (long long)(timeout_ms > 0 ? (timeout_ms + 999) / 1000 : 1));
	kw[n] = "connect_timeout", val[n++] = ct;
	kw[n] = "fallback_application_name", val[n++] = "kiln";
	kw[n] = "dbname", val[n++] = db->cfg.url;
	if (db->cfg.password[0])
		kw[n] = "password", val[n++] = db->cfg.password;
	if (options[0])
		kw[n] = "options", val[n++] = options;
	kw[n] = NULL, val[n] = NULL;
	return PQconnectStartParams(kw, val, 1);
}

/* Drive PQconnectPoll until it finishes or the deadline passes.
 * Returns 0, or -1 with err set. */
static int db_connect_poll(PGconn *conn, int64_t deadline, int64_t timeout_ms, char *err,
                           size_t errlen)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char what[64];
	int rc;

	if (PQstatus(conn) == CONNECTION_BAD) {
		db_err(err, errlen, "connect failed", PQerrorMessage(conn));
		return -1;
	}
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			db_err(err, errlen, "connect failed", PQerrorMessage(conn));
			return -1;
		}
		rc = db_poll(PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		             deadline);
		if (rc <= 0) {
			snprintf(what, sizeof(what), "connect timed out after %lld ms",
			         (long long)timeout_ms);
			db_err(err, errlen, rc == 0 ? what : "connect failed",
			       rc == 0 ? NULL : strerror(errno));
			return -1;
		}
		st = PQconnectPoll(conn);
	}
	return 0;
}

/* libpq's notices (server warnings, and the FATAL goodbye of a server that
 * shuts down while the connection is idle) as log lines: libpq's default
 * prints them raw to stderr, which breaks the JSON-lines log. */
static void db_notice(void *arg, const char *message)
{
	char msg[512];

	(void)arg;
	db_err(msg, sizeof(msg), "notice", message);
	kiln_warn("database notice", "message=%s", msg);
}

/* Open a connection that must be ready by the deadline. Returns 0, or -1
 * with err set and the backoff scheduled. */
static int db_connect(struct kiln_db *db, int64_t deadline, char *err, size_t errlen)
{
	char options[KILN_CFG_STR_MAX + 64];
	int64_t timeout_ms = deadline - kiln_now_ms();
	PGconn *conn;

	/* libpq's own parse errors may quote the URL, password included. */
	if (db_options(db, options, sizeof(options)) < 0) {
		db_err(err, errlen, "database url is not a valid conninfo string or URI", NULL);
		db_drop(db, err);
		return -1;
	}
	conn = db_start(db, options, timeout_ms);
	if (conn == NULL) {
		db_err(err, errlen, "out of memory", NULL);
		db_drop(db, err);
		return -1;
	}
	if (db_connect_poll(conn, deadline, timeout_ms, err, errlen) < 0) {
		PQfinish(conn);
		db_drop(db, err);
		return -1;
	}
	PQsetNoticeProcessor(conn, db_notice, NULL);
	db->conn = conn;
	db->connects++;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
	db->next_attempt_ms = 0;
	db_forget_prepared(db);
	return 0;
}

static int64_t db_connect_timeout(const struct kiln_db *db)
{
	return db->cfg.connect_timeout_ms > 0 ? db->cfg.connect_timeout_ms : DB_DEFAULT_CONNECT_MS;
}

/* Did the server close this idle connection while we were not using it
 * (a PostgreSQL restart, pg_terminate_backend, an idle timeout)? Its last
 * words, or EOF, then wait on the socket. Reading them now marks the
 * connection bad before a statement is sent on it, so the caller reconnects
 * at once instead of failing its next statement: nothing was sent, so
 * nothing can be lost by that. Notifications read here stay queued in libpq
 * for PQnotifies. Returns 1 when the connection is gone, else 0. */
static int db_closed_while_idle(PGconn *conn)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	int i;

	if (PQtransactionStatus(conn) != PQTRANS_IDLE || p.fd < 0)
		return 0;
	/* The goodbye (an ErrorResponse) and the EOF after it may take two
	 * reads: libpq only notices EOF on a read that returns nothing. */
	for (i = 0; i < 4 && poll(&p, 1, 0) == 1; i++)
		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			return 1;
	return 0;
}

/* The open connection, or a new one unless the backoff says wait (ignored
 * when force is set). deadline bounds the connect. */
static PGconn *db_ensure(struct kiln_db *db, int64_t deadline, int force, char *err, size_t errlen)
{
	int64_t now = kiln_now_ms();
	char what[64];
	int rc;

	if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
		if (!db_closed_while_idle(db->conn))
			return db->conn;
		/* No backoff: the server went away, it did not refuse us. */
		PQfinish(db->conn);
		db->conn = NULL;
		db_forget_prepared(db);
	}
	if (db->conn) {
		db_err(err, errlen, "connection lost", PQerrorMessage(db->conn));
		db_drop(db, err);
	}
	if (!force && now < db->next_attempt_ms) {
		snprintf(what, sizeof(what), "unavailable, next attempt in %lld ms; last error",
		         (long long)(db->next_attempt_ms - now));
		db_err(err, errlen, what, db->last_err);
		return NULL;
	}
	rc = db_connect(db, deadline, err, errlen);
	if (db->stats)
		kiln_stats_db_connect(db->stats, rc == 0);
	return rc == 0 ? db->conn : NULL;
}

PGconn *kiln_db_conn(struct kiln_db *db, char *err, size_t errlen)
{
	return db_ensure(db, kiln_now_ms() + db_connect_timeout(db), 0, err, errlen);
}

/* Read until libpq has a whole result. Returns 0, 1 on timeout, -1 when
 * the connection failed. */
static int db_wait_ready(PGconn *conn, int64_t deadline)
{
	int rc;

	for (;;) {
		if (!PQconsumeInput(conn))
			return -1;
		if (!PQisBusy(conn))
			return 0;
		rc = db_poll(PQsocket(conn), POLLIN, deadline);
		if (rc <= 0)
			return rc == 0 ? 1 : -1;
	}
}

/* Collect the results of the command in flight, keeping the last one in
 * *out (the caller clears it on any return). Returns 0 once the command is
 * complete, 1 on timeout, -1 when the connection failed. */
static int db_collect(PGconn *conn, int64_t deadline, PGresult **out)
{
	PGresult *r;
	int rc;

	for (;;) {
		rc = db_wait_ready(conn, deadline);
		if (rc != 0)
			return rc;
		r = PQgetResult(conn);
		if (r == NULL)
			return 0;
		PQclear(*out);
		*out = r;
		if (PQstatus(conn) == CONNECTION_BAD)
			return -1;
	}
}

/* After a timeout: ask the server to cancel, then give it a moment to
 * answer so the connection stays usable; drop it otherwise. PQcancel
 * connects to the server itself and has no timeout of its own in libpq 15. */
static void db_cancel(struct kiln_db *db, const char *err)
{
	PGcancel *cancel = PQgetCancel(db->conn);
	PGresult *res = NULL;
	char buf[256];
	int rc = -1;

	if (cancel) {
		if (PQcancel(cancel, buf, sizeof(buf)))
			rc = db_collect(db->conn, kiln_now_ms() + DB_CANCEL_DRAIN_MS, &res);
		PQfreeCancel(cancel);
	}
	PQclear(res);
	if (rc != 0)
		db_drop(db, err);
}

/* Wait for the command just sent and turn the outcome into the API's
 * contract: a result (maybe an SQL error), or NULL with err. */
static PGresult *db_finish(struct kiln_db *db, int64_t deadline, int64_t timeout_ms, char *err,
                           size_t errlen)
{
	PGresult *res = NULL;
	char what[64];
	int rc = db_collect(db->conn, deadline, &res);

	if (rc == 0 && PQstatus(db->conn) == CONNECTION_OK) {
		if (res == NULL)
			db_err(err, errlen, "the server sent no result", NULL);
		return res;
	}
	if (rc == 1) {
		PQclear(res);
		db->timed_out = 1;
		snprintf(what, sizeof(what), "query timed out after %lld ms",
		         (long long)timeout_ms);
		db_err(err, errlen, what, NULL);
		db_cancel(db, err);
		return NULL;
	}
	db_err(err, errlen, "connection lost",
	       res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
	                                           : PQerrorMessage(db->conn));
	PQclear(res);
	db_drop(db, err);
	return NULL;
}

/* A PQsend* call failed: either the connection is gone or libpq refused the
 * command (e.g. too many parameters). */
static void db_send_failed(struct kiln_db *db, char *err, size_t errlen)
{
	db_err(err, errlen,
	       PQstatus(db->conn) == CONNECTION_BAD ? "connection lost" : "send failed",
	       PQerrorMessage(db->conn));
	if (PQstatus(db->conn) == CONNECTION_BAD)
		db_drop(db, err);
}

static int db_is_prepared(const struct kiln_db *db, const char *name)
{
	size_t i;

	for (i = 0; i < db->nprepared; i++)
		if (strcmp(db->prepared[i], name) == 0)
			return 1;
	return 0;
}

/* Make room for one more name before preparing, so that a statement the
 * server has is never missing from the set. Returns 0, or -1 on OOM. */
static int db_reserve_prepared(struct kiln_db *db)
{
	size_t cap = db->capprepared ? db->capprepared * 2 : 16;
	char **p;

	if (db->nprepared < db->capprepared)
		return 0;
	p = realloc(db->prepared, cap * sizeof(*p));
	if (p == NULL)
		return -1;
	db->prepared = p;
	db->capprepared = cap;
	return 0;
}

/* Prepare name on this connection unless it already is. Returns NULL when
 * ready to execute; otherwise the failed prepare's result (an SQL error),
 * or NULL with *failed set and err filled. */
static PGresult *db_prepare(struct kiln_db *db, const char *name, const char *sql, int nparams,
                            int64_t deadline, int64_t timeout_ms, int *failed, char *err,
                            size_t errlen)
{
	char *copy;
	PGresult *res;

	*failed = 0;
	if (db_is_prepared(db, name))
		return NULL;
	copy = strdup(name);
	if (copy == NULL || db_reserve_prepared(db) < 0) {
		free(copy);
		db_err(err, errlen, "out of memory", NULL);
		*failed = 1;
		return NULL;
	}
	if (!PQsendPrepare(db->conn, name, sql, nparams, NULL)) {
		free(copy);
		db_send_failed(db, err, errlen);
		*failed = 1;
		return NULL;
	}
	res = db_finish(db, deadline, timeout_ms, err, errlen);
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		db->prepared[db->nprepared++] = copy;
		return NULL;
	}
	free(copy);
	*failed = res == NULL;
	return res;
}

/* Run sql (or prepared statement name when non-NULL) by the deadline. */
static PGresult *db_send_and_wait(struct kiln_db *db, const char *name, const char *sql,
                                  int nparams, const char *const *values, int64_t deadline,
                                  int64_t timeout_ms, char *err, size_t errlen)
{
	PGresult *res;
	int failed, ok;

	if (name) {
		res =
		    db_prepare(db, name, sql, nparams, deadline, timeout_ms, &failed, err, errlen);
		if (res || failed)
			return res;
		ok = PQsendQueryPrepared(db->conn, name, nparams, values, NULL, NULL, 0);
	} else {
		ok = PQsendQueryParams(db->conn, sql, nparams, NULL, values, NULL, NULL, 0);
	}
	if (!ok) {
		db_send_failed(db, err, errlen);
		return NULL;
	}
	return db_finish(db, deadline, timeout_ms, err, errlen);
}

/* How a statement's result reads for the scoreboard. */
static int db_outcome(const struct kiln_db *db, const PGresult *res)
{
	ExecStatusType st;

	if (res == NULL)
		return db->timed_out ? KILN_STATS_DB_TIMEOUT : KILN_STATS_DB_UNAVAILABLE;
	st = PQresultStatus(res);
	return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ? KILN_STATS_DB_REFUSED
	                                                           : KILN_STATS_DB_OK;
}

/* db_send_and_wait, counted in the scoreboard slot when there is one. */
static PGresult *db_query(struct kiln_db *db, const char *name, const char *sql, int nparams,
                          const char *const *values, int64_t deadline, int64_t timeout_ms,
                          char *err, size_t errlen)
{
	int64_t t0 = kiln_now_ns();
	PGresult *res;

	db->timed_out = 0;
	res = db_send_and_wait(db, name, sql, nparams, values, deadline, timeout_ms, err, errlen);
	if (db->stats)
		kiln_stats_db_query(db->stats, db_outcome(db, res), kiln_now_ns() - t0);
	return res;
}

/* A statement that never reached the server: no connection to send it on. */
static void db_count_unsent(struct kiln_db *db)
{
	if (db->stats)
		kiln_stats_db_query(db->stats, KILN_STATS_DB_UNAVAILABLE, -1);
}

static PGresult *db_exec(struct kiln_db *db, const char *name, const char *sql, int nparams,
                         const char *const *values, int64_t timeout_ms, char *err, size_t errlen)
{
	if (timeout_ms <= 0)
		timeout_ms = db->cfg.statement_timeout_ms > 0 ? db->cfg.statement_timeout_ms
		                                              : DB_DEFAULT_STATEMENT_MS;
	if (db_ensure(db, kiln_now_ms() + db_connect_timeout(db), 0, err, errlen) == NULL) {
		db_count_unsent(db);
		return NULL;
	}
	return db_query(db, name, sql, nparams, values, kiln_now_ms() + timeout_ms, timeout_ms, err,
	                errlen);
}

PGresult *kiln_db_exec(struct kiln_db *db, const char *sql, int nparams, const char *const *values,
                       int64_t timeout_ms, char *err, size_t errlen)
{
	return db_exec(db, NULL, sql, nparams, values, timeout_ms, err, errlen);
}

PGresult *kiln_db_exec_prepared(struct kiln_db *db, const char *name, const char *sql, int nparams,
                                const char *const *values, int64_t timeout_ms, char *err,
                                size_t errlen)
{
	return db_exec(db, name, sql, nparams, values, timeout_ms, err, errlen);
}

int kiln_db_ping(struct kiln_db *db, int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t now = kiln_now_ms(), deadline = now + timeout_ms;
	int64_t cdl = now + db_connect_timeout(db);
	PGresult *res;
	int rc = 0;

	if (db_ensure(db, cdl < deadline ? cdl : deadline, 1, err, errlen) == NULL) {
		db_count_unsent(db);
		return -1;
	}
	res = db_query(db, NULL, "SELECT 1", 0, NULL, deadline, timeout_ms, err, errlen);
	if (res == NULL)
		return -1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_err(err, errlen, "ping failed", PQresultErrorMessage(res));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* A replica that failed a statement is left out of kiln_db_set_next for
 * rest_ms; the primary (rest_ms 0) never rests. */
static void db_rest(struct kiln_db *db)
{
	if (db->rest_ms > 0)
		db->resting_until_ms = kiln_now_ms() + db->rest_ms;
}

int kiln_db_resting(const struct kiln_db *db)
{
	return db->resting_until_ms > kiln_now_ms();
}

PGresult *kiln_db_query(struct kiln_db *db, const char *name, const char *sql, int nparams,
                        const char *const *values, int64_t timeout_ms, int *failed, char *err,
                        size_t errlen)
{
	PGresult *r;
	ExecStatusType st;
	const char *state;
	size_t len;

	r = name ? kiln_db_exec_prepared(db, name, sql, nparams, values, timeout_ms, err, errlen)
	         : kiln_db_exec(db, sql, nparams, values, timeout_ms, err, errlen);
	if (r == NULL) {
		if (failed)
			*failed = KILN_DB_UNAVAILABLE;
		db_rest(db);
		return NULL;
	}
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
	/* libpq ends its messages with a newline; log lines must not. */
	len = strlen(err);
	while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
		err[--len] = '\0';
	if (state && len + 18 < errlen)
		snprintf(err + len, errlen - len, " (SQLSTATE %s)", state);
	if (failed)
		*failed = state && strcmp(state, "23505") == 0 ? KILN_DB_CONFLICT : KILN_DB_REFUSED;
	PQclear(r);
	db_rest(db);
	return NULL;
}

/* ------------------------------------------------------------ replica set */

struct kiln_db_set {
	struct kiln_db **members;
	size_t n;
	size_t next; /* round-robin position */
};

/* Add url as a member unless it is one already. Returns 0, or -1 on OOM or
 * a URL too long for a connection. */
static int db_set_add(struct kiln_db_set *s, const struct kiln_cfg_database *cfg, const char *url,
                      size_t len)
{
	struct kiln_cfg_database c = *cfg;
	struct kiln_db **grown, *db;
	size_t i;

	if (len >= sizeof(c.url))
		return -1;
	memcpy(c.url, url, len);
	c.url[len] = '\0';
	for (i = 0; i < s->n; i++)
		if (strcmp(s->members[i]->cfg.url, c.url) == 0)
			return 0;
	grown = realloc(s->members, (s->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	s->members = grown;
	db = kiln_db_new(&c);
	explicit_bzero(c.password, sizeof(c.password));
	if (db == NULL)
		return -1;
	db->rest_ms = cfg->replica_retry_ms > 0 ? cfg->replica_retry_ms : 1;
	s->members[s->n++] = db;
	return 0;
}

struct kiln_db_set *kiln_db_set_new(const struct kiln_cfg_database *cfg)
{
	struct kiln_db_set *s = calloc(1, sizeof(*s));
	const char *p = cfg->replica_urls;
	size_t len;

	if (s == NULL)
		return NULL;
	if (cfg->replica_url[0] &&
	    db_set_add(s, cfg, cfg->replica_url, strlen(cfg->replica_url)) < 0)
		goto fail;
	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t");
		if (db_set_add(s, cfg, p, len) < 0)
			goto fail;
		p += len;
	}
	/* Workers start at different members, so a burst of first reads after
	 * a (re)start does not land on one replica. */
	s->next = s->n ? (size_t)getpid() % s->n : 0;
	return s;
fail:
	kiln_db_set_free(s);
	return NULL;
}

void kiln_db_set_free(struct kiln_db_set *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		kiln_db_free(s->members[i]);
	free(s->members);
	free(s);
}

size_t kiln_db_set_count(const struct kiln_db_set *s)
{
	return s ? s->n : 0;
}

size_t kiln_db_set_ready(const struct kiln_db_set *s)
{
	size_t i, n = 0;

	for (i = 0; s && i < s->n; i++)
		n += !kiln_db_resting(s->members[i]);
	return n;
}

struct kiln_db *kiln_db_set_member(const struct kiln_db_set *s, size_t i)
{
	return s && i < s->n ? s->members[i] : NULL;
}

struct kiln_db *kiln_db_set_next(struct kiln_db_set *s)
{
	struct kiln_db *db;
	size_t i;

	for (i = 0; s && i < s->n; i++) {
		db = s->members[s->next];
		s->next = (s->next + 1) % s->n;
		if (!kiln_db_resting(db))
			return db;
	}
	return NULL;
}

PGresult *kiln_db_set_query(struct kiln_db_set *s, const char *name, const char *sql, int nparams,
                            const char *const *values, int64_t timeout_ms, int *failed, char *err,
                            size_t errlen)
{
	struct kiln_db *db;
	PGresult *res;
	size_t tries;

	if (failed)
		*failed = KILN_DB_UNAVAILABLE;
	snprintf(err, errlen, DB_ERR_PREFIX "%s",
	         kiln_db_set_count(s) ? "every replica is resting after a failure"
	                              : "no replica is configured");
	for (tries = kiln_db_set_count(s); tries > 0; tries--) {
		if ((db = kiln_db_set_next(s)) == NULL)
			break;
		res =
		    kiln_db_query(db, name, sql, nparams, values, timeout_ms, failed, err, errlen);
		if (res)
			return res;
	}
	return NULL;
}
