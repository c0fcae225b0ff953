/* cache: the object cache over memcached, shared by kiln-api (read-through)
 * and kiln-worker (invalidation after grading). A cache: every failure is
 * survivable, and losing memcached costs speed, never correctness.
 *
 * Keys are "kiln:<ns>:<kind>:<id>" (kind: "exercise", "progress", ...).
 * ns is a namespace number kept in Redis under KILN_CACHE_NS_KEY; bumping it
 * (kiln_cache_flush, kiln-admin's cache flush) orphans every cached object
 * at once on every host. Each process re-reads ns at most once per second
 * and keeps the last value it saw while Redis is unreachable (0 before).
 *
 * Invalidation without races: a writer, after its commit, replaces the
 * object by a tombstone for KILN_CACHE_TOMBSTONE_S seconds
 * (kiln_cache_invalidate); a reader that missed fills the key with `add`,
 * which fails while the tombstone stands. So a reader that fetched the old
 * row before the commit cannot put it back afterwards. The tombstone is the
 * empty value, which no real object is; readers take it for a miss. */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct kiln_mc;
struct kiln_redis;

#define KILN_CACHE_NS_KEY      "kiln:cache:ns"
#define KILN_CACHE_KEY_MAX     96
#define KILN_CACHE_TOMBSTONE_S 2

struct kiln_cache {
	struct kiln_mc *mc;       /* NULL = caching off */
	struct kiln_redis *redis; /* NULL = namespace 0 */
	uint32_t ttl_s;           /* 0 = caching off */
	int64_t ns;
	int64_t ns_read_ms; /* monotonic time ns was last read; 0 = never */
};

/* Set up c (no I/O). ttl_ms 0, or mc NULL, turns caching off: get misses,
 * fill/invalidate do nothing. */
void kiln_cache_init(struct kiln_cache *c, struct kiln_mc *mc, struct kiln_redis *redis,
                     int64_t ttl_ms);

/* Write the key of (kind, id) in the current namespace into out
 * (KILN_CACHE_KEY_MAX bytes). Returns its length, or -1 when kind is too
 * long, empty, or has a byte a memcached key cannot hold (space, control
 * character, DEL) or ':'. */
int kiln_cache_key(struct kiln_cache *c, const char *kind, int64_t id, char *out);

/* Get (kind, id). Returns 0 on a hit (*val malloc'd, NUL-terminated, free
 * it; *len its length), 1 on a miss (also a tombstone, or caching off),
 * -1 when memcached failed (treat as a miss). */
int kiln_cache_get(struct kiln_cache *c, const char *kind, int64_t id, char **val, size_t *len);

/* After a miss: store val unless the key exists (memcached add). Returns 0
 * when stored, 1 when not (present, tombstone, caching off), -1 on error
 * (also for an empty val: the tombstone is the empty value). */
int kiln_cache_fill(struct kiln_cache *c, const char *kind, int64_t id, const void *val,
                    size_t len);

/* After a committed change: replace (kind, id) by a tombstone. Returns 0, or
 * -1 when memcached failed (the entry then expires after ttl at most). */
int kiln_cache_invalidate(struct kiln_cache *c, const char *kind, int64_t id);

/* Bump the namespace in Redis: every cached object is orphaned. Returns the
 * new namespace, or -1 when Redis failed. */
int64_t kiln_cache_flush(struct kiln_cache *c);

#endif
