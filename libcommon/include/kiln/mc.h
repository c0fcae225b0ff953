/* mc: a memcached handle per worker (libmemcached) over the configured server
 * list with consistent (ketama) hashing and short timeouts. A cache: every
 * failure is reported and survivable. */
#ifndef KILN_MC_H
#define KILN_MC_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/config.h"

struct kiln_mc;

/* A handle for cfg (copied). No I/O. Returns NULL on OOM or a bad server list. */
struct kiln_mc *kiln_mc_new(const struct kiln_cfg_memcached *cfg);
void kiln_mc_free(struct kiln_mc *mc);

/* Get key. Returns 0 on a hit (*val malloc'd, free it), 1 on a miss, -1 on error. */
int kiln_mc_get(struct kiln_mc *mc, const char *key, size_t klen, char **val, size_t *vlen);

/* Set key for ttl_s seconds. Returns 0, or -1 on error. */
int kiln_mc_set(struct kiln_mc *mc, const char *key, size_t klen, const void *val, size_t vlen,
                uint32_t ttl_s);

/* Add key for ttl_s seconds: store it only if absent (memcached add).
 * Returns 0 when stored, 1 when not stored because the key is present, or
 * -1 on error. */
int kiln_mc_add(struct kiln_mc *mc, const char *key, size_t klen, const void *val, size_t vlen,
                uint32_t ttl_s);

/* Delete key. Returns 0 (also when absent), or -1 on error. */
int kiln_mc_delete(struct kiln_mc *mc, const char *key, size_t klen);

/* Check every server answers within timeout_ms. Returns 0, or -1 with err set. */
int kiln_mc_ping(struct kiln_mc *mc, int64_t timeout_ms, char *err, size_t errlen);

#endif
