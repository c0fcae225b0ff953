/* config: one INI file for every kiln program, KILN_* environment overrides,
 * *_file secret indirection. The whole schema is a table in config.c: every
 * program validates every key, so `kiln-<app> -t` checks the whole file. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define KILN_CFG_STR_MAX  512
#define KILN_CFG_LIST_MAX 2048 /* lists of URLs */

/* [server] and [server.<app>]: the prefork master of a FastCGI app. */
struct kiln_cfg_server {
	int64_t workers;                     /* 0 = 2 x cores */
	int64_t max_requests;                /* recycle a worker after this many; 0 = never */
	int64_t request_timeout_ms;          /* kill a worker whose request runs longer */
	int64_t shutdown_timeout_ms;         /* SIGTERM drain bound */
	int64_t max_body;                    /* bytes; larger request bodies get 413 */
	int64_t backlog;                     /* listen(2) backlog for --listen sockets */
	char run_dir[KILN_CFG_STR_MAX];      /* scoreboards: <run_dir>/<app>.stats */
	char cors_origins[KILN_CFG_STR_MAX]; /* space-separated origins; "" = no CORS */
	char allow_from[KILN_CFG_STR_MAX];   /* TCP peers allowed (IP addresses); "" = any */
};

/* [log] */
struct kiln_cfg_log {
	char format[16];             /* "json" | "text" */
	char level[16];              /* "debug" | "info" | "warn" | "error" */
	char file[KILN_CFG_STR_MAX]; /* empty = stderr */
	int access;                  /* one line per request */
};

/* [database] */
struct kiln_cfg_database {
	char url[KILN_CFG_STR_MAX];           /* libpq conninfo or URI */
	char password[KILN_CFG_STR_MAX];      /* secret; also password_file */
	char replica_url[KILN_CFG_STR_MAX];   /* one replica; joins replica_urls */
	char replica_urls[KILN_CFG_LIST_MAX]; /* space-separated; public reads round-robin */
	int64_t replica_retry_ms;             /* a failed replica is left out this long */
	int64_t ryw_window_ms;                /* a writer reads from the primary this long */
	int64_t connect_timeout_ms;
	int64_t statement_timeout_ms;
};

/* [redis] */
struct kiln_cfg_redis {
	char address[KILN_CFG_STR_MAX];  /* host:port or /path/to/socket */
	char password[KILN_CFG_STR_MAX]; /* secret; also password_file */
	int64_t db;
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
	char sentinels[KILN_CFG_STR_MAX]; /* space-separated host:port; "" = use address */
	char sentinel_master[128];        /* the master's name in Sentinel */
};

/* [memcached] */
struct kiln_cfg_memcached {
	char servers[KILN_CFG_STR_MAX]; /* "host:port,host:port" or "/path/sock" */
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
};

/* [health] */
struct kiln_cfg_health {
	int64_t check_timeout_ms; /* per dependency */
	int64_t cache_ms;         /* results shared across workers this long */
	char disk_path[KILN_CFG_STR_MAX];
	int64_t disk_min_free;  /* bytes; below = fail */
	int64_t disk_warn_free; /* bytes; below = warn */
};

/* [auth]: tokens, lockout, per-IP limits, password hashing. */
struct kiln_cfg_auth {
	char issuer[128];
	char audience[128];
	char jwt_key[KILN_CFG_STR_MAX]; /* from jwt_key_file only, >= 32 bytes */
	char jwt_key_id[64];
	char jwt_previous_key[KILN_CFG_STR_MAX]; /* optional, from jwt_previous_key_file */
	char jwt_previous_key_id[64];
	int64_t access_ttl_ms;
	int64_t refresh_ttl_ms;
	int64_t refresh_grace_ms;  /* a rotated refresh token still yields its successor */
	int64_t leeway_ms;         /* clock skew allowed on exp/nbf/iat */
	int64_t lockout_threshold; /* failures before the delay starts */
	int64_t lockout_base_ms;   /* first delay; doubles per further failure */
	int64_t lockout_max_ms;
	int64_t lockout_hourly_limit; /* failures per hour before locking for the hour */
	int64_t ip_rate;              /* requests per ip_period per client address */
	int64_t ip_period_ms;
	int64_t ip_burst;
	int64_t argon2_memory; /* bytes */
	int64_t argon2_iterations;
	int64_t argon2_parallelism;
	int common_password_check; /* reject passwords found by cracklib */
};

/* [worker]: kiln-worker, the durable job queue's executor daemon. Its number
 * of executor processes and its drain bound are the prefork master's
 * [server.worker] workers and shutdown_timeout. */
struct kiln_cfg_worker {
	char queues[256];         /* comma-separated queues to work, "default" */
	int64_t batch;            /* jobs fetched per round trip */
	int listen;               /* wake on LISTEN/NOTIFY (off behind a transaction pooler) */
	int64_t poll_interval_ms; /* fallback polling */
	int64_t heartbeat_ms;     /* running jobs are touched this often */
	int64_t rescue_after_ms;  /* a running job with an older heartbeat is rescued */
	int64_t job_timeout_ms;   /* default per-kind timeout */
	int64_t lease_ttl_ms;     /* leader lease for periodic jobs */
	int64_t prune_completed_after_ms;
	int64_t prune_discarded_after_ms;
	int64_t archive_after_ms; /* submissions older than this move to the archive */
	/* How often each periodic task runs (one run per interval slot). */
	int64_t prune_interval_ms;
	int64_t archive_interval_ms;
	int64_t analyze_interval_ms;
	int64_t leaderboard_interval_ms;
	int test_kinds; /* enable the test-only job kinds (fail, sleep) */
};

/* [api]: kiln-api. */
struct kiln_cfg_api {
	int64_t cache_ttl_ms;     /* memcached lifetime of cached reads; 0 = no caching */
	int64_t max_age_ms;       /* Cache-Control max-age of public reads */
	int64_t leaderboard_size; /* users kept in the Redis leaderboard */
};

/* [metrics]: kiln-metrics. */
struct kiln_cfg_metrics {
	char token[KILN_CFG_STR_MAX]; /* from token_file only; "" = no bearer token needed */
	int64_t cache_ms;             /* job-queue figures kept per worker this long */
	int64_t query_timeout_ms;     /* bound of each job-queue statement */
};

/* [backup]: kilnctl backup and restore. */
struct kiln_cfg_backup {
	char dir[KILN_CFG_STR_MAX];       /* where dumps, checksums and rdb copies go */
	int64_t keep;                     /* newest dumps kept; older ones are removed */
	int64_t max_age_ms;               /* dumps older than this are removed; 0 = no limit */
	char redis_rdb[KILN_CFG_STR_MAX]; /* Redis's dump.rdb to copy; "" = no Redis copy */
	int64_t redis_wait_ms;            /* how long BGSAVE may take */
};

struct kiln_config {
	char path[KILN_CFG_STR_MAX]; /* file it was loaded from */
	char app[32];                /* program it was loaded for */
	struct kiln_cfg_server server;
	struct kiln_cfg_log log;
	struct kiln_cfg_database database;
	struct kiln_cfg_redis redis;
	struct kiln_cfg_memcached memcached;
	struct kiln_cfg_health health;
	struct kiln_cfg_auth auth;
	struct kiln_cfg_worker worker;
	struct kiln_cfg_api api;
	struct kiln_cfg_metrics metrics;
	struct kiln_cfg_backup backup;
};

/* Fill cfg with the defaults of every key. */
void kiln_config_defaults(struct kiln_config *cfg);

/* Load cfg for program `app` ("health", "api", ...): defaults, then the INI
 * file at path (NULL or "" = no file), then [server.<app>] overlays [server],
 * then KILN_<SECTION>_<KEY> environment variables, then *_file secrets
 * (relative paths resolve against $CREDENTIALS_DIRECTORY when it is set).
 * Returns 0, or -1 with a message naming file, line, section and key in err
 * (e.g. "kiln.conf:12: [server] workers: 'abc' is not an integer in 0..64").
 * An unknown section or key is an error; so is any out-of-range value. */
int kiln_config_load(struct kiln_config *cfg, const char *path, const char *app, char *err,
                     size_t errlen);

/* Parse INI text already in memory (name is used in messages). Same rules as
 * kiln_config_load minus the environment and the reading of *_file secrets
 * (checked here, read by kiln_config_load only). On failure cfg is left
 * unchanged. Returns 0, or -1 with err set.
 * Used by kiln_config_load, the unit tests and the fuzz harness. */
int kiln_config_parse(struct kiln_config *cfg, const char *name, const char *text, size_t len,
                      const char *app, char *err, size_t errlen);

#endif
