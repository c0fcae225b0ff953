/* GET /api/v1/me/progress, GET /api/v1/leaderboard,
 * GET /api/v1/me/notifications, POST /api/v1/me/notifications/{id}/read.
 * A user's own data is read on the primary (read-your-writes); the
 * leaderboard is public and may come from the replica. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "api.h"

#define LEADERBOARD_DEFAULT 10
#define LEADERBOARD_MAX     100

/* Points are those of the completed exercises, as on the leaderboard. */
static const char sql_progress[] =
    "SELECT e.category, count(*) FILTER (WHERE p.completed_at IS NOT NULL), "
    "coalesce(sum(e.points) FILTER (WHERE p.completed_at IS NOT NULL), 0), "
    "coalesce(sum(p.attempts), 0) "
    "FROM user_progress p JOIN exercises e ON e.id = p.exercise_id "
    "WHERE p.user_id = $1 GROUP BY e.category ORDER BY e.category";

static const char sql_names[] = "SELECT id, display_name FROM users WHERE id = ANY($1::bigint[])";

/* Keyset on id: $2 is the last id of the previous page (INT64_MAX first). */
#define NTF_CREATED API_TS("created_at")
#define NTF_READ    API_TS("read_at")
static const char sql_notifications[] =
    "SELECT id, kind, payload::text, " NTF_CREATED ", " NTF_READ " FROM notifications "
    "WHERE user_id = $1 AND id < $2 AND (NOT $3::boolean OR read_at IS NULL) "
    "ORDER BY id DESC LIMIT $4";

static const char sql_read[] = "UPDATE notifications SET read_at = coalesce(read_at, now()) "
                               "WHERE id = $1 AND user_id = $2";

/* The progress object of a sql_progress result into b. */
static void progress_json(struct kiln_buf *b, PGresult *res)
{
	int64_t completed = 0, points = 0, attempts = 0, v[3];
	int i, k;

	kiln_buf_reset(b);
	kiln_buf_adds(b, "{\"categories\":[");
	for (i = 0; i < PQntuples(res); i++) {
		for (k = 0; k < 3; k++)
			v[k] = kiln_pg_int(res, i, k + 1);
		kiln_buf_adds(b, i ? ",{\"category\":" : "{\"category\":");
		kiln_pg_json_str(b, res, i, 0);
		kiln_buf_printf(b, ",\"completed\":%lld,\"points\":%lld,\"attempts\":%lld}",
		                (long long)v[0], (long long)v[1], (long long)v[2]);
		completed += v[0], points += v[1], attempts += v[2];
	}
	kiln_buf_printf(b, "],\"total\":{\"completed\":%lld,\"points\":%lld,\"attempts\":%lld}}",
	                (long long)completed, (long long)points, (long long)attempts);
}

/* Read-through: memcached first, then PostgreSQL, filling the cache with
 * add (kiln-worker tombstones the entry after grading, so a fill computed
 * before that commit cannot stick). */
int api_my_progress(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24], *val = NULL;
	const char *p[1] = {uid};
	size_t len = 0;
	PGresult *res;
	int rc;

	if (api_auth(req, &c) < 0)
		return 0;
	kiln_resp_header(req, "Cache-Control", "no-store");
	rc = kiln_cache_get(&api.cache, "progress", c.sub, &val, &len);
	if (rc == 0) {
		api_count(C_CACHE_HITS);
		kiln_resp_json_text(req, 200, val, len);
		free(val);
		return 0;
	}
	api_count(rc < 0 ? C_CACHE_ERRORS : C_CACHE_MISSES);
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	if ((res = api_sql(req, "api_me_progress", sql_progress, 1, p)) == NULL)
		return 0;
	progress_json(&api.out, res);
	PQclear(res);
	if (kiln_cache_fill(&api.cache, "progress", c.sub, api.out.data, api.out.len) < 0)
		api_count(C_CACHE_ERRORS);
	return api_send(req, 200);
}

/* The top want entries into out. The rebuild reads public data, so it may
 * run on the replica; when that fails the primary is asked. Returns the
 * number of entries, or -1 after writing 503. */
static int leaderboard_top(struct kiln_req *req, struct kiln_leaderboard_entry *out, int want)
{
	const struct kiln_config *cfg = kiln_server_config();
	struct kiln_db *replica = kiln_server_db_replica();
	int64_t size = cfg->api.leaderboard_size;
	char err[256];
	int n;

	if (want > size)
		want = (int)size;
	n = kiln_leaderboard_top(replica ? replica : kiln_server_db(), kiln_server_redis(), size,
	                         out, want, err, sizeof(err));
	if (n < 0 && replica) {
		kiln_warn("leaderboard read on the replica failed; using the primary", "error=%s",
		          err);
		api_count(C_REPLICA_FALLBACKS);
		n = kiln_leaderboard_top(kiln_server_db(), kiln_server_redis(), size, out, want,
		                         err, sizeof(err));
	}
	if (n < 0) {
		kiln_error("leaderboard unavailable", "error=%s", err);
		kiln_req_unavailable(req);
	}
	return n;
}

/* Display names of the n entries, one query. Returns the result (rows of
 * id, display_name in any order), or NULL after writing the error. */
static PGresult *leaderboard_names(struct kiln_req *req, const struct kiln_leaderboard_entry *e,
                                   int n)
{
	const char *p[1];
	int i;

	kiln_buf_reset(&api.out);
	kiln_buf_addc(&api.out, '{');
	for (i = 0; i < n; i++)
		kiln_buf_printf(&api.out, i ? ",%lld" : "%lld", (long long)e[i].user_id);
	kiln_buf_addc(&api.out, '}');
	p[0] = api.out.data;
	return api_read_sql(req, "api_me_names", sql_names, 1, p);
}

/* Row of user_id in a sql_names result, or -1 (the user is gone). */
static int leaderboard_row(PGresult *names, int64_t user_id)
{
	int i;

	for (i = 0; i < PQntuples(names); i++) {
		if (kiln_pg_int(names, i, 0) == user_id)
			return i;
	}
	return -1;
}

int api_leaderboard(struct kiln_req *req)
{
	const struct kiln_query *q = kiln_req_query(req);
	struct kiln_leaderboard_entry top[LEADERBOARD_MAX];
	struct kiln_field_errors errs = {0};
	const char *v;
	int64_t limit = LEADERBOARD_DEFAULT;
	PGresult *names = NULL;
	int i, n, row, rank = 0;

	if (q == NULL)
		return 0;
	v = kiln_query_get(q, "limit");
	if (v && kiln_parse_int(v, 1, LEADERBOARD_MAX, &limit) < 0) {
		kiln_field_error_add(&errs, "limit", "must be an integer from 1 to 100");
		return kiln_problem(req, 422, "the query has invalid parameters", &errs);
	}
	if ((n = leaderboard_top(req, top, (int)limit)) < 0)
		return 0;
	if (n > 0 && (names = leaderboard_names(req, top, n)) == NULL)
		return 0;
	kiln_buf_reset(&api.out);
	kiln_buf_adds(&api.out, "{\"items\":[");
	for (i = 0; i < n; i++) {
		/* A deleted user stays in Redis until the next rebuild. */
		if ((row = leaderboard_row(names, top[i].user_id)) < 0)
			continue;
		kiln_buf_printf(&api.out, "%s{\"rank\":%d,\"user_id\":%lld,\"display_name\":",
		                rank ? "," : "", rank + 1, (long long)top[i].user_id);
		kiln_pg_json_str(&api.out, names, row, 1);
		kiln_buf_printf(&api.out, ",\"points\":%lld}", (long long)top[i].points);
		rank++;
	}
	kiln_buf_adds(&api.out, "]}");
	PQclear(names);
	return api_send(req, 200);
}

/* The query of GET /me/notifications: unread ("true"/"false"), limit, and
 * the cursor's last id (INT64_MAX when none) into after, with the cursor
 * scope bound to the user and the filter. Returns 0, or -1 after writing
 * 400/422. */
static int notifications_query(struct kiln_req *req, int64_t user_id, int *unread, int64_t *limit,
                               int64_t *after, char *scope, size_t scopelen)
{
	const struct kiln_query *q = kiln_req_query(req);
	struct kiln_field_errors errs = {0};
	const char *v;

	if (q == NULL)
		return -1;
	*unread = 0;
	v = kiln_query_get(q, "unread");
	if (v && strcmp(v, "true") == 0)
		*unread = 1;
	else if (v && strcmp(v, "false") != 0)
		kiln_field_error_add(&errs, "unread", "must be true or false");
	snprintf(scope, scopelen, "ntf|%lld|%s", (long long)user_id, *unread ? "unread" : "all");
	*after = INT64_MAX;
	return api_page_params(req, q, scope, limit, after, &errs);
}

/* Row r of a sql_notifications result; payload is jsonb text from
 * PostgreSQL, valid JSON, so it goes out as is. */
static void notification_json(struct kiln_buf *b, PGresult *res, int r)
{
	kiln_buf_printf(b, "{\"id\":%lld,\"kind\":", (long long)kiln_pg_int(res, r, 0));
	kiln_pg_json_str(b, res, r, 1);
	kiln_buf_adds(b, ",\"payload\":");
	kiln_buf_add(b, PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2));
	kiln_buf_adds(b, ",\"created_at\":");
	kiln_pg_json_str(b, res, r, 3);
	kiln_buf_adds(b, ",\"read_at\":");
	kiln_pg_json_str(b, res, r, 4);
	kiln_buf_addc(b, '}');
}

int api_my_notifications(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24], after_s[24], lim[24], scope[64];
	const char *p[4] = {uid, after_s, NULL, lim};
	int64_t limit, after;
	PGresult *res;
	int unread;

	if (api_auth(req, &c) < 0 ||
	    notifications_query(req, c.sub, &unread, &limit, &after, scope, sizeof(scope)) < 0)
		return 0;
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	snprintf(after_s, sizeof(after_s), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	p[2] = unread ? "true" : "false";
	if ((res = api_sql(req, "api_me_notifications", sql_notifications, 4, p)) == NULL)
		return 0;
	api_page_json(res, limit, scope, notification_json);
	PQclear(res);
	kiln_resp_header(req, "Cache-Control", "no-store");
	return api_send(req, 200);
}

/* Marking twice is not an error: read_at keeps its first value. */
int api_notification_read(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char uid[24];
	const char *p[2] = {kiln_req_param(req, "id"), uid};
	PGresult *res;
	int64_t id;
	int matched;

	if (api_auth(req, &c) < 0 || api_writable(req) < 0 || kiln_req_id_param(req, "id", &id) < 0)
		return 0;
	snprintf(uid, sizeof(uid), "%lld", (long long)c.sub);
	if ((res = api_sql(req, "api_me_read", sql_read, 2, p)) == NULL)
		return 0;
	matched = atoi(PQcmdTuples(res)) > 0;
	PQclear(res);
	if (!matched)
		return kiln_problem(req, 404, "no such notification of yours", NULL);
	return kiln_resp_body(req, 204, "", "", 0);
}
