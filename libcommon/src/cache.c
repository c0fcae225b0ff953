/* cache: read-through object cache over memcached, namespaced by a counter
 * in Redis (see kiln/cache.h for the protocol).
 *
 * The tombstone is the empty value: every real object is a non-empty
 * serialisation, so a reader tells the two apart by length alone, and
 * kiln_cache_fill refuses an empty value rather than store something that
 * would read as a tombstone.
 *
 * The namespace is re-read at most once a second, so for up to a second
 * after a flush a process still uses the previous namespace: what it fills
 * then is orphaned as soon as it catches up. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "kiln/cache.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "kiln/util.h"

#define CACHE_NS_EVERY_MS 1000

void kiln_cache_init(struct kiln_cache *c, struct kiln_mc *mc, struct kiln_redis *redis,
                     int64_t ttl_ms)
{
	memset(c, 0, sizeof(*c));
	c->redis = redis;
	if (mc == NULL || ttl_ms <= 0)
		return;
	c->mc = mc;
	/* Whole seconds, rounded up: a ttl under a second still caches. */
	if (ttl_ms / 1000 >= (int64_t)UINT32_MAX)
		c->ttl_s = UINT32_MAX;
	else
		c->ttl_s = (uint32_t)((ttl_ms + 999) / 1000);
}

static int cache_off(const struct kiln_cache *c)
{
	return c->mc == NULL || c->ttl_s == 0;
}

/* Re-read the namespace once it is a second old. A failed read keeps the
 * last value and also waits a second, so a dead Redis costs one failed
 * command per second per process, not one per request. A value that is not
 * a non-negative integer counts as a failure. */
static void cache_refresh_ns(struct kiln_cache *c)
{
	int64_t now = kiln_now_ms(), ns;
	char err[128];
	redisReply *r;

	if (c->redis == NULL || (c->ns_read_ms != 0 && now - c->ns_read_ms < CACHE_NS_EVERY_MS))
		return;
	c->ns_read_ms = now;
	r = kiln_redis_command(c->redis, err, sizeof(err), "GET %s", KILN_CACHE_NS_KEY);
	if (r && r->type == REDIS_REPLY_NIL)
		c->ns = 0;
	else if (r && r->type == REDIS_REPLY_STRING &&
	         kiln_parse_int(r->str, 0, INT64_MAX, &ns) == 0)
		c->ns = ns;
	freeReplyObject(r);
}

/* A kind must be non-empty and made of bytes a memcached key may hold
 * (no space, control character or DEL), without ':' (the separator). */
static int cache_kind_ok(const char *kind)
{
	const unsigned char *p = (const unsigned char *)kind;

	if (kind == NULL || *p == '\0')
		return 0;
	for (; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == ':')
			return 0;
	return 1;
}

int kiln_cache_key(struct kiln_cache *c, const char *kind, int64_t id, char *out)
{
	int n;

	if (!cache_kind_ok(kind))
		return -1;
	cache_refresh_ns(c);
	n = snprintf(out, KILN_CACHE_KEY_MAX, "kiln:%lld:%s:%lld", (long long)c->ns, kind,
	             (long long)id);
	if (n < 0 || n >= KILN_CACHE_KEY_MAX)
		return -1;
	return n;
}

int kiln_cache_get(struct kiln_cache *c, const char *kind, int64_t id, char **val, size_t *len)
{
	char key[KILN_CACHE_KEY_MAX];
	int klen, rc;

	*val = NULL;
	*len = 0;
	if (cache_off(c))
		return 1;
	klen = kiln_cache_key(c, kind, id, key);
	if (klen < 0)
		return -1;
	rc = kiln_mc_get(c->mc, key, (size_t)klen, val, len);
	if (rc == 0 && *len == 0) { /* a tombstone */
		free(*val);
		*val = NULL;
		return 1;
	}
	return rc;
}

int kiln_cache_fill(struct kiln_cache *c, const char *kind, int64_t id, const void *val, size_t len)
{
	char key[KILN_CACHE_KEY_MAX];
	int klen;

	if (cache_off(c))
		return 1;
	if (val == NULL || len == 0)
		return -1;
	klen = kiln_cache_key(c, kind, id, key);
	if (klen < 0)
		return -1;
	return kiln_mc_add(c->mc, key, (size_t)klen, val, len, c->ttl_s);
}

int kiln_cache_invalidate(struct kiln_cache *c, const char *kind, int64_t id)
{
	char key[KILN_CACHE_KEY_MAX];
	int klen;

	if (cache_off(c))
		return 0;
	klen = kiln_cache_key(c, kind, id, key);
	if (klen < 0)
		return -1;
	return kiln_mc_set(c->mc, key, (size_t)klen, "", 0, KILN_CACHE_TOMBSTONE_S);
}

int64_t kiln_cache_flush(struct kiln_cache *c)
{
	char err[128];
	redisReply *r;
	int64_t ns = -1;

	if (c->redis == NULL)
		return -1;
	r = kiln_redis_command(c->redis, err, sizeof(err), "INCR %s", KILN_CACHE_NS_KEY);
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
		ns = r->integer;
		c->ns = ns;
		c->ns_read_ms = kiln_now_ms();
	}
	freeReplyObject(r);
	return ns;
}
