/* mc: a libmemcached handle per worker. memcached is a cache: any failure
 * is reported to the caller, who falls back to the source of truth, so the
 * behaviors below favour failing fast over waiting for a server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmemcached/memcached.h>

#include "kiln/mc.h"
#include "kiln/util.h"

#define MC_KEY_MAX 250 /* memcached's own limit */
/* memcached reads an expiry above 30 days as an absolute Unix time. */
#define MC_RELATIVE_TTL_MAX   (30 * 24 * 3600)
#define MC_DEFAULT_TIMEOUT_MS 500
#define MC_PING_KEY_TRIES     10000

struct kiln_mc {
	struct kiln_cfg_memcached cfg;
	memcached_st *m;
	uint32_t nservers;
	char (*ping_keys)[24]; /* per server position: a key that hashes to it */
};

static int64_t mc_ms(int64_t configured)
{
	return configured > 0 ? configured : MC_DEFAULT_TIMEOUT_MS;
}

/* Add one "/abs/path", "host:port" or "[v6]:port" entry of len bytes.
 * Returns 0, or -1 when it is malformed or libmemcached refuses it. */
static int mc_add_server(memcached_st *m, const char *s, size_t len)
{
	char entry[KILN_CFG_STR_MAX], host[KILN_CFG_STR_MAX];
	int port;

	if (len == 0 || len >= sizeof(entry))
		return -1;
	memcpy(entry, s, len);
	entry[len] = '\0';
	if (kiln_parse_addr(entry, host, sizeof(host), &port) < 0)
		return -1;
	if (port < 0)
		return memcached_server_add_unix_socket(m, host) == MEMCACHED_SUCCESS ? 0 : -1;
	return memcached_server_add(m, host, (in_port_t)port) == MEMCACHED_SUCCESS ? 0 : -1;
}

/* Add every comma-separated entry of list (spaces around entries allowed).
 * Returns 0, or -1 on an empty list or a bad entry. */
static int mc_add_servers(memcached_st *m, const char *list)
{
	const char *p = list, *end;
	size_t len;
	int n = 0;

	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (mc_add_server(m, p, len) < 0)
			return -1;
		n++;
		p = end ? end + 1 : p + strlen(p);
	}
	return n > 0 ? 0 : -1;
}

/* The failure handling, chosen so that a dead server neither stalls every
 * request nor moves keys around:
 * - SERVER_TIMEOUT_LIMIT 1: the first failed connect or I/O puts the server
 *   "in timeout"; requests for its keys then fail at once, without I/O.
 * - RETRY_TIMEOUT 1 s: libmemcached retries once the clock has moved past
 *   next_retry (whole seconds), i.e. 1-2 s later, so a restarted server is
 *   used again within ~2 s and a dead one costs at most one connect per
 *   worker every 1-2 s.
 * - REMOVE_FAILED_SERVERS 0 (no auto-eject): ejecting re-hashes the dead
 *   server's keys onto the others, and as each worker ejects on its own
 *   schedule, workers would disagree on where a key lives and a delete
 *   (invalidation) could miss the copy another worker still reads. Without
 *   ejection those keys just miss while the server is down.
 * - SERVER_FAILURE_LIMIT 2 only matters with ejection; set for clarity.
 * - NO_BLOCK + POLL_TIMEOUT bound every wait on an open connection;
 *   CONNECT_TIMEOUT bounds the connect; SND/RCV_TIMEOUT back them up at the
 *   socket level. */
static int mc_behaviors(memcached_st *m, const struct kiln_cfg_memcached *cfg)
{
	const struct {
		memcached_behavior_t b;
		uint64_t v;
	} tab[] = {
	    {MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT},
	    {MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1},
	    {MEMCACHED_BEHAVIOR_NO_BLOCK, 1},
	    {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
	    {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)mc_ms(cfg->connect_timeout_ms)},
	    {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)mc_ms(cfg->command_timeout_ms)},
	    {MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)mc_ms(cfg->command_timeout_ms) * 1000},
	    {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)mc_ms(cfg->command_timeout_ms) * 1000},
	    {MEMCACHED_BEHAVIOR_SERVER_TIMEOUT_LIMIT, 1},
	    {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1},
	    {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 2},
	    {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0},
	};
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(tab); i++)
		if (memcached_behavior_set(m, tab[i].b, tab[i].v) != MEMCACHED_SUCCESS)
			return -1;
	return 0;
}

struct kiln_mc *kiln_mc_new(const struct kiln_cfg_memcached *cfg)
{
	struct kiln_mc *mc = calloc(1, sizeof(*mc));

	if (mc == NULL)
		return NULL;
	mc->cfg = *cfg;
	mc->m = memcached_create(NULL);
	if (mc->m == NULL || mc_add_servers(mc->m, cfg->servers) < 0 ||
	    mc_behaviors(mc->m, cfg) < 0)
		goto fail;
	mc->nservers = memcached_server_count(mc->m);
	mc->ping_keys = calloc(mc->nservers, sizeof(*mc->ping_keys));
	if (mc->ping_keys == NULL)
		goto fail;
	return mc;
fail:
	kiln_mc_free(mc);
	return NULL;
}

void kiln_mc_free(struct kiln_mc *mc)
{
	if (mc == NULL)
		return;
	if (mc->m)
		memcached_free(mc->m);
	free(mc->ping_keys);
	free(mc);
}

/* memcached's text protocol takes keys of 1..250 bytes without spaces or
 * control characters; reject anything else before any I/O. */
static int mc_key_ok(const char *key, size_t klen)
{
	size_t i;

	if (key == NULL || klen == 0 || klen > MC_KEY_MAX)
		return 0;
	for (i = 0; i < klen; i++)
		if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] == 0x7f)
			return 0;
	return 1;
}

int kiln_mc_get(struct kiln_mc *mc, const char *key, size_t klen, char **val, size_t *vlen)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t len = 0;
	char *v;

	*val = NULL;
	*vlen = 0;
	if (!mc_key_ok(key, klen))
		return -1;
	v = memcached_get(mc->m, key, klen, &len, &flags, &rc);
	if (rc != MEMCACHED_SUCCESS) {
		free(v);
		return rc == MEMCACHED_NOTFOUND ? 1 : -1;
	}
	/* An empty value comes back as NULL; callers get a real string. */
	if (v == NULL) {
		v = calloc(1, 1);
		if (v == NULL)
			return -1;
		len = 0;
	}
	*val = v;
	*vlen = len;
	return 0;
}

/* The expiry memcached expects for a ttl of ttl_s seconds. */
static time_t mc_expiry(uint32_t ttl_s)
{
	if (ttl_s > MC_RELATIVE_TTL_MAX)
		return time(NULL) + (time_t)ttl_s;
	return (time_t)ttl_s;
}

int kiln_mc_set(struct kiln_mc *mc, const char *key, size_t klen, const void *val, size_t vlen,
                uint32_t ttl_s)
{
	memcached_return_t rc;

	if (!mc_key_ok(key, klen))
		return -1;
	rc = memcached_set(mc->m, key, klen, val, vlen, mc_expiry(ttl_s), 0);
	return rc == MEMCACHED_SUCCESS ? 0 : -1;
}

int kiln_mc_add(struct kiln_mc *mc, const char *key, size_t klen, const void *val, size_t vlen,
                uint32_t ttl_s)
{
	memcached_return_t rc;

	if (!mc_key_ok(key, klen))
		return -1;
	rc = memcached_add(mc->m, key, klen, val, vlen, mc_expiry(ttl_s), 0);
	if (rc == MEMCACHED_SUCCESS)
		return 0;
	/* NOT_STORED over the text protocol, DATA_EXISTS over the binary one. */
	return rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS ? 1 : -1;
}

int kiln_mc_delete(struct kiln_mc *mc, const char *key, size_t klen)
{
	memcached_return_t rc;

	if (!mc_key_ok(key, klen))
		return -1;
	rc = memcached_delete(mc->m, key, klen, 0);
	return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ? 0 : -1;
}

/* A key that consistent hashing sends to server i, so that a get of it is
 * a round trip to that server alone. Found once and kept (no server is
 * ever ejected, so the mapping does not change). Returns NULL if none. */
static const char *mc_ping_key(struct kiln_mc *mc, uint32_t i)
{
	char key[24];
	int n;

	if (mc->ping_keys[i][0])
		return mc->ping_keys[i];
	for (n = 0; n < MC_PING_KEY_TRIES; n++) {
		snprintf(key, sizeof(key), "kiln:ping:%d", n);
		if (memcached_generate_hash(mc->m, key, strlen(key)) == i) {
			kiln_strlcpy(mc->ping_keys[i], key, sizeof(mc->ping_keys[i]));
			return mc->ping_keys[i];
		}
	}
	return NULL;
}

/* "/path", "host:port" or "[v6]:port" of server i, for messages. */
static void mc_server_label(const memcached_st *m, uint32_t i, char *out, size_t outlen)
{
	const memcached_instance_st *inst = memcached_server_instance_by_position(m, i);
	const char *name = inst ? memcached_server_name(inst) : "?";

	if (name[0] == '/')
		snprintf(out, outlen, "%s", name);
	else
		snprintf(out, outlen, strchr(name, ':') ? "[%s]:%u" : "%s:%u", name,
		         inst ? (unsigned)memcached_server_port(inst) : 0u);
}

/* One round trip to server i by the deadline. Returns 0, or -1 with a
 * "<server>: <reason>" message appended to err. */
static int mc_ping_server(struct kiln_mc *mc, uint32_t i, int64_t deadline, char *err,
                          size_t errlen)
{
	const char *key = mc_ping_key(mc, i);
	int64_t left = deadline - kiln_now_ms();
	const char *why = "timed out";
	memcached_return_t rc;
	char label[KILN_CFG_STR_MAX + 16];
	size_t len, used = strlen(err);
	uint32_t flags;
	char *v;

	if (key == NULL)
		why = "no key hashes to it";
	if (key && left > 0) {
		memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)left);
		memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)left);
		v = memcached_get(mc->m, key, strlen(key), &len, &flags, &rc);
		free(v);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND)
			return 0;
		why = memcached_strerror(mc->m, rc);
	}
	mc_server_label(mc->m, i, label, sizeof(label));
	snprintf(err + used, errlen - used, "%s%s: %s", used ? "; " : "memcached: ", label, why);
	return -1;
}

int kiln_mc_ping(struct kiln_mc *mc, int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = kiln_now_ms() + timeout_ms;
	char msg[1024] = "";
	uint32_t i;
	int rc = 0;

	for (i = 0; i < mc->nservers; i++)
		if (mc_ping_server(mc, i, deadline, msg, sizeof(msg)) < 0)
			rc = -1;
	memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	                       (uint64_t)mc_ms(mc->cfg.command_timeout_ms));
	memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	                       (uint64_t)mc_ms(mc->cfg.connect_timeout_ms));
	if (rc < 0 && err && errlen)
		kiln_strlcpy(err, msg, errlen);
	return rc;
}
