/* /admin/api/users: list, look at, lock, unlock, change the role of, and
 * sign out users. Each change locks the user's row, compares, changes,
 * writes its audit row and commits in one transaction; a change that would
 * change nothing answers the user as it is and writes no row. */
#include <stdio.h>
#include <string.h>

#include "kiln/server.h"
#include "kiln/util.h"
#include "admin.h"

#define USER_COLS                                                                                  \
	"u.id, u.email, u.display_name, u.role, u.locked,"                                         \
	" CASE WHEN u.locked_until > now() THEN " ADMIN_TS(                                        \
	    "u.locked_until") " END,"                                                              \
	                      " u.failed_logins,"                                                  \
	                      " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND "      \
	                      "s.revoked_at IS NULL"                                               \
	                      "  AND s.expires_at > now()),"                                       \
	                      " " ADMIN_TS("u.created_at") ", " ADMIN_TS(                          \
	                          "u.updated_at") ", u.locked_until IS NOT NULL"

enum user_col {
	U_ID,
	U_EMAIL,
	U_NAME,
	U_ROLE,
	U_LOCKED,
	U_LOCKED_UNTIL,
	U_FAILED,
	U_SESSIONS,
	U_CREATED,
	U_UPDATED,
	U_THROTTLED, /* locked_until set, past or not: unlock has something to clear */
};

static const char sql_get[] = "SELECT " USER_COLS " FROM users u WHERE u.id = $1";
static const char sql_lock_row[] =
    "SELECT " USER_COLS " FROM users u WHERE u.id = $1 FOR NO KEY UPDATE";

/* By id after the cursor ($1), limit + 1 rows ($2), the filters that are
 * set ($3 q, $4 role, $5 locked; NULL = any). Users have no text index: a
 * primary-key walk with filters reads at most what a page needs when the
 * filters match often, and the table is small next to the rest. */
static const char sql_list[] =
    "SELECT " USER_COLS " FROM users u WHERE u.id > $1"
    " AND ($3::text IS NULL OR strpos(lower(u.email), lower($3)) > 0"
    "  OR strpos(lower(u.display_name), lower($3)) > 0)"
    " AND ($4::text IS NULL OR u.role = $4) AND ($5::boolean IS NULL OR u.locked = $5)"
    " ORDER BY u.id LIMIT $2";

/* Every active session revoked (reason admin) and the session version
 * bumped, so no access token issued before keeps working. Returns the
 * number revoked. */
#define REVOKE_CTE                                                                                 \
	"WITH s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'admin'"              \
	" WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING 1) "
static const char sql_lock[] = REVOKE_CTE
    "UPDATE users SET locked = true, session_version = session_version + 1, updated_at = now()"
    " WHERE id = $1 RETURNING (SELECT count(*) FROM s)";
static const char sql_role[] = REVOKE_CTE
    "UPDATE users SET role = $2, session_version = session_version + 1, updated_at = now()"
    " WHERE id = $1 RETURNING (SELECT count(*) FROM s)";
static const char sql_revoke[] =
    REVOKE_CTE "UPDATE users SET session_version = session_version + 1, updated_at = now()"
               " WHERE id = $1 RETURNING (SELECT count(*) FROM s)";
static const char sql_unlock[] =
    "UPDATE users SET locked = false, failed_logins = 0, locked_until = NULL,"
    " window_failures = 0, failure_window = NULL, updated_at = now() WHERE id = $1 RETURNING id";

static const char *const roles[] = {"user", "author", "admin"};

static int known_role(const char *r)
{
	size_t i;

	for (i = 0; r && i < KILN_ARRAY_LEN(roles); i++)
		if (strcmp(roles[i], r) == 0)
			return 1;
	return 0;
}

/* Row r as the user object. */
static void user_json(struct kiln_buf *b, PGresult *res, int r)
{
	kiln_buf_printf(b, "{\"id\":%lld,\"email\":", (long long)kiln_pg_int(res, r, U_ID));
	kiln_pg_json_str(b, res, r, U_EMAIL);
	kiln_buf_adds(b, ",\"display_name\":");
	kiln_pg_json_str(b, res, r, U_NAME);
	kiln_buf_adds(b, ",\"role\":");
	kiln_pg_json_str(b, res, r, U_ROLE);
	kiln_buf_adds(b, ",\"locked\":");
	kiln_pg_json_bool(b, res, r, U_LOCKED);
	kiln_buf_adds(b, ",\"locked_until\":");
	kiln_pg_json_str(b, res, r, U_LOCKED_UNTIL);
	kiln_buf_printf(b, ",\"failed_logins\":%lld,\"active_sessions\":%lld,\"created_at\":",
	                (long long)kiln_pg_int(res, r, U_FAILED),
	                (long long)kiln_pg_int(res, r, U_SESSIONS));
	kiln_pg_json_str(b, res, r, U_CREATED);
	kiln_buf_adds(b, ",\"updated_at\":");
	kiln_pg_json_str(b, res, r, U_UPDATED);
	kiln_buf_addc(b, '}');
}

/* ---------------------------------------------------------------- reads */

/* Read q, role, locked into p[2..4] and the scope; errors into errs. */
static void users_filters(const struct kiln_query *q, const char **p, char *scope, size_t len,
                          struct kiln_field_errors *errs)
{
	const char *text = kiln_query_get(q, "q"), *role = kiln_query_get(q, "role");
	const char *locked = kiln_query_get(q, "locked");
	size_t n, i, step;

	if (text) {
		n = strlen(text);
		for (i = 0, step = 1; i < n && step; i += step)
			step = (unsigned char)text[i] >= 0x20
			           ? kiln_utf8_len((const unsigned char *)text + i, n - i)
			           : 0;
		if (n < 1 || n > 100 || i != n)
			kiln_field_error_add(errs, "q", "must be 1 to 100 bytes of UTF-8 text");
	}
	if (role && !known_role(role))
		kiln_field_error_add(errs, "role", "must be user, author or admin");
	if (locked && strcmp(locked, "true") != 0 && strcmp(locked, "false") != 0)
		kiln_field_error_add(errs, "locked", "must be true or false");
	p[2] = text, p[3] = role, p[4] = locked;
	/* q last: the other parts cannot hold '|', so no two filter sets
	 * share a scope. */
	snprintf(scope, len, "users|%s|%s|%s", role ? role : "", locked ? locked : "",
	         text ? text : "");
}

int admin_users_list(struct kiln_req *req)
{
	struct kiln_field_errors errs = {0};
	const struct kiln_query *q;
	struct admin_actor a;
	char after_s[24], lim[24], scope[160];
	const char *p[5] = {after_s, lim, NULL, NULL, NULL};
	int64_t limit, after = 0;
	PGresult *res;

	if (admin_auth(req, &a) < 0 || (q = kiln_req_query(req)) == NULL)
		return 0;
	users_filters(q, p, scope, sizeof(scope), &errs);
	if (admin_page_params(req, q, scope, &limit, &after, &errs) < 0)
		return 0;
	snprintf(after_s, sizeof(after_s), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	if ((res = admin_sql(req, "admin_users_list", sql_list, 5, p)) == NULL)
		return 0;
	admin_page_json(res, limit, scope, user_json);
	PQclear(res);
	return admin_send(req, 200);
}

/* Answer the user id as it is now (404 when none). Returns 0. */
static int user_send(struct kiln_req *req, const char *id)
{
	const char *p[1] = {id};
	PGresult *res = admin_sql(req, "admin_user_get", sql_get, 1, p);

	if (res == NULL)
		return 0;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return kiln_problem(req, 404, "no such user", NULL);
	}
	kiln_buf_reset(&admin.out);
	user_json(&admin.out, res, 0);
	PQclear(res);
	return admin_send(req, 200);
}

int admin_user_get(struct kiln_req *req)
{
	struct admin_actor a;
	int64_t id;

	if (admin_auth(req, &a) < 0 || kiln_req_id_param(req, "id", &id) < 0)
		return 0;
	return user_send(req, kiln_req_param(req, "id"));
}

/* ---------------------------------------------------------------- changes */

enum user_op { OP_LOCK, OP_UNLOCK, OP_ROLE, OP_REVOKE };

struct user_change {
	enum user_op op;
	const char *id;   /* the route parameter */
	const char *role; /* OP_ROLE */
	int self;         /* the target is the actor */
	int64_t revoked;
};

/* Does op change the user in row 0 of res? */
static int user_op_changes(const struct user_change *c, PGresult *res)
{
	switch (c->op) {
	case OP_LOCK:
		return PQgetvalue(res, 0, U_LOCKED)[0] != 't';
	case OP_UNLOCK:
		return PQgetvalue(res, 0, U_LOCKED)[0] == 't' ||
		       kiln_pg_int(res, 0, U_FAILED) != 0 ||
		       PQgetvalue(res, 0, U_THROTTLED)[0] == 't';
	case OP_ROLE:
		return strcmp(PQgetvalue(res, 0, U_ROLE), c->role) != 0;
	case OP_REVOKE:
		return kiln_pg_int(res, 0, U_SESSIONS) > 0;
	}
	return 0;
}

static const char *const user_actions[] = {"user.lock", "user.unlock", "user.role",
                                           "user.revoke_sessions"};

/* The audit snapshots of op on the user in row 0 of res: the fields it
 * changes, before and after. */
static void user_snapshots(const struct user_change *c, PGresult *res, struct kiln_buf *before,
                           struct kiln_buf *after)
{
	long long sessions = (long long)kiln_pg_int(res, 0, U_SESSIONS);

	switch (c->op) {
	case OP_LOCK:
		kiln_buf_printf(before, "{\"locked\":false,\"active_sessions\":%lld}", sessions);
		kiln_buf_adds(after, "{\"locked\":true,\"active_sessions\":0}");
		break;
	case OP_UNLOCK:
		kiln_buf_printf(before, "{\"locked\":%s,\"failed_logins\":%lld,\"locked_until\":",
		                PQgetvalue(res, 0, U_LOCKED)[0] == 't' ? "true" : "false",
		                (long long)kiln_pg_int(res, 0, U_FAILED));
		kiln_pg_json_str(before, res, 0, U_LOCKED_UNTIL);
		kiln_buf_addc(before, '}');
		kiln_buf_adds(after,
		              "{\"locked\":false,\"failed_logins\":0,\"locked_until\":null}");
		break;
	case OP_ROLE:
		kiln_buf_adds(before, "{\"role\":");
		kiln_pg_json_str(before, res, 0, U_ROLE);
		kiln_buf_printf(before, ",\"active_sessions\":%lld}", sessions);
		kiln_buf_printf(after, "{\"role\":\"%s\",\"active_sessions\":0}", c->role);
		break;
	case OP_REVOKE:
		kiln_buf_printf(before, "{\"active_sessions\":%lld}", sessions);
		kiln_buf_adds(after, "{\"active_sessions\":0}");
		break;
	}
}

/* Run the change statement of c on the locked user. Returns 0, or -1 after
 * writing the error. */
static int user_apply(struct kiln_req *req, struct user_change *c)
{
	static const struct {
		const char *name, *sql;
		int n;
	} stmts[] = {
	    [OP_LOCK] = {"admin_user_lock", sql_lock, 1},
	    [OP_UNLOCK] = {"admin_user_unlock", sql_unlock, 1},
	    [OP_ROLE] = {"admin_user_role", sql_role, 2},
	    [OP_REVOKE] = {"admin_user_revoke", sql_revoke, 1},
	};
	const char *p[2] = {c->id, c->role};
	PGresult *res = admin_sql(req, stmts[c->op].name, stmts[c->op].sql, stmts[c->op].n, p);

	if (res == NULL)
		return -1;
	c->revoked = c->op == OP_UNLOCK ? 0 : kiln_pg_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* Lock the row, check, change, audit, commit. Returns 1 when changed, 0
 * when there was nothing to change, or -1 after writing the response. */
static int user_change_tx(struct kiln_req *req, const struct admin_actor *a, struct user_change *c)
{
	struct kiln_db *db = kiln_server_db();
	struct kiln_buf before, after;
	const char *p[1] = {c->id};
	PGresult *res;
	int rc = -1;

	if (kiln_req_begin(req, db) < 0)
		return -1;
	if ((res = admin_sql(req, "admin_user_lock_row", sql_lock_row, 1, p)) == NULL) {
		kiln_req_rollback(db);
		return -1;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		kiln_req_rollback(db);
		kiln_problem(req, 404, "no such user", NULL);
		return -1;
	}
	if (!user_op_changes(c, res)) {
		PQclear(res);
		kiln_req_rollback(db);
		return 0;
	}
	/* An administrator who locks or demotes themselves could lock
	 * everyone out; another administrator has to do it. */
	if (c->self && (c->op == OP_LOCK || c->op == OP_ROLE)) {
		PQclear(res);
		kiln_req_rollback(db);
		kiln_problem(req, 409,
		             c->op == OP_LOCK ? "you cannot lock yourself"
		                              : "you cannot change your own role",
		             NULL);
		return -1;
	}
	kiln_buf_init(&before);
	kiln_buf_init(&after);
	user_snapshots(c, res, &before, &after);
	PQclear(res);
	if (user_apply(req, c) == 0 &&
	    admin_audit(req, a, user_actions[c->op], "user", c->id, before.data, after.data) == 0)
		rc = kiln_req_commit(req, db) == 0 ? 1 : -1;
	else
		kiln_req_rollback(db);
	kiln_buf_free(&before);
	kiln_buf_free(&after);
	return rc;
}

/* The common path of the four changes once the input is read. */
static int user_change(struct kiln_req *req, const struct admin_actor *a, struct user_change *c)
{
	int rc = user_change_tx(req, a, c);

	if (rc < 0)
		return 0;
	if (c->op != OP_REVOKE)
		return user_send(req, c->id);
	kiln_buf_reset(&admin.out);
	kiln_buf_printf(&admin.out, "{\"revoked\":%lld}", (long long)(rc ? c->revoked : 0));
	return admin_send(req, 200);
}

/* Auth, the id, an empty body. Returns 0, or -1 after writing the error. */
static int user_action_begin(struct kiln_req *req, struct admin_actor *a, struct user_change *c)
{
	int64_t id;

	if (admin_auth(req, a) < 0 || kiln_req_id_param(req, "id", &id) < 0 ||
	    admin_empty_body(req) < 0)
		return -1;
	c->id = kiln_req_param(req, "id");
	c->self = id == a->claims.sub;
	return 0;
}

int admin_user_lock(struct kiln_req *req)
{
	struct user_change c = {.op = OP_LOCK};
	struct admin_actor a;

	if (user_action_begin(req, &a, &c) < 0)
		return 0;
	return user_change(req, &a, &c);
}

int admin_user_unlock(struct kiln_req *req)
{
	struct user_change c = {.op = OP_UNLOCK};
	struct admin_actor a;

	if (user_action_begin(req, &a, &c) < 0)
		return 0;
	return user_change(req, &a, &c);
}

int admin_user_revoke_sessions(struct kiln_req *req)
{
	struct user_change c = {.op = OP_REVOKE};
	struct admin_actor a;

	if (user_action_begin(req, &a, &c) < 0)
		return 0;
	return user_change(req, &a, &c);
}

int admin_user_role(struct kiln_req *req)
{
	static const char *const allowed[] = {"role", NULL};
	struct user_change c = {.op = OP_ROLE};
	struct admin_actor a;
	struct kiln_input in;
	const char *role = NULL;
	char role_buf[16];
	int64_t id;

	if (admin_auth(req, &a) < 0 || kiln_req_id_param(req, "id", &id) < 0 ||
	    kiln_input_begin(req, &in, allowed) < 0)
		return 0;
	if (kiln_json_string(in.obj, "role", 1, 1, 15, &role, &in.errs) == 0 && !known_role(role))
		kiln_field_error_add(&in.errs, "role", "must be user, author or admin");
	if (kiln_input_check(req, &in) < 0) {
		kiln_input_free(&in);
		return 0;
	}
	kiln_strlcpy(role_buf, role, sizeof(role_buf));
	kiln_input_free(&in);
	c.id = kiln_req_param(req, "id");
	c.role = role_buf;
	c.self = id == a.claims.sub;
	return user_change(req, &a, &c);
}
