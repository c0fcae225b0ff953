/* The bare libfcgi + libpq responder kiln-api's uncached exercise read is
 * measured against: one connection per process, the same prepared
 * statement, the row written out as JSON with the same fields, nothing
 * else (no validation, no escaping, no logging, no scoreboard).
 * Usage: bare-fcgi-pq CONNINFO; serves GET .../<id>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcgiapp.h>
#include <libpq-fe.h>

static const char sql[] =
    "SELECT id, slug, title, category, difficulty_level, points, body, answer_kind,"
    " array_to_json(choices)::text, published, created_by,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), version"
    " FROM exercises WHERE id = $1";

int main(int argc, char **argv)
{
	static char body[65536];
	FCGX_Request req;
	PGconn *db = PQconnectdb(argc > 1 ? argv[1] : "");
	PGresult *r;

	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	PQclear(PQprepare(db, "get", sql, 1, NULL));
	FCGX_Init();
	FCGX_InitRequest(&req, 0, 0);
	while (FCGX_Accept_r(&req) >= 0) {
		const char *uri = FCGX_GetParam("DOCUMENT_URI", req.envp), *id = strrchr(uri, '/');
		const char *v[1] = {id ? id + 1 : ""};
		int n = 0;

		r = PQexecPrepared(db, "get", 1, v, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			n = snprintf(
			    body, sizeof(body),
			    "{\"id\":%s,\"slug\":\"%s\",\"title\":\"%s\",\"category\":\"%s\","
			    "\"difficulty\":%s,\"points\":%s,\"body\":\"%s\",\"answer_kind\":\"%"
			    "s\","
			    "\"choices\":%s,\"published\":%s,\"created_by\":%s,\"created_at\":\"%"
			    "s\","
			    "\"updated_at\":\"%s\",\"version\":%s}",
			    PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
			    PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5),
			    PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 7),
			    PQgetisnull(r, 0, 8) ? "null" : PQgetvalue(r, 0, 8),
			    *PQgetvalue(r, 0, 9) == 't' ? "true" : "false", PQgetvalue(r, 0, 10),
			    PQgetvalue(r, 0, 11), PQgetvalue(r, 0, 12), PQgetvalue(r, 0, 13));
		PQclear(r);
		if (n <= 0 || n >= (int)sizeof(body))
			FCGX_FPrintF(req.out, "Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n");
		else
			FCGX_FPrintF(req.out,
			             "Status: 200 OK\r\nContent-Type: application/json\r\n"
			             "Content-Length: %d\r\n\r\n%s",
			             n, body);
		FCGX_Finish_r(&req);
	}
	PQfinish(db);
	return 0;
}
