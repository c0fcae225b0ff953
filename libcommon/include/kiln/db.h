/* db: one PostgreSQL connection per worker (libpq), opened lazily, every
 * operation bounded by a deadline, re-opened after failure with backoff.
 * SQL text is constant; input travels only as parameters. */
#ifndef KILN_DB_H
#define KILN_DB_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "kiln/config.h"

struct kiln_db;
struct kiln_stats_db;

/* A handle for cfg (copied). No I/O happens here. Returns NULL on OOM. */
struct kiln_db *kiln_db_new(const struct kiln_cfg_database *cfg);
void kiln_db_free(struct kiln_db *db);

/* The open connection, connecting now if needed (bounded by
 * connect_timeout_ms). Returns NULL with err set while PostgreSQL is
 * unreachable; after a failure no new attempt is made until the backoff
 * (50 ms doubling to 2 s) has passed. */
PGconn *kiln_db_conn(struct kiln_db *db, char *err, size_t errlen);

/* Run sql with text parameters, waiting at most timeout_ms (0 = the
 * configured statement timeout). Returns the result (PQclear it; check
 * PQresultStatus for SQL errors), or NULL with err set on timeout (the query
 * is cancelled) or connection failure (the connection is dropped and will be
 * re-opened lazily). */
PGresult *kiln_db_exec(struct kiln_db *db, const char *sql, int nparams, const char *const *values,
                       int64_t timeout_ms, char *err, size_t errlen);

/* As kiln_db_exec, but through a named prepared statement, prepared on first
 * use on each connection. name must be unique per distinct sql. */
PGresult *kiln_db_exec_prepared(struct kiln_db *db, const char *name, const char *sql, int nparams,
                                const char *const *values, int64_t timeout_ms, char *err,
                                size_t errlen);

/* How kiln_db_query failed. */
#define KILN_DB_UNAVAILABLE 1 /* no connection, or the deadline passed */
#define KILN_DB_REFUSED     2 /* PostgreSQL ran and rejected the statement */
#define KILN_DB_CONFLICT    3 /* rejected as a unique violation (SQLSTATE 23505) */

/* The one way to run a statement and tell success from failure: through
 * kiln_db_exec_prepared (name set) or kiln_db_exec (name NULL), but a
 * statement PostgreSQL rejected is a failure too. Returns the result of a
 * successful statement (PQclear it), or NULL with a one-line reason in err
 * ("postgresql: <message> (SQLSTATE 23505)" when refused) and *failed (may
 * be NULL) set to KILN_DB_UNAVAILABLE, KILN_DB_CONFLICT or KILN_DB_REFUSED. */
PGresult *kiln_db_query(struct kiln_db *db, const char *name, const char *sql, int nparams,
                        const char *const *values, int64_t timeout_ms, int *failed, char *err,
                        size_t errlen);

/* Check the server answers `SELECT 1` within timeout_ms (including a
 * connect if needed, ignoring backoff). Returns 0, or -1 with err set. */
int kiln_db_ping(struct kiln_db *db, int64_t timeout_ms, char *err, size_t errlen);

/* Number of (re)connections made so far (for metrics). */
uint64_t kiln_db_connects(const struct kiln_db *db);

/* Where the handle counts its statements (outcome, duration) and connection
 * attempts. A handle made inside a server worker counts into that worker's
 * scoreboard slot from the start (kiln_server_slot()); one made elsewhere
 * (kilnctl, tests) counts nowhere until given stats here. NULL stops it. */
void kiln_db_set_stats(struct kiln_db *db, struct kiln_stats_db *stats);

/* Has this replica handle failed a statement (kiln_db_query: unavailable,
 * timed out or refused) less than [database] replica_retry ago? Returns 1 or
 * 0; a primary handle never rests (0). */
int kiln_db_resting(const struct kiln_db *db);

/* The streaming replicas: [database] replica_url and every URL of
 * replica_urls, one handle each, connected lazily like the primary's. Public
 * reads go to them round-robin; a member that fails a statement rests for
 * replica_retry, then the next read that comes its way probes it again. */
struct kiln_db_set;

/* The set of cfg's replicas (a duplicate URL counts once). No I/O. Returns
 * the set (kiln_db_set_count 0 when none is configured), or NULL on OOM or
 * a URL longer than a connection takes. */
struct kiln_db_set *kiln_db_set_new(const struct kiln_cfg_database *cfg);
void kiln_db_set_free(struct kiln_db_set *s);

/* Returns the number of members (0 for a NULL set). */
size_t kiln_db_set_count(const struct kiln_db_set *s);

/* Returns the number of members not resting now. */
size_t kiln_db_set_ready(const struct kiln_db_set *s);

/* Returns member i in configuration order (replica_url first), or NULL. */
struct kiln_db *kiln_db_set_member(const struct kiln_db_set *s, size_t i);

/* Returns the next member in round-robin order that is not resting, or NULL
 * when every member rests (or s is NULL or empty). */
struct kiln_db *kiln_db_set_next(struct kiln_db_set *s);

/* kiln_db_query on the replicas: the next member that is not resting; when
 * it fails it starts resting and the next one is tried, each member at most
 * once. Returns the first success's result (PQclear it), or NULL with err
 * and *failed (may be NULL) from the last failure — KILN_DB_UNAVAILABLE
 * when no member was tried because all rest. The caller then reads from
 * the primary. */
PGresult *kiln_db_set_query(struct kiln_db_set *s, const char *name, const char *sql, int nparams,
                            const char *const *values, int64_t timeout_ms, int *failed, char *err,
                            size_t errlen);

#endif
