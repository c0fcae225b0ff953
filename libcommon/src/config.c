/* config: the whole schema is one table (php-fpm's offsetof option tables);
 * one loop applies file lines, environment variables and defaults through it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/buf.h"
#include "kiln/config.h"
#include "kiln/util.h"

#define CFG_LINE_MAX   4096
#define CFG_FILE_MAX   (1024 * 1024)
#define CFG_SECRET_MAX 4096
#define CFG_APP_MAX    31

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_DURATION, CFG_SIZE, CFG_ENUM };

/* A secret also accepts <key>_file and its value never appears in a message.
 * A file-only secret (signing keys) may not be written in the config text or
 * the environment at all; its min is the least number of bytes it holds. */
#define CFG_SECRET    1u
#define CFG_FILE_ONLY 2u

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	size_t offset; /* into struct kiln_config */
	size_t size;   /* of the field; strings hold at most size - 1 bytes */
	int64_t min, max;
	const char *def;
	unsigned flags;
	const char *choices; /* CFG_ENUM: "a|b|c" */
	/* CFG_STR lists: each item checked; returns 0, or -1 with why set */
	int (*check)(const char *item, size_t len, char *why, size_t whylen);
};

static int cfg_check_ip(const char *item, size_t len, char *why, size_t whylen);
static int cfg_check_hostport(const char *item, size_t len, char *why, size_t whylen);
static int cfg_check_name(const char *item, size_t len, char *why, size_t whylen);
static int cfg_check_uri(const char *item, size_t len, char *why, size_t whylen);

#define OFF(f)  offsetof(struct kiln_config, f)
#define SIZE(f) sizeof(((struct kiln_config *)NULL)->f)
#define SEC     1000LL
#define MIN     (60 * SEC)
#define HOUR    (60 * MIN)
#define MB      (1024LL * 1024)
#define GB      (1024 * MB)

/* The schema, one row per key: section, key, field, then min, max and
 * default (numbers), default and flags (strings), or default and choices
 * (enums). Aligned rows read best, so clang-format keeps out. */
/* clang-format off */
#define K_INT(s, k, f, lo, hi, d)  {s, k, CFG_INT, OFF(f), SIZE(f), lo, hi, d, 0, NULL, NULL}
#define K_DUR(s, k, f, lo, hi, d)  {s, k, CFG_DURATION, OFF(f), SIZE(f), lo, hi, d, 0, NULL, NULL}
#define K_SIZE(s, k, f, lo, hi, d) {s, k, CFG_SIZE, OFF(f), SIZE(f), lo, hi, d, 0, NULL, NULL}
#define K_BOOL(s, k, f, d)         {s, k, CFG_BOOL, OFF(f), SIZE(f), 0, 1, d, 0, NULL, NULL}
#define K_STR(s, k, f, d, fl)      {s, k, CFG_STR, OFF(f), SIZE(f), 0, 0, d, fl, NULL, NULL}
#define K_ENUM(s, k, f, d, ch)     {s, k, CFG_ENUM, OFF(f), SIZE(f), 0, 0, d, 0, ch, NULL}
#define K_KEY(s, k, f, lo)         {s, k, CFG_STR, OFF(f), SIZE(f), lo, 0, "", CFG_SECRET | CFG_FILE_ONLY, NULL, NULL}
#define K_LIST(s, k, f, d, chk)    {s, k, CFG_STR, OFF(f), SIZE(f), 0, 0, d, 0, NULL, chk}

static const struct cfg_key cfg_keys[] = {
	K_INT(  "server",    "workers",           server.workers,                0, 64, "0"),
	K_INT(  "server",    "max_requests",      server.max_requests,           0, 1000000000, "0"),
	K_DUR(  "server",    "request_timeout",   server.request_timeout_ms,     0, HOUR, "30s"),
	K_DUR(  "server",    "shutdown_timeout",  server.shutdown_timeout_ms,    0, 10 * MIN, "10s"),
	K_SIZE( "server",    "max_body",          server.max_body,               0, GB, "1M"),
	K_INT(  "server",    "backlog",           server.backlog,                1, 65535, "1024"),
	K_STR(  "server",    "run_dir",           server.run_dir,                "/run/kiln", 0),
	K_STR(  "server",    "cors_origins",      server.cors_origins,           "", 0),
	K_LIST( "server",    "allow_from",        server.allow_from,             "", cfg_check_ip),
	K_ENUM( "log",       "format",            log.format,                    "json", "json|text"),
	K_ENUM( "log",       "level",             log.level,                     "info", "debug|info|warn|error"),
	K_STR(  "log",       "file",              log.file,                      "", 0),
	K_BOOL( "log",       "access",            log.access,                    "off"),
	K_STR(  "database",  "url",               database.url,                  "postgresql:///kiln", 0),
	K_STR(  "database",  "password",          database.password,             "", CFG_SECRET),
	K_STR(  "database",  "replica_url",       database.replica_url,          "", 0),
	K_LIST( "database",  "replica_urls",      database.replica_urls,         "", cfg_check_uri),
	K_DUR(  "database",  "replica_retry",     database.replica_retry_ms,     100, HOUR, "5s"),
	K_DUR(  "database",  "ryw_window",        database.ryw_window_ms,        0, HOUR, "5s"),
	K_DUR(  "database",  "connect_timeout",   database.connect_timeout_ms,   1, 60 * SEC, "2s"),
	K_DUR(  "database",  "statement_timeout", database.statement_timeout_ms, 0, HOUR, "5s"),
	K_STR(  "redis",     "address",           redis.address,                 "127.0.0.1:6379", 0),
	K_STR(  "redis",     "password",          redis.password,                "", CFG_SECRET),
	K_INT(  "redis",     "db",                redis.db,                      0, 15, "0"),
	K_DUR(  "redis",     "connect_timeout",   redis.connect_timeout_ms,      1, 60 * SEC, "250ms"),
	K_DUR(  "redis",     "command_timeout",   redis.command_timeout_ms,      1, 60 * SEC, "250ms"),
	K_LIST( "redis",     "sentinels",         redis.sentinels,               "", cfg_check_hostport),
	K_LIST( "redis",     "sentinel_master",   redis.sentinel_master,         "kiln", cfg_check_name),
	K_STR(  "memcached", "servers",           memcached.servers,             "127.0.0.1:11211", 0),
	K_DUR(  "memcached", "connect_timeout",   memcached.connect_timeout_ms,  1, 60 * SEC, "100ms"),
	K_DUR(  "memcached", "command_timeout",   memcached.command_timeout_ms,  1, 60 * SEC, "100ms"),
	K_DUR(  "health",    "check_timeout",     health.check_timeout_ms,       1, 60 * SEC, "250ms"),
	K_DUR(  "health",    "cache",             health.cache_ms,               0, 60 * SEC, "1s"),
	K_STR(  "health",    "disk_path",         health.disk_path,              "/", 0),
	K_SIZE( "health",    "disk_min_free",     health.disk_min_free,          0, INT64_MAX, "100M"),
	K_SIZE( "health",    "disk_warn_free",    health.disk_warn_free,         0, INT64_MAX, "1G"),
	K_STR(  "auth",      "issuer",            auth.issuer,                   "kiln", 0),
	K_STR(  "auth",      "audience",          auth.audience,                 "kiln", 0),
	K_KEY(  "auth",      "jwt_key",           auth.jwt_key,                  32),
	K_STR(  "auth",      "jwt_key_id",        auth.jwt_key_id,               "k1", 0),
	K_KEY(  "auth",      "jwt_previous_key",  auth.jwt_previous_key,         32),
	K_STR(  "auth",      "jwt_previous_key_id", auth.jwt_previous_key_id,    "", 0),
	K_DUR(  "auth",      "access_ttl",        auth.access_ttl_ms,            10 * SEC, 24 * HOUR, "10m"),
	K_DUR(  "auth",      "refresh_ttl",       auth.refresh_ttl_ms,           MIN, 8760 * HOUR, "720h"),
	K_DUR(  "auth",      "refresh_grace",     auth.refresh_grace_ms,         0, 5 * MIN, "30s"),
	K_DUR(  "auth",      "leeway",            auth.leeway_ms,                0, 60 * SEC, "30s"),
	K_INT(  "auth",      "lockout_threshold", auth.lockout_threshold,        1, 1000, "5"),
	K_DUR(  "auth",      "lockout_base",      auth.lockout_base_ms,          1, HOUR, "1s"),
	K_DUR(  "auth",      "lockout_max",       auth.lockout_max_ms,           1, 24 * HOUR, "15m"),
	K_INT(  "auth",      "lockout_hourly_limit", auth.lockout_hourly_limit,  1, 100000, "100"),
	K_INT(  "auth",      "ip_rate",           auth.ip_rate,                  1, 1000000, "30"),
	K_DUR(  "auth",      "ip_period",         auth.ip_period_ms,             SEC, 24 * HOUR, "60s"),
	K_INT(  "auth",      "ip_burst",          auth.ip_burst,                 1, 1000000, "10"),
	K_SIZE( "auth",      "argon2_memory",     auth.argon2_memory,            MB, GB, "19M"),
	K_INT(  "auth",      "argon2_iterations", auth.argon2_iterations,        1, 100, "2"),
	K_INT(  "auth",      "argon2_parallelism", auth.argon2_parallelism,      1, 16, "1"),
	K_BOOL( "auth",      "common_password_check", auth.common_password_check, "on"),
	K_STR(  "worker",    "queues",            worker.queues,                 "default", 0),
	K_INT(  "worker",    "batch",             worker.batch,                  1, 1000, "10"),
	K_BOOL( "worker",    "listen",            worker.listen,                 "on"),
	K_DUR(  "worker",    "poll_interval",     worker.poll_interval_ms,       10, HOUR, "1s"),
	K_DUR(  "worker",    "heartbeat",         worker.heartbeat_ms,           100, HOUR, "10s"),
	K_DUR(  "worker",    "rescue_after",      worker.rescue_after_ms,        SEC, 24 * HOUR, "60s"),
	K_DUR(  "worker",    "job_timeout",       worker.job_timeout_ms,         100, 24 * HOUR, "60s"),
	K_DUR(  "worker",    "lease_ttl",         worker.lease_ttl_ms,           SEC, HOUR, "30s"),
	K_DUR(  "worker",    "prune_completed_after", worker.prune_completed_after_ms, MIN, 8760 * HOUR, "24h"),
	K_DUR(  "worker",    "prune_discarded_after", worker.prune_discarded_after_ms, MIN, 8760 * HOUR, "168h"),
	K_DUR(  "worker",    "archive_after",     worker.archive_after_ms,       HOUR, 87600 * HOUR, "2160h"),
	K_DUR(  "worker",    "prune_interval",    worker.prune_interval_ms,      MIN, 7 * 24 * HOUR, "1h"),
	K_DUR(  "worker",    "archive_interval",  worker.archive_interval_ms,    MIN, 7 * 24 * HOUR, "1h"),
	K_DUR(  "worker",    "analyze_interval",  worker.analyze_interval_ms,    MIN, 7 * 24 * HOUR, "1h"),
	K_DUR(  "worker",    "leaderboard_interval", worker.leaderboard_interval_ms, MIN, 7 * 24 * HOUR, "1h"),
	K_BOOL( "worker",    "test_kinds",        worker.test_kinds,             "off"),
	K_DUR(  "api",       "cache_ttl",         api.cache_ttl_ms,              0, 24 * HOUR, "5m"),
	K_DUR(  "api",       "max_age",           api.max_age_ms,                0, 24 * HOUR, "0"),
	K_INT(  "api",       "leaderboard_size",  api.leaderboard_size,          10, 100000, "1000"),
	K_KEY(  "metrics",   "token",             metrics.token,                 16),
	K_DUR(  "metrics",   "cache",             metrics.cache_ms,              0, 60 * SEC, "5s"),
	K_DUR(  "metrics",   "query_timeout",     metrics.query_timeout_ms,      1, 60 * SEC, "1s"),
	K_STR(  "backup",    "dir",               backup.dir,                    "/var/lib/kiln/backup", 0),
	K_INT(  "backup",    "keep",              backup.keep,                   1, 10000, "7"),
	K_DUR(  "backup",    "max_age",           backup.max_age_ms,             0, 87600 * HOUR, "720h"),
	K_STR(  "backup",    "redis_rdb",         backup.redis_rdb,              "", 0),
	K_DUR(  "backup",    "redis_wait",        backup.redis_wait_ms,          SEC, HOUR, "60s"),
};
/* clang-format on */

#define CFG_NKEYS KILN_ARRAY_LEN(cfg_keys)

static const char *const cfg_sections[] = {"server",    "log",     "database", "redis",
                                           "memcached", "health",  "auth",     "worker",
                                           "api",       "metrics", "backup"};

/* One [name] of the file; a repeated header continues the same section, so a
 * key set twice is caught even when the two lines are far apart. */
struct cfg_section {
	char name[48];
	const char *schema;          /* table section its keys come from */
	int overlay;                 /* [server.<app>] */
	int applies;                 /* overlay for the app being loaded */
	unsigned line[CFG_NKEYS][2]; /* where key [0] / key_file [1] was set; 0 = not */
};

struct cfg_state {
	struct kiln_config work;    /* copied to the caller only on success */
	struct kiln_config overlay; /* [server.<app>] values for this app */
	unsigned char overlay_set[CFG_NKEYS];
	char files[CFG_NKEYS][KILN_CFG_STR_MAX]; /* *_file paths, read last */
	const char *name;
	const char *app;
	struct cfg_section *sections;
	size_t nsections;
	struct cfg_section *cur;
	unsigned lineno;
	char where[KILN_CFG_STR_MAX + 64]; /* "file:line", or the variable */
	char *err;
	size_t errlen;
};

static int cfg_fail(struct cfg_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int cfg_fail(struct cfg_state *st, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->errlen == 0)
		return -1;
	n = snprintf(st->err, st->errlen, "%s: ", st->where);
	if (n < 0 || (size_t)n >= st->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Text quoted in messages is cut short and made printable: a config line can
 * hold anything, and the message ends up on a terminal or in the journal. */
static const char *cfg_quote(char *out, size_t outlen, const char *s)
{
	size_t i, max = outlen - 4;

	for (i = 0; s[i] && i < max; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static char *cfg_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && strchr(" \t\r\v\f", s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* A bound in the unit a person would write: 3600000 ms is "1h". A lone
 * "1m" reads too much like "1ms", so one minute is shown as "60s". */
static void cfg_fmt_bound(char *out, size_t outlen, const struct cfg_key *k, int64_t v)
{
	static const struct {
		enum cfg_type type;
		const char *unit;
		int64_t mul, min_count;
	} units[] = {{CFG_DURATION, "h", HOUR, 1}, {CFG_DURATION, "m", MIN, 2},
	             {CFG_DURATION, "s", SEC, 1},  {CFG_DURATION, "ms", 1, 1},
	             {CFG_SIZE, "G", GB, 1},       {CFG_SIZE, "M", MB, 1},
	             {CFG_SIZE, "k", 1024, 1}};
	size_t i;

	for (i = 0; v != 0 && i < KILN_ARRAY_LEN(units); i++) {
		if (units[i].type == k->type && v % units[i].mul == 0 &&
		    v / units[i].mul >= units[i].min_count) {
			snprintf(out, outlen, "%lld%s", (long long)(v / units[i].mul),
			         units[i].unit);
			return;
		}
	}
	snprintf(out, outlen, "%lld", (long long)v);
}

/* Why v is not a value of k, into why. */
static void cfg_explain(const struct cfg_key *k, const char *v, char *why, size_t whylen)
{
	static const char *const what[] = {
	    [CFG_INT] = "an integer", [CFG_DURATION] = "a duration", [CFG_SIZE] = "a size"};
	char q[48], lo[32], hi[32];

	cfg_quote(q, sizeof(q), v);
	cfg_fmt_bound(lo, sizeof(lo), k, k->min);
	cfg_fmt_bound(hi, sizeof(hi), k, k->max);
	if (k->type == CFG_BOOL)
		snprintf(why, whylen, "'%s' is not a boolean (on/off, true/false, yes/no, 1/0)", q);
	else if (k->type == CFG_ENUM)
		snprintf(why, whylen, "'%s' is not one of %s", q, k->choices);
	else if (k->max == INT64_MAX)
		snprintf(why, whylen, "'%s' is not %s (e.g. %s)", q, what[k->type], k->def);
	else
		snprintf(why, whylen, "'%s' is not %s in %s..%s", q, what[k->type], lo, hi);
}

static int cfg_enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	for (;;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (n && len == n && memcmp(p, v, n) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

/* Item (len bytes, not terminated) quoted for a message. */
static const char *cfg_quote_item(char *out, size_t outlen, const char *item, size_t len)
{
	char tmp[64];

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, item, len);
	tmp[len] = '\0';
	return cfg_quote(out, outlen, tmp);
}

/* An IPv4 or IPv6 address, as [server] allow_from lists them. */
static int cfg_check_ip(const char *item, size_t len, char *why, size_t whylen)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char a[INET6_ADDRSTRLEN], q[48];

	if (len < sizeof(a)) {
		memcpy(a, item, len);
		a[len] = '\0';
		if (inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1)
			return 0;
	}
	snprintf(why, whylen, "'%s' is not an IPv4 or IPv6 address",
	         cfg_quote_item(q, sizeof(q), item, len));
	return -1;
}

/* A TCP address host:port or [v6]:port (Redis Sentinels). */
static int cfg_check_hostport(const char *item, size_t len, char *why, size_t whylen)
{
	char a[KILN_CFG_STR_MAX], host[KILN_CFG_STR_MAX], q[48];
	int port = -1;

	if (len < sizeof(a)) {
		memcpy(a, item, len);
		a[len] = '\0';
		if (kiln_parse_addr(a, host, sizeof(host), &port) == 0 && port > 0)
			return 0;
	}
	snprintf(why, whylen, "'%s' is not host:port", cfg_quote_item(q, sizeof(q), item, len));
	return -1;
}

/* A PostgreSQL URI (a list of them is split at spaces, so conninfo strings
 * "host=... port=..." cannot be items), short enough for a connection. */
static int cfg_check_uri(const char *item, size_t len, char *why, size_t whylen)
{
	char q[48];

	if ((len > 13 && strncmp(item, "postgresql://", 13) == 0) ||
	    (len > 11 && strncmp(item, "postgres://", 11) == 0)) {
		if (len < KILN_CFG_STR_MAX)
			return 0;
		snprintf(why, whylen, "a URL is longer than %d bytes", KILN_CFG_STR_MAX - 1);
		return -1;
	}
	snprintf(why, whylen, "'%s' is not a postgresql:// URL",
	         cfg_quote_item(q, sizeof(q), item, len));
	return -1;
}

/* One name of printable characters (the Sentinel master name). */
static int cfg_check_name(const char *item, size_t len, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isgraph((unsigned char)item[i])) {
			snprintf(why, whylen, "a name of printable characters without spaces");
			return -1;
		}
	return 0;
}

/* Check each item of a list value (items separated by spaces or tabs;
 * libpq URLs may hold commas) with k->check; a one-name key wants exactly one item. Returns 0,
 * or -1 with why set. */
static int cfg_check_list(const struct cfg_key *k, const char *v, char *why, size_t whylen)
{
	const char *p = v;
	size_t len, n = 0;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t");
		if (k->check(p, len, why, whylen) < 0)
			return -1;
		p += len;
		n++;
	}
	if (k->check == cfg_check_name && n != 1) {
		snprintf(why, whylen, "one name is needed");
		return -1;
	}
	return 0;
}

/* Check v against k and, when base is not NULL, store it in base's field.
 * Returns 0, or -1 with the reason in why. */
static int cfg_store(const struct cfg_key *k, struct kiln_config *base, const char *v, char *why,
                     size_t whylen)
{
	char *field = base ? (char *)base + k->offset : NULL;
	size_t len = strlen(v);
	int64_t num = 0;
	int b = 0, rc = 0;

	switch (k->type) {
	case CFG_STR:
		if (len >= k->size) {
			snprintf(why, whylen, "value is %zu bytes, longer than the %zu allowed",
			         len, k->size - 1);
			return -1;
		}
		if (k->check && cfg_check_list(k, v, why, whylen) < 0)
			return -1;
		break;
	case CFG_ENUM:
		rc = cfg_enum_has(k->choices, v) ? 0 : -1;
		break;
	case CFG_BOOL:
		rc = kiln_parse_bool(v, &b);
		break;
	case CFG_INT:
		rc = kiln_parse_int(v, k->min, k->max, &num);
		break;
	case CFG_DURATION:
		rc = kiln_parse_duration_ms(v, &num) < 0 || num < k->min || num > k->max ? -1 : 0;
		break;
	case CFG_SIZE:
		rc = kiln_parse_size(v, &num) < 0 || num < k->min || num > k->max ? -1 : 0;
		break;
	}
	if (rc < 0) {
		cfg_explain(k, v, why, whylen);
		return -1;
	}
	if (field == NULL)
		return 0;
	if (k->type == CFG_STR || k->type == CFG_ENUM)
		memcpy(field, v, len + 1);
	else if (k->type == CFG_BOOL)
		memcpy(field, &b, sizeof(b));
	else
		memcpy(field, &num, sizeof(num));
	return 0;
}

void kiln_config_defaults(struct kiln_config *cfg)
{
	char why[128];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < CFG_NKEYS; i++)
		cfg_store(&cfg_keys[i], cfg, cfg_keys[i].def, why, sizeof(why));
}

/* Find key (or key_file of a secret) of the schema section. Returns the
 * table index and sets *is_file, or -1. */
static int cfg_find(const char *schema, const char *key, int *is_file)
{
	size_t i, n;

	for (i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (strcmp(k->section, schema) != 0)
			continue;
		n = strlen(k->key);
		*is_file = strncmp(k->key, key, n) == 0 && strcmp(key + n, "_file") == 0;
		if (strcmp(k->key, key) == 0 || (*is_file && (k->flags & CFG_SECRET)))
			return (int)i;
	}
	return -1;
}

static int cfg_app_name_ok(const char *s)
{
	size_t i;

	if (*s < 'a' || *s > 'z')
		return 0;
	for (i = 1; s[i]; i++)
		if (i >= CFG_APP_MAX ||
		    !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

/* The section for header name, created on first sight. Returns it, or NULL
 * with err set. */
static struct cfg_section *cfg_section_get(struct cfg_state *st, const char *name)
{
	struct cfg_section *sec, *grown;
	const char *schema = NULL;
	int overlay = 0;
	char q[48];
	size_t i;

	for (i = 0; i < st->nsections; i++)
		if (strcmp(st->sections[i].name, name) == 0)
			return &st->sections[i];
	for (i = 0; i < KILN_ARRAY_LEN(cfg_sections); i++)
		if (strcmp(cfg_sections[i], name) == 0)
			schema = cfg_sections[i];
	if (schema == NULL && strncmp(name, "server.", 7) == 0) {
		if (!cfg_app_name_ok(name + 7)) {
			cfg_fail(st, "bad program name in [%s] (want [a-z][a-z0-9_-]{0,30})",
			         cfg_quote(q, sizeof(q), name));
			return NULL;
		}
		schema = "server";
		overlay = 1;
	}
	if (schema == NULL) {
		cfg_fail(st, "unknown section [%s]", cfg_quote(q, sizeof(q), name));
		return NULL;
	}
	grown = realloc(st->sections, (st->nsections + 1) * sizeof(*grown));
	if (grown == NULL) {
		cfg_fail(st, "out of memory");
		return NULL;
	}
	st->sections = grown;
	sec = memset(&grown[st->nsections++], 0, sizeof(*sec));
	kiln_strlcpy(sec->name, name, sizeof(sec->name));
	sec->schema = schema;
	sec->overlay = overlay;
	sec->applies = sec->overlay && strcmp(name + 7, st->app) == 0;
	return sec;
}

static int cfg_section_line(struct cfg_state *st, char *s)
{
	size_t n = strlen(s);

	if (n < 2 || s[n - 1] != ']')
		return cfg_fail(st, "unterminated section header (a header is alone on its line)");
	s[n - 1] = '\0';
	st->cur = cfg_section_get(st, cfg_trim(s + 1));
	return st->cur ? 0 : -1;
}

/* Undo the double quotes of a value in place: "..." keeps spaces and '#',
 * with \" and \\ as the only escapes. Returns 0, or -1 with *why set. */
static int cfg_unquote(char *v, const char **why)
{
	char *in = v + 1, *out = v;

	if (*v != '"')
		return 0;
	for (; *in && *in != '"'; in++) {
		if (*in == '\\') {
			in++;
			if (*in != '"' && *in != '\\') {
				*why = *in ? "unknown escape in quoted value (only \\\" and \\\\)"
				           : "unterminated quoted value";
				return -1;
			}
		}
		*out++ = *in;
	}
	if (*in != '"') {
		*why = "unterminated quoted value";
		return -1;
	}
	if (in[1] != '\0') {
		*why = "text after the closing quote (comments go on their own line)";
		return -1;
	}
	*out = '\0';
	return 0;
}

/* key = value of the current section: checks, then stores into the working
 * config, the overlay, or nowhere (another program's [server.<app>]). */
static int cfg_set(struct cfg_state *st, int idx, int is_file, const char *v)
{
	const struct cfg_key *k = &cfg_keys[idx];
	struct cfg_section *sec = st->cur;
	const char *sfx = is_file ? "_file" : "";
	char why[160];
	unsigned other;

	if (sec->line[idx][is_file])
		return cfg_fail(st, "[%s] %s%s: set twice (first on line %u)", sec->name, k->key,
		                sfx, sec->line[idx][is_file]);
	other = sec->line[idx][!is_file];
	if (other)
		return cfg_fail(st, "[%s] %s%s: %s%s is already set on line %u; use one of them",
		                sec->name, k->key, sfx, k->key, is_file ? "" : "_file", other);
	if (!is_file && (k->flags & CFG_FILE_ONLY))
		return cfg_fail(st, "[%s] %s: a key is never written in the config; set %s_file",
		                sec->name, k->key, k->key);
	sec->line[idx][is_file] = st->lineno;
	if (is_file) {
		if (*v == '\0' || strlen(v) >= KILN_CFG_STR_MAX)
			return cfg_fail(st, "[%s] %s_file: path is empty or longer than %d bytes",
			                sec->name, k->key, KILN_CFG_STR_MAX - 1);
		kiln_strlcpy(st->files[idx], v, KILN_CFG_STR_MAX);
		return 0;
	}
	if (sec->overlay && !sec->applies)
		return cfg_store(k, NULL, v, why, sizeof(why)) < 0
		           ? cfg_fail(st, "[%s] %s: %s", sec->name, k->key, why)
		           : 0;
	if (cfg_store(k, sec->overlay ? &st->overlay : &st->work, v, why, sizeof(why)) < 0)
		return cfg_fail(st, "[%s] %s: %s", sec->name, k->key, why);
	if (sec->overlay)
		st->overlay_set[idx] = 1;
	return 0;
}

static int cfg_assign_line(struct cfg_state *st, char *s)
{
	char *eq = strchr(s, '='), *key, *v;
	const char *why = NULL;
	char q[48];
	int idx, is_file;

	if (eq == NULL) {
		s[strcspn(s, " \t")] = '\0';
		return cfg_fail(st, "missing '=' after '%s'", cfg_quote(q, sizeof(q), s));
	}
	*eq = '\0';
	key = cfg_trim(s);
	v = cfg_trim(eq + 1);
	if (*key == '\0')
		return cfg_fail(st, "missing key before '='");
	if (st->cur == NULL)
		return cfg_fail(st, "key '%s' outside any section", cfg_quote(q, sizeof(q), key));
	idx = cfg_find(st->cur->schema, key, &is_file);
	if (idx < 0)
		return cfg_fail(st, "unknown key '%s' in [%s]", cfg_quote(q, sizeof(q), key),
		                st->cur->name);
	if (cfg_unquote(v, &why) < 0)
		return cfg_fail(st, "[%s] %s: %s", st->cur->name, key, why);
	return cfg_set(st, idx, is_file, v);
}

static int cfg_line(struct cfg_state *st, char *line)
{
	char *s = cfg_trim(line);

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return cfg_section_line(st, s);
	return cfg_assign_line(st, s);
}

static int cfg_parse_text(struct cfg_state *st, const char *text, size_t len)
{
	char line[CFG_LINE_MAX + 1];
	size_t pos = 0, n;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3; /* a UTF-8 byte order mark from a Windows editor */
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);

		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl != NULL);
		st->lineno++;
		snprintf(st->where, sizeof(st->where), "%s:%u", st->name, st->lineno);
		if (n && start[n - 1] == '\r')
			n--;
		if (n > CFG_LINE_MAX)
			return cfg_fail(st, "line is longer than %d bytes", CFG_LINE_MAX);
		if (memchr(start, '\0', n))
			return cfg_fail(st, "NUL byte in line");
		memcpy(line, start, n);
		line[n] = '\0';
		if (cfg_line(st, line) < 0)
			return -1;
	}
	return 0;
}

/* [server.<app>] wins over [server] wherever the two stand in the file. */
static void cfg_apply_overlay(struct cfg_state *st)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (st->overlay_set[i])
			memcpy((char *)&st->work + cfg_keys[i].offset,
			       (char *)&st->overlay + cfg_keys[i].offset, cfg_keys[i].size);
}

static int cfg_env_name(char *out, size_t outlen, const struct cfg_key *k, const char *sfx)
{
	int n = snprintf(out, outlen, "KILN_%s_%s%s", k->section, k->key, sfx);
	char *p;

	if (n < 0 || (size_t)n >= outlen)
		return -1;
	for (p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return 0;
}

/* KILN_<SECTION>_<KEY> for every key (and _FILE for secrets). Setting a
 * secret from the environment replaces how the file gave it. */
static int cfg_apply_env(struct cfg_state *st)
{
	char name[96], fname[96], why[160];
	const char *v, *fv;
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (cfg_env_name(name, sizeof(name), k, "") < 0 ||
		    cfg_env_name(fname, sizeof(fname), k, "_FILE") < 0)
			continue;
		v = getenv(name);
		fv = (k->flags & CFG_SECRET) ? getenv(fname) : NULL;
		if (v && fv) {
			kiln_strlcpy(st->where, "environment", sizeof(st->where));
			return cfg_fail(st, "%s and %s are both set; use one of them", name, fname);
		}
		kiln_strlcpy(st->where, fv ? fname : name, sizeof(st->where));
		if (v && (k->flags & CFG_FILE_ONLY))
			return cfg_fail(st, "a key is never given in the environment; set %s",
			                fname);
		if (fv && (*fv == '\0' || strlen(fv) >= KILN_CFG_STR_MAX))
			return cfg_fail(st, "[%s] %s_file: path is empty or longer than %d bytes",
			                k->section, k->key, KILN_CFG_STR_MAX - 1);
		if (fv)
			kiln_strlcpy(st->files[i], fv, KILN_CFG_STR_MAX);
		if (v && cfg_store(k, &st->work, v, why, sizeof(why)) < 0)
			return cfg_fail(st, "[%s] %s: %s", k->section, k->key, why);
		if (v)
			st->files[i][0] = '\0';
	}
	return 0;
}

/* A relative *_file path is a systemd credential name when
 * $CREDENTIALS_DIRECTORY is set (LoadCredential=), else it sits beside the
 * config file. */
static int cfg_secret_path(struct kiln_buf *out, const char *file, const char *cfg_path)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *slash = cfg_path ? strrchr(cfg_path, '/') : NULL;

	if (file[0] == '/')
		return kiln_buf_adds(out, file);
	if (dir && *dir)
		return kiln_buf_printf(out, "%s/%s", dir, file);
	if (slash)
		return kiln_buf_printf(out, "%.*s/%s", (int)(slash - cfg_path), cfg_path, file);
	return kiln_buf_adds(out, file);
}

static int cfg_read_secret(struct cfg_state *st, const struct cfg_key *k, const char *file,
                           const char *cfg_path)
{
	struct kiln_buf path;
	size_t len = 0;
	char *data;
	int rc = 0;

	kiln_buf_init(&path);
	snprintf(st->where, sizeof(st->where), "%s: [%s] %s_file", st->name, k->section, k->key);
	if (cfg_secret_path(&path, file, cfg_path) < 0) {
		kiln_buf_free(&path);
		return cfg_fail(st, "out of memory");
	}
	data = kiln_read_file(path.data, CFG_SECRET_MAX, &len);
	if (data == NULL)
		rc = cfg_fail(st, "cannot read '%s': %s", path.data, strerror(errno));
	else if (len >= k->size || memchr(data, '\0', len))
		rc = cfg_fail(st, "'%s' holds more than %zu bytes or a NUL byte", path.data,
		              k->size - 1);
	else if ((int64_t)len < k->min)
		rc = cfg_fail(st, "'%s' holds %zu bytes; at least %lld are needed", path.data, len,
		              (long long)k->min);
	else
		memcpy((char *)&st->work + k->offset, data, len + 1);
	if (data) {
		explicit_bzero(data, len);
		free(data);
	}
	kiln_buf_free(&path);
	return rc;
}

static int cfg_read_secrets(struct cfg_state *st, const char *cfg_path)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (st->files[i][0] &&
		    cfg_read_secret(st, &cfg_keys[i], st->files[i], cfg_path) < 0)
			return -1;
	return 0;
}

static struct cfg_state *cfg_begin(const char *name, const char *app, char *err, size_t errlen)
{
	struct cfg_state *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		if (errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	kiln_config_defaults(&st->work);
	st->name = name && *name ? name : "(config)";
	st->app = app ? app : "";
	st->err = err;
	st->errlen = errlen;
	kiln_strlcpy(st->where, st->name, sizeof(st->where));
	kiln_strlcpy(st->work.path, name ? name : "", sizeof(st->work.path));
	kiln_strlcpy(st->work.app, st->app, sizeof(st->work.app));
	return st;
}

/* Hand the result over only on success, so a failed reload (SIGHUP) leaves
 * the running config untouched; the state held secrets, so wipe it. */
static int cfg_end(struct cfg_state *st, struct kiln_config *cfg, int rc)
{
	if (rc == 0)
		*cfg = st->work;
	free(st->sections);
	explicit_bzero(st, sizeof(*st));
	free(st);
	return rc;
}

int kiln_config_parse(struct kiln_config *cfg, const char *name, const char *text, size_t len,
                      const char *app, char *err, size_t errlen)
{
	struct cfg_state *st = cfg_begin(name, app, err, errlen);
	int rc;

	if (st == NULL)
		return -1;
	rc = cfg_parse_text(st, text, len);
	if (rc == 0)
		cfg_apply_overlay(st);
	return cfg_end(st, cfg, rc);
}

int kiln_config_load(struct kiln_config *cfg, const char *path, const char *app, char *err,
                     size_t errlen)
{
	struct cfg_state *st = cfg_begin(path, app, err, errlen);
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	if (st == NULL)
		return -1;
	if (path && *path) {
		text = kiln_read_file(path, CFG_FILE_MAX, &len);
		if (text == NULL)
			rc = cfg_fail(st, "cannot read: %s", strerror(errno));
	}
	if (rc == 0 && text)
		rc = cfg_parse_text(st, text, len);
	if (rc == 0)
		cfg_apply_overlay(st);
	if (rc == 0)
		rc = cfg_apply_env(st);
	if (rc == 0)
		rc = cfg_read_secrets(st, path);
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	return cfg_end(st, cfg, rc);
}
