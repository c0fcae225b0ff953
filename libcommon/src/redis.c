/* redis: one hiredis connection per worker, blocking with socket timeouts
 * (hiredis applies connect_timeout to the connect and command_timeout as
 * SO_RCVTIMEO/SO_SNDTIMEO). A failed connection is dropped and re-opened
 * lazily after a backoff, so a dead Redis costs each request a clock check
 * rather than a connect attempt.
 *
 * With [redis] sentinels set, every connect first asks the Sentinels for
 * the master's address (SENTINEL get-master-addr-by-name) and then checks
 * with ROLE that the node it reached is a master, as Sentinel's client
 * guidelines ask. A connection error or a READONLY reply (the node was
 * demoted by a failover) drops the connection, so the next connect asks
 * again: a failover is followed without a restart. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "kiln/redis.h"
#include "kiln/util.h"

#define REDIS_BACKOFF_MIN_MS 50
#define REDIS_BACKOFF_MAX_MS 2000
/* Used when the config leaves a timeout at 0: hiredis would wait forever. */
#define REDIS_DEFAULT_TIMEOUT_MS 1000

struct kiln_redis {
	struct kiln_cfg_redis cfg;
	char addr[KILN_CFG_STR_MAX]; /* the server in use: address, or the master found */
	size_t sentinel;             /* the Sentinel that answered last, asked first */
	redisContext *ctx;
	int64_t next_attempt_ms; /* monotonic; no connect attempt before this */
	int64_t backoff_ms;
	char last_err[256];
};

struct kiln_redis *kiln_redis_new(const struct kiln_cfg_redis *cfg)
{
	struct kiln_redis *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->cfg = *cfg;
	kiln_strlcpy(r->addr, cfg->address, sizeof(r->addr));
	r->backoff_ms = REDIS_BACKOFF_MIN_MS;
	return r;
}

void kiln_redis_free(struct kiln_redis *r)
{
	if (r == NULL)
		return;
	if (r->ctx)
		redisFree(r->ctx);
	explicit_bzero(r->cfg.password, sizeof(r->cfg.password));
	free(r);
}

/* hiredis 0.14 sends with write(2): once Redis has gone away the kernel
 * raises SIGPIPE, which kills a worker whose program did not ignore it.
 * Block it around each exchange and swallow one we caused (libpq's trick),
 * so the library is safe whatever the program's signal setup. */
struct redis_sigpipe {
	sigset_t old;
	int was_pending;
};

static void redis_sigpipe_block(struct redis_sigpipe *sp)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, &sp->old);
	sp->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

static void redis_sigpipe_restore(const struct redis_sigpipe *sp)
{
	struct timespec zero = {0, 0};
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!sp->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
		sigtimedwait(&set, NULL, &zero);
	sigprocmask(SIG_SETMASK, &sp->old, NULL);
}

static struct timeval redis_tv(int64_t ms)
{
	struct timeval tv;

	if (ms <= 0)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

static int64_t redis_ms(int64_t configured)
{
	return configured > 0 ? configured : REDIS_DEFAULT_TIMEOUT_MS;
}

/* Drop the connection after a failure and hold off the next attempt. */
static void redis_drop(struct kiln_redis *r, const char *err)
{
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
	if (err && strncmp(err, "redis: ", 7) == 0)
		err += 7;
	kiln_strlcpy(r->last_err, err ? err : "", sizeof(r->last_err));
	r->next_attempt_ms = kiln_now_ms() + r->backoff_ms;
	r->backoff_ms =
	    r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Run one setup command (AUTH, SELECT) that must answer +OK.
 * Returns 0, or -1 with err set. */
static int redis_setup_cmd(redisContext *ctx, const char *what, char *err, size_t errlen,
                           const char *fmt, ...)
{
	redisReply *reply;
	va_list ap;
	int ok;

	va_start(ap, fmt);
	reply = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (reply == NULL) {
		snprintf(err, errlen, "redis: %s failed: %s", what, ctx->errstr);
		return -1;
	}
	ok = reply->type == REDIS_REPLY_STATUS;
	if (!ok)
		snprintf(err, errlen, "redis: %s failed: %s", what,
		         reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	freeReplyObject(reply);
	return ok ? 0 : -1;
}

/* A TCP or unix connection to addr with both timeouts set. Returns the
 * context, or NULL with err set. */
static redisContext *redis_open(const char *addr, int64_t connect_ms, int64_t cmd_ms, char *err,
                                size_t errlen)
{
	char host[KILN_CFG_STR_MAX];
	redisContext *ctx;
	int port;

	if (kiln_parse_addr(addr, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "redis: bad address '%s'", addr);
		return NULL;
	}
	ctx = port < 0 ? redisConnectUnixWithTimeout(host, redis_tv(connect_ms))
	               : redisConnectWithTimeout(host, port, redis_tv(connect_ms));
	if (ctx == NULL || ctx->err) {
		snprintf(err, errlen, "redis: connect to %s failed: %s", addr,
		         ctx ? ctx->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(ctx, redis_tv(cmd_ms)) != REDIS_OK) {
		snprintf(err, errlen, "redis: setting the timeout failed: %s", ctx->errstr);
		goto fail;
	}
	return ctx;
fail:
	if (ctx)
		redisFree(ctx);
	return NULL;
}

/* Ask one Sentinel (len bytes of addr) for the master's address into out.
 * Returns 0, or -1 with err set. */
static int redis_ask_sentinel(struct kiln_redis *r, const char *addr, size_t len, int64_t ms,
                              char *out, size_t outlen, char *err, size_t errlen)
{
	char a[KILN_CFG_STR_MAX];
	redisContext *ctx;
	redisReply *rep;
	int rc = -1;

	if (len >= sizeof(a)) {
		snprintf(err, errlen, "redis: sentinel address too long");
		return -1;
	}
	memcpy(a, addr, len);
	a[len] = '\0';
	if ((ctx = redis_open(a, ms, ms, err, errlen)) == NULL)
		return -1;
	rep = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", r->cfg.sentinel_master);
	if (rep == NULL || ctx->err)
		snprintf(err, errlen, "redis: sentinel %s: %s", a,
		         ctx->errstr[0] ? ctx->errstr : "no reply");
	else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	         rep->element[0]->type != REDIS_REPLY_STRING ||
	         rep->element[1]->type != REDIS_REPLY_STRING)
		snprintf(err, errlen, "redis: sentinel %s does not know master '%s'%s%s", a,
		         r->cfg.sentinel_master, rep->type == REDIS_REPLY_ERROR ? ": " : "",
		         rep->type == REDIS_REPLY_ERROR ? rep->str : "");
	else
		rc = snprintf(out, outlen, strchr(rep->element[0]->str, ':') ? "[%s]:%s" : "%s:%s",
		              rep->element[0]->str, rep->element[1]->str) < (int)outlen
		         ? 0
		         : -1;
	if (rep)
		freeReplyObject(rep);
	redisFree(ctx);
	return rc;
}

/* The master's address from the Sentinels into r->addr, asking the one that
 * answered last first. Returns 0, or -1 with err (the last Sentinel's
 * failure) set. */
static int redis_find_master(struct kiln_redis *r, int64_t ms, char *err, size_t errlen)
{
	const char *items[KILN_REDIS_MAX_SENTINELS], *p = r->cfg.sentinels;
	size_t lens[KILN_REDIS_MAX_SENTINELS], n = 0, i, k;

	while (n < KILN_REDIS_MAX_SENTINELS) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		items[n] = p;
		lens[n] = strcspn(p, " \t");
		p += lens[n++];
	}
	snprintf(err, errlen, "redis: no sentinel configured");
	for (i = 0; i < n; i++) {
		k = (r->sentinel + i) % n;
		if (redis_ask_sentinel(r, items[k], lens[k], ms, r->addr, sizeof(r->addr), err,
		                       errlen) == 0) {
			r->sentinel = k;
			return 0;
		}
	}
	return -1;
}

/* Is the node behind ctx a master? A Sentinel may still name a node that
 * has just been demoted. Returns 0, or -1 with err set. */
static int redis_check_master(redisContext *ctx, const char *addr, char *err, size_t errlen)
{
	redisReply *rep = redisCommand(ctx, "ROLE");
	int ok = rep && !ctx->err && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	         rep->element[0]->type == REDIS_REPLY_STRING &&
	         strcmp(rep->element[0]->str, "master") == 0;

	if (!ok)
		snprintf(err, errlen, "redis: %s named by the sentinels is not a master", addr);
	if (rep)
		freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* Connect (to the master the Sentinels name, when they are configured), set
 * the command timeout, authenticate and select the database. Returns 0, or
 * -1 with err set and the backoff scheduled. */
static int redis_connect(struct kiln_redis *r, int64_t connect_ms, int64_t cmd_ms, char *err,
                         size_t errlen)
{
	redisContext *ctx = NULL;

	if (r->cfg.sentinels[0] && redis_find_master(r, connect_ms, err, errlen) < 0)
		goto fail;
	if ((ctx = redis_open(r->addr, connect_ms, cmd_ms, err, errlen)) == NULL)
		goto fail;
	if (r->cfg.password[0] &&
	    redis_setup_cmd(ctx, "AUTH", err, errlen, "AUTH %s", r->cfg.password) < 0)
		goto fail;
	if (r->cfg.sentinels[0] && redis_check_master(ctx, r->addr, err, errlen) < 0)
		goto fail;
	if (r->cfg.db != 0 &&
	    redis_setup_cmd(ctx, "SELECT", err, errlen, "SELECT %lld", (long long)r->cfg.db) < 0)
		goto fail;
	r->ctx = ctx;
	r->backoff_ms = REDIS_BACKOFF_MIN_MS;
	r->next_attempt_ms = 0;
	return 0;
fail:
	if (ctx)
		redisFree(ctx);
	redis_drop(r, err);
	return -1;
}

/* The open connection, or a new one unless the backoff says wait (ignored
 * when force is set). Returns 0, or -1 with err set. */
static int redis_ensure(struct kiln_redis *r, int force, int64_t connect_ms, int64_t cmd_ms,
                        char *err, size_t errlen)
{
	int64_t now = kiln_now_ms();

	if (r->ctx)
		return 0;
	if (!force && now < r->next_attempt_ms) {
		snprintf(err, errlen, "redis: unavailable, next attempt in %lld ms; last error: %s",
		         (long long)(r->next_attempt_ms - now), r->last_err);
		return -1;
	}
	return redis_connect(r, connect_ms, cmd_ms, err, errlen);
}

/* After a timeout or I/O error the stream is out of step with the server:
 * the connection cannot be reused. Returns reply, or NULL with err set and
 * the connection dropped. */
static redisReply *redis_checked(struct kiln_redis *r, redisReply *reply, char *err, size_t errlen)
{
	if (reply && !r->ctx->err)
		return reply;
	snprintf(err, errlen, "redis: %s: %s", r->addr,
	         r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
	if (reply)
		freeReplyObject(reply);
	redis_drop(r, err);
	return NULL;
}

/* A READONLY reply: the node was demoted by a failover. The connection is
 * dropped (without backoff: the next connect asks the Sentinels again).
 * Returns 1 when it is worth one more try at once (Sentinels configured),
 * else 0. */
static int redis_demoted(struct kiln_redis *r, const redisReply *reply)
{
	if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL ||
	    strncmp(reply->str, "READONLY", 8) != 0 || r->ctx == NULL)
		return 0;
	redisFree(r->ctx);
	r->ctx = NULL;
	r->next_attempt_ms = 0;
	return r->cfg.sentinels[0] != '\0';
}

redisReply *kiln_redis_command(struct kiln_redis *r, char *err, size_t errlen, const char *fmt, ...)
{
	struct redis_sigpipe sp;
	redisReply *reply = NULL;
	va_list ap;
	int tries;

	redis_sigpipe_block(&sp);
	for (tries = 0; tries < 2; tries++) {
		if (reply) {
			freeReplyObject(reply);
			reply = NULL;
		}
		if (redis_ensure(r, 0, redis_ms(r->cfg.connect_timeout_ms),
		                 redis_ms(r->cfg.command_timeout_ms), err, errlen) != 0)
			break;
		va_start(ap, fmt);
		reply = redisvCommand(r->ctx, fmt, ap);
		va_end(ap);
		reply = redis_checked(r, reply, err, errlen);
		if (!redis_demoted(r, reply))
			break;
	}
	redis_sigpipe_restore(&sp);
	return reply;
}

/* The script's SHA1 as Redis names it, computed once. */
static void redis_script_sha(struct kiln_redis_script *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA_DIGEST_LENGTH];
	size_t i;

	if (s->sha[0])
		return;
	SHA1((const unsigned char *)s->source, strlen(s->source), md);
	for (i = 0; i < sizeof(md); i++) {
		s->sha[2 * i] = hex[md[i] >> 4];
		s->sha[2 * i + 1] = hex[md[i] & 15];
	}
	s->sha[2 * sizeof(md)] = '\0';
}

/* One EVALSHA or EVAL (cmd) of s on the open connection. Returns the reply,
 * or NULL with err set and the connection dropped. */
static redisReply *redis_eval_once(struct kiln_redis *r, const char *cmd, const char *body,
                                   int nkeys, int argc, const char **argv, char *err, size_t errlen)
{
	const char *vec[KILN_REDIS_EVAL_MAX_ARGS + 3];
	char nk[16];
	redisReply *reply;

	snprintf(nk, sizeof(nk), "%d", nkeys);
	vec[0] = cmd;
	vec[1] = body;
	vec[2] = nk;
	if (argc > 0)
		memcpy(vec + 3, argv, (size_t)argc * sizeof(*argv));
	reply = redisCommandArgv(r->ctx, argc + 3, vec, NULL);
	return redis_checked(r, reply, err, errlen);
}

/* EVALSHA first: the source travels only when this server lacks the script
 * (first use, restart, SCRIPT FLUSH). */
redisReply *kiln_redis_eval(struct kiln_redis *r, struct kiln_redis_script *s, int nkeys, int argc,
                            const char **argv, char *err, size_t errlen)
{
	struct redis_sigpipe sp;
	redisReply *reply = NULL;
	int tries;

	if (nkeys < 0 || nkeys > argc || argc > KILN_REDIS_EVAL_MAX_ARGS) {
		snprintf(err, errlen, "redis: eval with %d keys of %d arguments", nkeys, argc);
		return NULL;
	}
	redis_script_sha(s);
	redis_sigpipe_block(&sp);
	for (tries = 0; tries < 2; tries++) {
		if (reply) {
			freeReplyObject(reply);
			reply = NULL;
		}
		if (redis_ensure(r, 0, redis_ms(r->cfg.connect_timeout_ms),
		                 redis_ms(r->cfg.command_timeout_ms), err, errlen) != 0)
			break;
		reply = redis_eval_once(r, "EVALSHA", s->sha, nkeys, argc, argv, err, errlen);
		if (reply && reply->type == REDIS_REPLY_ERROR &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(reply);
			reply =
			    redis_eval_once(r, "EVAL", s->source, nkeys, argc, argv, err, errlen);
		}
		if (!redis_demoted(r, reply))
			break;
	}
	redis_sigpipe_restore(&sp);
	return reply;
}

/* PING with the socket timeout set to what is left of the deadline.
 * Returns 0, or -1 with err set. */
static int redis_ping_once(struct kiln_redis *r, int64_t deadline, char *err, size_t errlen)
{
	int64_t left = deadline - kiln_now_ms();
	redisReply *reply;
	int ok;

	if (left <= 0) {
		snprintf(err, errlen, "redis: %s: ping timed out", r->addr);
		return -1;
	}
	redisSetTimeout(r->ctx, redis_tv(left));
	reply = redisCommand(r->ctx, "PING");
	if (reply == NULL || r->ctx->err) {
		snprintf(err, errlen, "redis: %s: ping failed: %s", r->addr,
		         r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
		if (reply)
			freeReplyObject(reply);
		redis_drop(r, err);
		return -1;
	}
	ok = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
	if (!ok)
		snprintf(err, errlen, "redis: %s: ping answered '%s'", r->addr,
		         reply->str ? reply->str : "?");
	freeReplyObject(reply);
	redisSetTimeout(r->ctx, redis_tv(redis_ms(r->cfg.command_timeout_ms)));
	return ok ? 0 : -1;
}

int kiln_redis_ping(struct kiln_redis *r, int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = kiln_now_ms() + timeout_ms;
	int64_t cms = redis_ms(r->cfg.connect_timeout_ms);
	struct redis_sigpipe sp;
	int rc = -1;

	int was_open = r->ctx != NULL;

	redis_sigpipe_block(&sp);
	if (redis_ensure(r, 1, cms < timeout_ms ? cms : timeout_ms, timeout_ms, err, errlen) == 0)
		rc = redis_ping_once(r, deadline, err, errlen);
	/* A connection that was open and broke (the server restarted, a
	 * Sentinel failover moved the master) is dropped by the failed ping:
	 * one fresh connection within the same deadline tells whether Redis is
	 * really down, instead of failing a readiness probe per process. */
	if (rc < 0 && was_open && r->ctx == NULL && kiln_now_ms() < deadline) {
		int64_t left = deadline - kiln_now_ms();

		if (redis_ensure(r, 1, cms < left ? cms : left, left, err, errlen) == 0)
			rc = redis_ping_once(r, deadline, err, errlen);
	}
	redis_sigpipe_restore(&sp);
	return rc;
}
