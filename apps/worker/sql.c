/* sql: one way for kiln-worker to run a statement and tell success from
 * failure, whether the connection or the statement failed. */
#include <stdio.h>
#include <string.h>

#include "kiln/db.h"
#include "worker.h"

PGresult *worker_sql(struct kiln_db *db, const char *name, const char *sql, int n,
                     const char *const *v, int64_t timeout_ms, char *err, size_t errlen)
{
	PGresult *r;
	ExecStatusType st;
	size_t len;

	if (name)
		r = kiln_db_exec_prepared(db, name, sql, n, v, timeout_ms, err, errlen);
	else
		r = kiln_db_exec(db, sql, n, v, timeout_ms, err, errlen);
	if (r == NULL)
		return NULL;
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
	PQclear(r);
	/* libpq ends its messages with a newline; log lines must not. */
	len = strlen(err);
	while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
		err[--len] = '\0';
	return NULL;
}
