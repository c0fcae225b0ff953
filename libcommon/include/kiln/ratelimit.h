/* ratelimit: GCRA (generic cell rate algorithm) limits in one Redis Lua
 * script, shared by every worker and host; when Redis cannot be reached the
 * decision falls back to an in-process GCRA table so limits still hold,
 * per worker, instead of failing open completely. */
#ifndef KILN_RATELIMIT_H
#define KILN_RATELIMIT_H

#include <stdint.h>

struct kiln_redis;

struct kiln_ratelimit {
	int64_t rate;      /* requests allowed ... */
	int64_t period_ms; /* ... per this period, evenly spaced */
	int64_t burst;     /* requests allowed at once beyond the steady rate (>= 1) */
};

struct kiln_ratelimit_result {
	int allowed;
	int64_t retry_after_ms; /* when not allowed: wait this long (>= 1) */
	int fallback;           /* decided in-process because Redis failed */
};

/* Take one request for key (e.g. "login:ip:203.0.113.9") under rl. r may be
 * NULL (in-process only). Returns 0 with *out filled, or -1 when rl is
 * invalid. Never blocks longer than the Redis command timeout. */
int kiln_ratelimit_take(struct kiln_redis *r, const struct kiln_ratelimit *rl, const char *key,
                        struct kiln_ratelimit_result *out);

#endif
