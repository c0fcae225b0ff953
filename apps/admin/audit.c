/* GET /admin/api/audit: the audit log newest first, filtered by actor,
 * action and target. There is no route that changes it; the table itself
 * refuses UPDATE, DELETE and TRUNCATE (sql/004_admin.sql). */
#include <stdio.h>
#include <string.h>

#include "kiln/util.h"
#include "admin.h"

#define AUDIT_COLS                                                                                 \
	"id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), actor_id,"       \
	" actor_email, action, target_type, target_id, before::text, after::text, host(ip),"       \
	" request_id"
/* Before the cursor ($1), limit + 1 rows ($2), then $3 actor_id, $4 action,
 * $5 target_type, $6 target_id (NULL = any). */
#define AUDIT_SQL(lead)                                                                            \
	"SELECT " AUDIT_COLS " FROM admin_audit WHERE " lead " id < $1"                            \
	" AND ($3::bigint IS NULL OR actor_id = $3) AND ($4::text IS NULL OR action = $4)"         \
	" AND ($5::text IS NULL OR target_type = $5) AND ($6::text IS NULL OR target_id = $6)"     \
	" ORDER BY id DESC LIMIT $2"

/* One statement per index: the filter named first in each is a plain
 * equality, so even the generic plan walks admin_audit_actor_idx or
 * admin_audit_target_idx in id order; without either, the primary key. */
static const struct {
	const char *name, *sql;
} audit_stmts[] = {
    {"admin_audit_list", AUDIT_SQL("")},
    {"admin_audit_list_actor", AUDIT_SQL("actor_id = $3 AND")},
    {"admin_audit_list_target", AUDIT_SQL("target_type = $5 AND target_id = $6 AND")},
};

static const char *const target_types[] = {"user", "job", "cache", "maintenance"};

static void audit_json(struct kiln_buf *b, PGresult *res, int r)
{
	static const struct {
		const char *name;
		int raw;
	} cols[] = {
	    {"at", 0},          {"actor_id", 1},   {"actor_email", 0}, {"action", 0},
	    {"target_type", 0}, {"target_id", 0},  {"before", 1},      {"after", 1},
	    {"ip", 0},          {"request_id", 0},
	};
	size_t i;

	kiln_buf_printf(b, "{\"id\":%lld", (long long)kiln_pg_int(res, r, 0));
	for (i = 0; i < KILN_ARRAY_LEN(cols); i++) {
		kiln_buf_printf(b, ",\"%s\":", cols[i].name);
		if (cols[i].raw)
			kiln_pg_json_raw(b, res, r, (int)i + 1);
		else
			kiln_pg_json_str(b, res, r, (int)i + 1);
	}
	kiln_buf_addc(b, '}');
}

/* An action as the table's check allows it: [a-z_]+ "." [a-z_]+, at most
 * 64 bytes. */
static int valid_action(const char *s)
{
	static const char word[] = "abcdefghijklmnopqrstuvwxyz_";
	size_t a = strspn(s, word), b;

	if (a == 0 || s[a] != '.')
		return 0;
	b = strspn(s + a + 1, word);
	return b > 0 && s[a + 1 + b] == '\0' && a + 1 + b <= 64;
}

static int valid_target_type(const char *s)
{
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(target_types); i++)
		if (strcmp(target_types[i], s) == 0)
			return 1;
	return 0;
}

/* 1..64 bytes of printable ASCII (ids are numbers; "" means none). */
static int valid_target_id(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
			return 0;
	return n >= 1 && n <= 64;
}

/* Read the filters into p[2..5] and the scope; errors into errs. */
static void audit_filters(const struct kiln_query *q, const char **p, char *scope, size_t len,
                          struct kiln_field_errors *errs)
{
	const char *actor = kiln_query_get(q, "actor_id"), *action = kiln_query_get(q, "action");
	const char *ttype = kiln_query_get(q, "target_type");
	const char *tid = kiln_query_get(q, "target_id");
	int64_t v;

	if (actor && kiln_parse_int(actor, 1, INT64_MAX, &v) < 0)
		kiln_field_error_add(errs, "actor_id", "must be a positive integer");
	if (action && !valid_action(action))
		kiln_field_error_add(errs, "action", "must look like user.lock");
	if (ttype && !valid_target_type(ttype))
		kiln_field_error_add(errs, "target_type",
		                     "must be user, job, cache or maintenance");
	if (tid && !valid_target_id(tid))
		kiln_field_error_add(errs, "target_id",
		                     "must be 1 to 64 printable ASCII characters");
	p[2] = actor, p[3] = action, p[4] = ttype, p[5] = tid;
	/* target_id last: only it may hold '|'. */
	snprintf(scope, len, "audit|%s|%s|%s|%s", actor ? actor : "", action ? action : "",
	         ttype ? ttype : "", tid ? tid : "");
}

int admin_audit_list(struct kiln_req *req)
{
	struct kiln_field_errors errs = {0};
	const struct kiln_query *q;
	struct admin_actor a;
	char after_s[24], lim[24], scope[200];
	const char *p[6] = {after_s, lim, NULL, NULL, NULL, NULL};
	int64_t limit, after = INT64_MAX;
	PGresult *res;
	int s;

	if (admin_auth(req, &a) < 0 || (q = kiln_req_query(req)) == NULL)
		return 0;
	audit_filters(q, p, scope, sizeof(scope), &errs);
	if (admin_page_params(req, q, scope, &limit, &after, &errs) < 0)
		return 0;
	snprintf(after_s, sizeof(after_s), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	s = p[2] ? 1 : p[4] && p[5] ? 2 : 0;
	if ((res = admin_sql(req, audit_stmts[s].name, audit_stmts[s].sql, 6, p)) == NULL)
		return 0;
	admin_page_json(res, limit, scope, audit_json);
	PQclear(res);
	return admin_send(req, 200);
}
