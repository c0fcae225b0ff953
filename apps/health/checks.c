/* Dependency checks for /health/ready, shared across the workers through
 * anonymous shared memory so a storm of probes costs one round of checks per
 * cache period, not one per probe. A seqlock guards the results; a
 * compare-and-swap on `refresher` elects the one worker that refreshes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "kiln/db.h"
#include "kiln/mc.h"
#include "kiln/redis.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "health.h"

#define WAIT_STEP_US 2000

struct health_shared {
	uint32_t seq;      /* odd while being written */
	int32_t refresher; /* pid of the worker refreshing, 0 if none */
	int64_t refresh_started_ms;
	int64_t checked_ms; /* monotonic time of the results, 0 = none yet */
	int32_t started;    /* readiness passed once */
	struct health_report report;
};

const unsigned long health_shared_size = sizeof(struct health_shared);

const char *health_status_name(int status)
{
	static const char *const names[] = {"pass", "warn", "fail"};

	return status >= HEALTH_PASS && status <= HEALTH_FAIL ? names[status] : "fail";
}

static struct health_check *add_check(struct health_report *r, const char *key, const char *type,
                                      const char *unit)
{
	struct health_check *c = &r->checks[r->n++];

	memset(c, 0, sizeof(*c));
	kiln_strlcpy(c->key, key, sizeof(c->key));
	kiln_strlcpy(c->component_type, type, sizeof(c->component_type));
	kiln_strlcpy(c->observed_unit, unit, sizeof(c->observed_unit));
	c->time_ms = kiln_wall_ms();
	return c;
}

/* One timed dependency check. down_status is what a failure means. */
static void check_dep(struct health_report *r, const char *key, int down_status,
                      int (*ping)(int64_t timeout, char *err, size_t errlen))
{
	const struct kiln_config *cfg = kiln_server_config();
	struct health_check *c = add_check(r, key, "datastore", "ms");
	int64_t t0 = kiln_now_ns();
	char err[160] = "";

	if (ping(cfg->health.check_timeout_ms, err, sizeof(err)) == 0) {
		c->status = HEALTH_PASS;
	} else {
		c->status = down_status;
		kiln_strlcpy(c->output, err[0] ? err : "unreachable", sizeof(c->output));
	}
	c->observed_value = (double)(kiln_now_ns() - t0) / 1e6;
}

static int ping_db(int64_t t, char *err, size_t n)
{
	return kiln_db_ping(kiln_server_db(), t, err, n);
}

static int ping_redis(int64_t t, char *err, size_t n)
{
	return kiln_redis_ping(kiln_server_redis(), t, err, n);
}

static int ping_mc(int64_t t, char *err, size_t n)
{
	struct kiln_mc *mc = kiln_server_mc();

	if (mc == NULL) {
		snprintf(err, n, "bad memcached server list");
		return -1;
	}
	return kiln_mc_ping(mc, t, err, n);
}

static void check_disk(struct health_report *r)
{
	const struct kiln_config *cfg = kiln_server_config();
	struct health_check *c = add_check(r, "disk:free", "system", "bytes");
	struct statvfs vfs;
	double free_bytes;

	if (statvfs(cfg->health.disk_path, &vfs) < 0) {
		c->status = HEALTH_FAIL;
		snprintf(c->output, sizeof(c->output), "%.120s: %s", cfg->health.disk_path,
		         strerror(errno));
		return;
	}
	free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
	c->observed_value = free_bytes;
	c->status = HEALTH_PASS;
	if (free_bytes < (double)cfg->health.disk_min_free)
		c->status = HEALTH_FAIL;
	else if (free_bytes < (double)cfg->health.disk_warn_free)
		c->status = HEALTH_WARN;
	if (c->status != HEALTH_PASS)
		snprintf(c->output, sizeof(c->output), "%.120s: %.0f bytes free",
		         cfg->health.disk_path, free_bytes);
}

/* PostgreSQL and Redis hold state the apps cannot work without: fail.
 * memcached is only a cache: warn. */
static void run_checks(struct health_report *r)
{
	int i;

	memset(r, 0, sizeof(*r));
	check_dep(r, "postgresql:responseTime", HEALTH_FAIL, ping_db);
	check_dep(r, "redis:responseTime", HEALTH_FAIL, ping_redis);
	check_dep(r, "memcached:responseTime", HEALTH_WARN, ping_mc);
	check_disk(r);
	r->status = HEALTH_PASS;
	for (i = 0; i < r->n; i++)
		if (r->checks[i].status > r->status)
			r->status = r->checks[i].status;
}

/* Copy the shared results; returns their age in ms, or -1 when none. */
static int64_t read_shared(struct health_shared *sh, struct health_report *r)
{
	uint32_t s1, s2;
	int64_t checked;

	do {
		s1 = __atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE);
		memcpy(r, &sh->report, sizeof(*r));
		checked = __atomic_load_n(&sh->checked_ms, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&sh->seq, __ATOMIC_RELAXED);
	} while ((s1 & 1) || s1 != s2);
	return checked ? kiln_now_ms() - checked : -1;
}

static void write_shared(struct health_shared *sh, const struct health_report *r)
{
	__atomic_fetch_add(&sh->seq, 1, __ATOMIC_ACQ_REL);
	memcpy(&sh->report, r, sizeof(*r));
	__atomic_store_n(&sh->checked_ms, kiln_now_ms(), __ATOMIC_RELAXED);
	if (r->status != HEALTH_FAIL)
		__atomic_store_n(&sh->started, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->seq, 1, __ATOMIC_ACQ_REL);
}

/* Become the refresher, also when the previous one died or hung. */
static int try_elect(struct health_shared *sh, int64_t stale_after_ms)
{
	int32_t holder = __atomic_load_n(&sh->refresher, __ATOMIC_ACQUIRE);
	int64_t since = kiln_now_ms() - __atomic_load_n(&sh->refresh_started_ms, __ATOMIC_RELAXED);

	if (holder != 0 && kill(holder, 0) == 0 && since < stale_after_ms)
		return 0;
	if (!__atomic_compare_exchange_n(&sh->refresher, &holder, (int32_t)getpid(), 0,
	                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	__atomic_store_n(&sh->refresh_started_ms, kiln_now_ms(), __ATOMIC_RELAXED);
	return 1;
}

void health_get(struct health_report *r)
{
	const struct kiln_config *cfg = kiln_server_config();
	struct health_shared *sh = kiln_server_shared();
	int64_t budget = 4 * cfg->health.check_timeout_ms + 500, waited = 0, age;

	for (;;) {
		age = read_shared(sh, r);
		if (age >= 0 && age <= cfg->health.cache_ms)
			return;
		if (try_elect(sh, budget)) {
			run_checks(r);
			write_shared(sh, r);
			__atomic_store_n(&sh->refresher, 0, __ATOMIC_RELEASE);
			return;
		}
		/* Someone else is refreshing: stale results are better than
		 * piling onto the dependencies; with none yet, wait for theirs. */
		if (age >= 0 || waited >= budget * 1000) {
			if (age < 0)
				run_checks(r);
			return;
		}
		usleep(WAIT_STEP_US);
		waited += WAIT_STEP_US;
	}
}

int health_started(void)
{
	struct health_shared *sh = kiln_server_shared();

	return __atomic_load_n(&sh->started, __ATOMIC_RELAXED);
}
