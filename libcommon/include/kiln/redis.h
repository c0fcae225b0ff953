/* redis: one Redis connection per worker (hiredis), opened lazily with
 * connect and command timeouts, re-opened after failure with backoff. With
 * [redis] sentinels set, each connect asks the Sentinels for the master
 * (SENTINEL get-master-addr-by-name sentinel_master) instead of using
 * address; a connection error or a READONLY reply makes the next connect
 * ask again, so a failover is followed without a restart. */
#ifndef KILN_REDIS_H
#define KILN_REDIS_H

#include <stdint.h>
#include <hiredis/hiredis.h>

#include "kiln/config.h"

struct kiln_redis;

/* Maintenance mode: while this key exists, kiln-api refuses writes with 503
 * (its value, at most 200 bytes, is the message shown); kiln-admin sets it. */
#define KILN_MAINTENANCE_KEY "kiln:maintenance"

/* A handle for cfg (copied). No I/O. Returns NULL on OOM. */
struct kiln_redis *kiln_redis_new(const struct kiln_cfg_redis *cfg);
void kiln_redis_free(struct kiln_redis *r);

/* Sentinels asked at most (the rest of [redis] sentinels is ignored). */
#define KILN_REDIS_MAX_SENTINELS 16

/* Run a command (hiredis printf-like format). Returns the reply
 * (freeReplyObject it; a REDIS_REPLY_ERROR reply is returned as is), or NULL
 * with err set when Redis is unreachable or timed out (the connection is
 * dropped; the next call reconnects once the backoff, 50 ms doubling to 2 s,
 * has passed). A READONLY reply drops the connection too; with Sentinels the
 * command is sent once more at once to the master they name now. */
redisReply *kiln_redis_command(struct kiln_redis *r, char *err, size_t errlen, const char *fmt,
                               ...);

/* Check PING answers PONG within timeout_ms (connecting if needed, ignoring
 * backoff). Returns 0, or -1 with err set. */
int kiln_redis_ping(struct kiln_redis *r, int64_t timeout_ms, char *err, size_t errlen);

/* A Lua script run by EVALSHA. source is the script text; sha (its SHA1,
 * lowercase hex) is filled in on first use, so a static initializer
 * { source } is enough. */
struct kiln_redis_script {
	const char *source;
	char sha[41];
};

#define KILN_REDIS_EVAL_MAX_ARGS 32

/* Run script s by EVALSHA with argv = nkeys keys then the arguments (argc
 * strings in all), sending the source once by EVAL when Redis answers
 * NOSCRIPT; READONLY as for kiln_redis_command. Returns the reply as kiln_redis_command does (an
 * error reply is returned as is), or NULL with err set when Redis is unreachable or timed out
 * (connection dropped, backoff as above) or when nkeys/argc are out of range (0 <= nkeys <= argc <=
 * KILN_REDIS_EVAL_MAX_ARGS). */
redisReply *kiln_redis_eval(struct kiln_redis *r, struct kiln_redis_script *s, int nkeys, int argc,
                            const char **argv, char *err, size_t errlen);

#endif
