/* /admin/api/cache/flush and /admin/api/maintenance: changes kept in Redis.
 * Each runs inside its audit row's transaction: begin, take the admin Redis
 * lock (so concurrent administrators see and record each other's values),
 * read the current value, insert the audit row, make the Redis change,
 * commit. Redis failing rolls the row back (503); a failed commit puts the
 * old Redis value back, so the log and Redis do not disagree. */
#include <stdio.h>
#include <string.h>

#include "kiln/log.h"
#include "kiln/redis.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "admin.h"

#define MAINTENANCE_DEFAULT "maintenance in progress"
#define MAINTENANCE_MAX     200

/* Serialises the Redis changes of every kiln-admin worker and host. */
static const char sql_redis_lock[] =
    "SELECT pg_advisory_xact_lock(hashtext('kiln-admin redis changes'))";

static void redis_unavailable(struct kiln_req *req)
{
	kiln_resp_header(req, "Retry-After", "1");
	kiln_problem(req, 503, "Redis is unavailable; try again shortly", NULL);
}

/* GET key into out ("" and *exists 0 when absent). Returns 0, or -1 after
 * logging (Redis unreachable or an error reply). */
static int redis_get(const char *key, char *out, size_t outlen, int *exists)
{
	char err[128];
	redisReply *r = kiln_redis_command(kiln_server_redis(), err, sizeof(err), "GET %s", key);
	int rc = 0;

	*exists = 0;
	out[0] = '\0';
	if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
		kiln_warn("redis read failed", "key=%s error=%s", key,
		          r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : err);
		rc = -1;
	} else if (r->type == REDIS_REPLY_STRING) {
		*exists = 1;
		snprintf(out, outlen, "%.*s", (int)(r->len < outlen ? r->len : outlen - 1), r->str);
	}
	freeReplyObject(r);
	return rc;
}

/* SET key value, or DEL key when value is NULL. Returns 0, or -1. */
static int redis_put(const char *key, const char *value)
{
	char err[128];
	redisReply *r;
	int ok;

	if (value)
		r = kiln_redis_command(kiln_server_redis(), err, sizeof(err), "SET %s %s", key,
		                       value);
	else
		r = kiln_redis_command(kiln_server_redis(), err, sizeof(err), "DEL %s", key);
	ok = r && r->type != REDIS_REPLY_ERROR;
	if (!ok)
		kiln_warn("redis write failed", "key=%s error=%s", key, r ? r->str : err);
	freeReplyObject(r);
	return ok ? 0 : -1;
}

/* BEGIN and the Redis lock. Returns 0, or -1 after writing 503. */
static int ops_begin(struct kiln_req *req)
{
	struct kiln_db *db = kiln_server_db();
	PGresult *res;

	if (kiln_req_begin(req, db) < 0)
		return -1;
	if ((res = admin_sql(req, "admin_redis_lock", sql_redis_lock, 0, NULL)) == NULL) {
		kiln_req_rollback(db);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------- cache */

int admin_cache_flush(struct kiln_req *req)
{
	struct kiln_db *db = kiln_server_db();
	char cur[32], before[64], after[64], target[1] = "";
	struct admin_actor a;
	int64_t ns = 0, got;
	int exists;

	if (admin_auth(req, &a) < 0 || admin_empty_body(req) < 0 || ops_begin(req) < 0)
		return 0;
	if (redis_get(KILN_CACHE_NS_KEY, cur, sizeof(cur), &exists) < 0) {
		kiln_req_rollback(db);
		redis_unavailable(req);
		return 0;
	}
	if (exists && kiln_parse_int(cur, 0, INT64_MAX - 1, &ns) < 0)
		ns = 0;
	snprintf(before, sizeof(before), "{\"namespace\":%lld}", (long long)ns);
	snprintf(after, sizeof(after), "{\"namespace\":%lld}", (long long)ns + 1);
	if (admin_audit(req, &a, "cache.flush", "cache", target, before, after) < 0) {
		kiln_req_rollback(db);
		return 0;
	}
	if ((got = kiln_cache_flush(&admin.cache)) < 0) {
		kiln_req_rollback(db);
		redis_unavailable(req);
		return 0;
	}
	if (got != ns + 1) /* the key was changed outside kiln-admin meanwhile */
		kiln_warn("cache namespace moved unexpectedly", "expected=%lld got=%lld",
		          (long long)ns + 1, (long long)got);
	/* A failed commit leaves the flush done and unrecorded; a namespace
	 * cannot be un-bumped, so it is logged. */
	if (kiln_req_commit(req, db) < 0) {
		kiln_error("cache flushed but its audit row was lost", "namespace=%lld",
		           (long long)got);
		return 0;
	}
	kiln_buf_reset(&admin.out);
	kiln_buf_printf(&admin.out, "{\"namespace\":%lld}", (long long)got);
	return admin_send(req, 200);
}

/* ---------------------------------------------------------------- maintenance */

/* {"enabled":..,"message":..} of a state into b. */
static void maintenance_json(struct kiln_buf *b, int enabled, const char *message)
{
	kiln_buf_printf(b, "{\"enabled\":%s,\"message\":", enabled ? "true" : "false");
	if (!enabled) {
		kiln_buf_adds(b, "null}");
		return;
	}
	kiln_buf_addc(b, '"');
	kiln_buf_add_json_str(b, message, strlen(message));
	kiln_buf_adds(b, "\"}");
}

/* The flag as kiln-api reads it: an empty value shows the default. */
static const char *maintenance_message(const char *value)
{
	return value[0] ? value : MAINTENANCE_DEFAULT;
}

int admin_maintenance_get(struct kiln_req *req)
{
	char value[MAINTENANCE_MAX * 2 + 1];
	struct admin_actor a;
	int on;

	if (admin_auth(req, &a) < 0)
		return 0;
	if (redis_get(KILN_MAINTENANCE_KEY, value, sizeof(value), &on) < 0) {
		redis_unavailable(req);
		return 0;
	}
	kiln_buf_reset(&admin.out);
	maintenance_json(&admin.out, on, maintenance_message(value));
	return admin_send(req, 200);
}

/* The body: enabled, and message (1..200 bytes, no control characters). */
static int maintenance_input(struct kiln_req *req, int *enabled, char *msg, size_t msglen)
{
	static const char *const allowed[] = {"enabled", "message", NULL};
	struct kiln_input in;
	const char *m = NULL;
	size_t i;
	int rc;

	if (kiln_input_begin(req, &in, allowed) < 0)
		return -1;
	kiln_json_bool(in.obj, "enabled", 1, enabled, &in.errs);
	if (kiln_json_string(in.obj, "message", 0, 1, MAINTENANCE_MAX, &m, &in.errs) == 0) {
		for (i = 0; m[i]; i++)
			if ((unsigned char)m[i] < 0x20 || m[i] == 0x7f)
				break;
		if (m[i])
			kiln_field_error_add(&in.errs, "message",
			                     "must not contain control characters");
	}
	rc = kiln_input_check(req, &in);
	kiln_strlcpy(msg, rc == 0 && m ? m : MAINTENANCE_DEFAULT, msglen);
	kiln_input_free(&in);
	return rc;
}

/* Record and make the change from (was_on, old) to (on, msg) inside the
 * open transaction. Returns 0, or -1 after writing the error (the caller
 * rolls back). */
static int maintenance_change(struct kiln_req *req, const struct admin_actor *a, int was_on,
                              const char *old, int on, const char *msg)
{
	struct kiln_buf before, after;
	int rc;

	kiln_buf_init(&before);
	kiln_buf_init(&after);
	maintenance_json(&before, was_on, old);
	maintenance_json(&after, on, msg);
	rc = admin_audit(req, a, on ? "maintenance.on" : "maintenance.off", "maintenance", "",
	                 before.data, after.data);
	kiln_buf_free(&before);
	kiln_buf_free(&after);
	if (rc < 0)
		return -1;
	if (redis_put(KILN_MAINTENANCE_KEY, on ? msg : NULL) < 0) {
		redis_unavailable(req);
		return -1;
	}
	return 0;
}

int admin_maintenance_put(struct kiln_req *req)
{
	struct kiln_db *db = kiln_server_db();
	char msg[MAINTENANCE_MAX + 1], value[MAINTENANCE_MAX * 2 + 1], old[MAINTENANCE_MAX * 2 + 1];
	struct admin_actor a;
	int on, was_on;

	if (admin_auth(req, &a) < 0 || maintenance_input(req, &on, msg, sizeof(msg)) < 0 ||
	    ops_begin(req) < 0)
		return 0;
	if (redis_get(KILN_MAINTENANCE_KEY, value, sizeof(value), &was_on) < 0) {
		kiln_req_rollback(db);
		redis_unavailable(req);
		return 0;
	}
	kiln_strlcpy(old, maintenance_message(value), sizeof(old));
	kiln_buf_reset(&admin.out);
	if (on == was_on && (!on || strcmp(old, msg) == 0)) { /* nothing to change */
		kiln_req_rollback(db);
		maintenance_json(&admin.out, on, msg);
		return admin_send(req, 200);
	}
	if (maintenance_change(req, &a, was_on, old, on, msg) < 0) {
		kiln_req_rollback(db);
		return 0;
	}
	if (kiln_req_commit(req, db) < 0) {
		/* Unrecorded: put the flag back as it was. */
		redis_put(KILN_MAINTENANCE_KEY, was_on ? value : NULL);
		return 0;
	}
	maintenance_json(&admin.out, on, msg);
	return admin_send(req, 200);
}
