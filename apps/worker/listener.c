/* listener: the executor's second PostgreSQL connection, which only LISTENs
 * on kiln_jobs so that an enqueue wakes an idle executor at once instead of
 * at the next poll. It is a kiln_db handle of its own, so it connects,
 * fails and backs off exactly like every other connection; losing it only
 * costs latency, as the executor falls back to polling. */
#include <stdio.h>
#include <stdlib.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "worker.h"

struct listener {
	const struct kiln_cfg_database *dbcfg;
	struct kiln_db *db;
	uint64_t listened; /* kiln_db_connects() when LISTEN was last issued */
	int down;          /* the last attempt failed (log the outage once) */
};

struct listener *listener_new(const struct kiln_config *cfg)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->dbcfg = &cfg->database;
	l->db = kiln_db_new(l->dbcfg);
	if (l->db == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	kiln_db_free(l->db);
	free(l);
}

static void listener_failed(struct listener *l, const char *err)
{
	if (!l->down)
		kiln_warn("listen connection unavailable; polling until it is back", "error=%s",
		          err);
	l->down = 1;
}

/* The connection, LISTENing; NULL while PostgreSQL is unreachable. Sets
 * *fresh when LISTEN was just (re)issued: notifications sent while we were
 * not listening are lost, so the caller should look for work. */
static PGconn *listener_conn(struct listener *l, int *fresh)
{
	char err[512];
	PGconn *conn = kiln_db_conn(l->db, err, sizeof(err));
	PGresult *r;

	*fresh = 0;
	if (conn == NULL) {
		listener_failed(l, err);
		return NULL;
	}
	if (l->listened == kiln_db_connects(l->db))
		return conn;
	r = kiln_db_query(l->db, NULL, "LISTEN " KILN_JOBS_CHANNEL, 0, NULL, 0, NULL, err,
	                  sizeof(err));
	if (r == NULL) {
		listener_failed(l, err);
		return NULL;
	}
	PQclear(r);
	if (l->down || l->listened != 0)
		kiln_info("listening for jobs again", "channel=%s", KILN_JOBS_CHANNEL);
	l->listened = kiln_db_connects(l->db);
	l->down = 0;
	*fresh = 1;
	return kiln_db_conn(l->db, err, sizeof(err));
}

/* Drain the notifications libpq has read. Returns how many there were. */
static int listener_drain(PGconn *conn)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(conn)) != NULL) {
		PQfreemem(n);
		count++;
	}
	return count;
}

/* The connection broke while we waited on it: start over with a new handle
 * unless libpq already marked it bad (then kiln_db reconnects by itself). */
static void listener_lost(struct listener *l, PGconn *conn)
{
	listener_failed(l, PQerrorMessage(conn));
	if (PQstatus(conn) != CONNECTION_BAD) {
		kiln_db_free(l->db);
		l->db = kiln_db_new(l->dbcfg);
		l->listened = 0;
	}
}

int listener_wait(struct listener *l, int64_t timeout_ms)
{
	int fresh = 0, rc;
	PGconn *conn = l->db ? listener_conn(l, &fresh) : NULL;

	if (l->db == NULL)
		l->db = kiln_db_new(l->dbcfg);
	if (conn == NULL) {
		kiln_server_wait(-1, timeout_ms);
		return 0;
	}
	if (fresh || listener_drain(conn) > 0)
		return 1;
	rc = kiln_server_wait(PQsocket(conn), timeout_ms);
	if (rc <= 0)
		return 0;
	if (!PQconsumeInput(conn)) {
		listener_lost(l, conn);
		return 0;
	}
	return listener_drain(conn) > 0;
}
