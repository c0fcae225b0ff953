/* ratelimit: GCRA (generic cell rate algorithm) in one Redis Lua script, with
 * an in-process GCRA table as the fallback when Redis fails.
 *
 * The semantics, in both places. A limit of `rate` per `period_ms` with
 * burst b has the emission interval T = period_ms * 1000 / rate microseconds
 * (integer division). Each key stores one number, its theoretical arrival
 * time tat. A request at time now computes
 *
 *	new_tat  = max(tat, now) + T
 *	allow_at = new_tat - T * b
 *
 * and is allowed when now >= allow_at (tat := new_tat), rejected otherwise
 * with retry_after = allow_at - now, rounded up to whole ms (tat unchanged:
 * rejected requests cost nothing). So an idle key takes b requests at once,
 * then one per T, and after being idle for T * b it is back to a full burst.
 * A stored tat expires when it reaches now, which is exactly when it stops
 * mattering.
 *
 * Redis: the script reads Redis's own clock (TIME), so every worker on every
 * host agrees on now; Redis >= 5 replicates the script's effects rather than
 * the script, which is what makes a write after TIME legal. Keys are
 * "kiln:rl:<key>" holding tat in microseconds as a decimal string. A key
 * holds one limit's state: two limits need two keys.
 *
 * Fallback: when Redis is unreachable, times out or answers with anything
 * but the expected reply (a script error, OOM, READONLY ...), the request is
 * decided by a per-process table on the monotonic clock and marked
 * fallback. The caller is never failed because of Redis. The table is per
 * worker, so while Redis is down a client spread over N workers gets up to
 * N times the limit, and the state starts fresh on each switch between Redis
 * and the table. Workers are single-threaded: the table has no lock. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "kiln/ratelimit.h"
#include "kiln/redis.h"
#include "kiln/util.h"

#define RL_PREFIX  "kiln:rl:"
#define RL_KEY_MAX 200
/* T * b, the span a key remembers, is kept within a year: the script's
 * numbers are Lua doubles, exact only up to 2^53 (now + span must fit). */
#define RL_SPAN_MAX_US (366LL * 86400 * 1000000)
/* Table size (a power of two) and how many slots one key may use. A full
 * window evicts its earliest tat: the key least restricted right now. */
#define RL_SLOTS 4096
#define RL_PROBE 16

static struct kiln_redis_script rl_script = {
    .source = "local t = redis.call('TIME')\n"
              "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
              "local T = tonumber(ARGV[1])\n"
              "local b = tonumber(ARGV[2])\n"
              "local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now\n"
              "if tat < now then tat = now end\n"
              "local new_tat = tat + T\n"
              "local allow_at = new_tat - T * b\n"
              "if now < allow_at then\n"
              "  return {0, math.ceil((allow_at - now) / 1000)}\n"
              "end\n"
              /* %.0f: integer text, whatever number format redis.call uses. */
              "redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',\n"
              "  string.format('%.0f', math.ceil((new_tat - now) / 1000)))\n"
              "return {1, 0}\n",
};

struct rl_slot {
	uint64_t hash;
	int64_t tat_us; /* monotonic; a slot whose tat has passed is free */
};

static struct rl_slot rl_table[RL_SLOTS];
static uint64_t rl_seed[2];
static int rl_seeded;

/* One GCRA step (see the top of the file). Returns 1 with *new_tat set when
 * allowed, 0 with *retry_ms set when not. */
static int rl_gcra(int64_t tat, int64_t now, int64_t t_us, int64_t burst, int64_t *new_tat,
                   int64_t *retry_ms)
{
	int64_t allow_at;

	*new_tat = (tat > now ? tat : now) + t_us;
	allow_at = *new_tat - t_us * burst;
	if (now >= allow_at)
		return 1;
	*retry_ms = (allow_at - now + 999) / 1000;
	return 0;
}

/* T in microseconds from rl. Returns 0, or -1 when rl is out of range. */
static int rl_interval(const struct kiln_ratelimit *rl, int64_t *t_us)
{
	if (rl == NULL || rl->rate < 1 || rl->period_ms < 1 || rl->burst < 1 ||
	    rl->period_ms > RL_SPAN_MAX_US / 1000)
		return -1;
	*t_us = rl->period_ms * 1000 / rl->rate;
	if (*t_us < 1 || rl->burst > RL_SPAN_MAX_US / *t_us)
		return -1;
	return 0;
}

#define RL_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void rl_sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = RL_ROTL(v[1], 13) ^ v[0];
	v[0] = RL_ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = RL_ROTL(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = RL_ROTL(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = RL_ROTL(v[1], 17) ^ v[2];
	v[2] = RL_ROTL(v[2], 32);
}

/* SipHash-2-4 under a per-process random seed: keys come from clients, and
 * a crafted collision with someone else's key would share their limit. */
static uint64_t rl_hash(const char *key)
{
	uint64_t v[4] = {rl_seed[0] ^ 0x736f6d6570736575ULL, rl_seed[1] ^ 0x646f72616e646f6dULL,
	                 rl_seed[0] ^ 0x6c7967656e657261ULL, rl_seed[1] ^ 0x7465646279746573ULL};
	size_t len = strlen(key), i, j;
	uint64_t m;

	for (i = 0; i <= len; i += 8) {
		m = i + 8 > len ? (uint64_t)len << 56 : 0;
		for (j = 0; j < 8 && i + j < len; j++)
			m |= (uint64_t)(unsigned char)key[i + j] << (8 * j);
		v[3] ^= m;
		rl_sipround(v);
		rl_sipround(v);
		v[0] ^= m;
		if (i + 8 > len)
			break;
	}
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		rl_sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The slot for hash within its probe window: the key's own slot, else the
 * first free one, else the one with the earliest tat (evicted). */
static struct rl_slot *rl_slot_find(uint64_t hash, int64_t now)
{
	struct rl_slot *free_slot = NULL, *oldest = NULL, *s;
	size_t i;

	for (i = 0; i < RL_PROBE; i++) {
		s = &rl_table[(hash + i) & (RL_SLOTS - 1)];
		if (s->hash == hash && s->tat_us > now)
			return s;
		if (s->tat_us <= now) {
			if (free_slot == NULL)
				free_slot = s;
		} else if (oldest == NULL || s->tat_us < oldest->tat_us) {
			oldest = s;
		}
	}
	return free_slot ? free_slot : oldest;
}

/* Decide in this process (see the top of the file). */
static void rl_local(const char *key, int64_t t_us, int64_t burst,
                     struct kiln_ratelimit_result *out)
{
	int64_t now = kiln_now_ns() / 1000, new_tat, tat;
	struct rl_slot *s;
	uint64_t hash;

	if (!rl_seeded) {
		/* Without random bytes the hash is still a hash, just guessable. */
		if (RAND_bytes((unsigned char *)rl_seed, sizeof(rl_seed)) != 1)
			memset(rl_seed, 0, sizeof(rl_seed));
		rl_seeded = 1;
	}
	hash = rl_hash(key);
	s = rl_slot_find(hash, now);
	tat = s->hash == hash && s->tat_us > now ? s->tat_us : now;
	out->allowed = rl_gcra(tat, now, t_us, burst, &new_tat, &out->retry_after_ms);
	if (out->allowed) {
		s->hash = hash;
		s->tat_us = new_tat;
	}
	out->fallback = 1;
}

/* Fill out from the script's {allowed, retry_after_ms}. Returns 0, or -1
 * when the reply has another shape (an error reply included). */
static int rl_parse(const redisReply *reply, struct kiln_ratelimit_result *out)
{
	const redisReply *a, *w;

	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
		return -1;
	a = reply->element[0];
	w = reply->element[1];
	if (a->type != REDIS_REPLY_INTEGER || w->type != REDIS_REPLY_INTEGER ||
	    (a->integer != 0 && a->integer != 1) || (a->integer == 0 && w->integer < 1))
		return -1;
	out->allowed = (int)a->integer;
	out->retry_after_ms = a->integer ? 0 : w->integer;
	out->fallback = 0;
	return 0;
}

/* Decide in Redis. Returns 0 with *out filled, or -1 when Redis could not
 * decide (the reason is dropped: the caller only needs a decision, and the
 * redis handle's backoff already limits the cost of a dead server). */
static int rl_redis(struct kiln_redis *r, const char *key, int64_t t_us, int64_t burst,
                    struct kiln_ratelimit_result *out)
{
	char rkey[sizeof(RL_PREFIX) + RL_KEY_MAX], targ[24], barg[24], err[256];
	const char *argv[] = {rkey, targ, barg};
	redisReply *reply;
	int rc;

	if ((size_t)snprintf(rkey, sizeof(rkey), "%s%s", RL_PREFIX, key) >= sizeof(rkey))
		return -1;
	snprintf(targ, sizeof(targ), "%lld", (long long)t_us);
	snprintf(barg, sizeof(barg), "%lld", (long long)burst);
	reply = kiln_redis_eval(r, &rl_script, 1, 3, argv, err, sizeof(err));
	if (reply == NULL)
		return -1;
	rc = rl_parse(reply, out);
	freeReplyObject(reply);
	return rc;
}

int kiln_ratelimit_take(struct kiln_redis *r, const struct kiln_ratelimit *rl, const char *key,
                        struct kiln_ratelimit_result *out)
{
	int64_t t_us;

	if (out == NULL || key == NULL || strlen(key) > RL_KEY_MAX || rl_interval(rl, &t_us) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	if (r != NULL && rl_redis(r, key, t_us, rl->burst, out) == 0)
		return 0;
	rl_local(key, t_us, rl->burst, out);
	return 0;
}
