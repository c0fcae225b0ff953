/* test_replicas: the replica set of libcommon db (round-robin, a failed
 * member left out for replica_retry, then re-probed by the next read) and
 * the [database] keys that feed it, against a real PostgreSQL (servers.h).
 * The "replicas" are that one server reached under different
 * application_names; a member dies and comes back by removing and putting
 * back a symlink to the server's socket in its own socket directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kiln/config.h"
#include "kiln/db.h"
#include "kiln/stats.h"
#include "servers.h"

#define WHO_SQL "SELECT current_setting('application_name')"

static struct {
	char alt_dir[160];  /* socket directory of the member that dies */
	char alt_link[200]; /* its .s.PGSQL.5432, a symlink to the real socket */
	char real_sock[200];
} T;

static int link_up(void)
{
	unlink(T.alt_link);
	return symlink(T.real_sock, T.alt_link);
}

static int group_teardown(void **state)
{
	(void)state;
	srv_cleanup();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (srv_init("test_replicas") < 0 || srv_start(SRV_PG) < 0) {
		group_teardown(NULL);
		return -1;
	}
	snprintf(T.alt_dir, sizeof(T.alt_dir), "%s/alt", SRV.dir);
	snprintf(T.alt_link, sizeof(T.alt_link), "%s/.s.PGSQL.5432", T.alt_dir);
	snprintf(T.real_sock, sizeof(T.real_sock), "%s/.s.PGSQL.5432", SRV.pgsock);
	if (mkdir(T.alt_dir, 0755) < 0 || link_up() < 0) {
		group_teardown(NULL);
		return -1;
	}
	return 0;
}

/* A database config whose replica_urls name a (the server's socket) and b
 * (the symlinked one), told apart by application_name. */
static void replicas_cfg(struct kiln_cfg_database *cfg, int64_t retry_ms)
{
	srv_db_cfg(cfg);
	snprintf(cfg->replica_urls, sizeof(cfg->replica_urls),
	         "postgresql://kiln@/postgres?host=%s&application_name=a "
	         "postgresql://kiln@/postgres?host=%s&application_name=b",
	         SRV.pgsock, T.alt_dir);
	cfg->replica_retry_ms = retry_ms;
	cfg->connect_timeout_ms = 1000;
}

/* Which member answered one read: 'a' or 'b', or 0 when none did. */
static char read_who(struct kiln_db_set *s, int *failed)
{
	char err[256] = "";
	PGresult *res = kiln_db_set_query(s, NULL, WHO_SQL, 0, NULL, 0, failed, err, sizeof(err));
	char who = 0;

	if (res) {
		who = PQgetvalue(res, 0, 0)[0];
		PQclear(res);
	}
	return who;
}

static void test_reads_alternate_between_healthy_replicas(void **state)
{
	struct kiln_cfg_database cfg;
	struct kiln_db_set *s;
	char first, who[6];
	int i;

	(void)state;
	assert_int_equal(link_up(), 0);
	replicas_cfg(&cfg, 5000);
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	assert_int_equal(kiln_db_set_count(s), 2);
	for (i = 0; i < 6; i++)
		who[i] = read_who(s, NULL);
	first = who[0];
	assert_true(first == 'a' || first == 'b');
	for (i = 1; i < 6; i++)
		assert_int_not_equal(who[i], who[i - 1]);
	kiln_db_set_free(s);
}

static void test_failed_replica_is_skipped_then_reprobed(void **state)
{
	struct kiln_cfg_database cfg;
	struct kiln_stats_db bstats = {0};
	struct kiln_db_set *s;
	struct kiln_db *b;
	int i, failed = 0;

	(void)state;
	assert_int_equal(link_up(), 0);
	replicas_cfg(&cfg, 400);
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	b = kiln_db_set_member(s, 1);
	kiln_db_set_stats(b, &bstats);
	unlink(T.alt_link); /* b is down */

	/* Every read is served, by a: the one that lands on b moves on. */
	for (i = 0; i < 4; i++)
		assert_int_equal(read_who(s, &failed), 'a');
	assert_true(kiln_db_resting(b));
	assert_int_equal(kiln_db_set_ready(s), 1);
	/* b was tried once; resting, it is not even tried again. */
	assert_int_equal(bstats.connect_failures, 1);

	/* b is back, but is left out until replica_retry has passed ... */
	assert_int_equal(link_up(), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(read_who(s, NULL), 'a');
	assert_int_equal(bstats.connects + bstats.connect_failures, 1);
	/* ... then the next read that comes its way probes it, and it serves. */
	srv_msleep(450);
	assert_false(kiln_db_resting(b));
	for (i = 0; i < 2; i++)
		read_who(s, NULL);
	assert_int_equal(bstats.connects, 1);
	assert_int_equal(kiln_db_connects(b), 1);
	assert_int_equal(kiln_db_set_ready(s), 2);
	kiln_db_set_free(s);
}

static void test_all_resting_means_no_replica_read(void **state)
{
	struct kiln_cfg_database cfg;
	struct kiln_db_set *s;
	char err[256] = "";
	int failed = 0;

	(void)state;
	srv_db_cfg(&cfg);
	snprintf(cfg.replica_url, sizeof(cfg.replica_url),
	         "postgresql://kiln@/postgres?host=%s/nowhere", SRV.dir);
	cfg.replica_retry_ms = 5000;
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	assert_null(kiln_db_set_query(s, NULL, WHO_SQL, 0, NULL, 0, &failed, err, sizeof(err)));
	assert_int_equal(failed, KILN_DB_UNAVAILABLE);
	assert_null(kiln_db_set_next(s));
	assert_null(kiln_db_set_query(s, NULL, WHO_SQL, 0, NULL, 0, &failed, err, sizeof(err)));
	assert_non_null(strstr(err, "resting"));
	kiln_db_set_free(s);
}

static void test_refused_statement_rests_the_replica(void **state)
{
	struct kiln_cfg_database cfg;
	struct kiln_db_set *s;
	char err[256] = "";
	int failed = 0;

	(void)state;
	assert_int_equal(link_up(), 0);
	replicas_cfg(&cfg, 5000);
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	/* Refused on both (no such table): each is tried once, both rest. */
	assert_null(kiln_db_set_query(s, NULL, "SELECT * FROM no_such_table", 0, NULL, 0, &failed,
	                              err, sizeof(err)));
	assert_int_equal(failed, KILN_DB_REFUSED);
	assert_int_equal(kiln_db_set_ready(s), 0);
	kiln_db_set_free(s);
}

static void test_primary_never_rests(void **state)
{
	struct kiln_db *db = srv_db_new();
	char err[256];

	(void)state;
	assert_null(kiln_db_query(db, NULL, "SELECT * FROM no_such_table", 0, NULL, 0, NULL, err,
	                          sizeof(err)));
	assert_false(kiln_db_resting(db));
	kiln_db_free(db);
}

static void test_replica_url_joins_replica_urls_once(void **state)
{
	struct kiln_cfg_database cfg;
	struct kiln_db_set *s;

	(void)state;
	replicas_cfg(&cfg, 5000);
	snprintf(cfg.replica_url, sizeof(cfg.replica_url),
	         "postgresql://kiln@/postgres?host=%s&application_name=b", T.alt_dir);
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	assert_int_equal(kiln_db_set_count(s), 2); /* b is named twice */
	kiln_db_set_free(s);
	memset(&cfg, 0, sizeof(cfg));
	s = kiln_db_set_new(&cfg);
	assert_non_null(s);
	assert_int_equal(kiln_db_set_count(s), 0);
	assert_null(kiln_db_set_next(s));
	kiln_db_set_free(s);
}

/* The [database] and [redis] keys of the scale-out contract (docs/scaling.md). */
static int parse(struct kiln_config *cfg, const char *text, char *err, size_t errlen)
{
	return kiln_config_parse(cfg, "t.conf", text, strlen(text), "api", err, errlen);
}

static void test_scaling_keys_parse_and_check(void **state)
{
	struct kiln_config cfg;
	char err[512];

	(void)state;
	kiln_config_defaults(&cfg);
	assert_int_equal(cfg.database.replica_retry_ms, 5000);
	assert_int_equal(cfg.database.ryw_window_ms, 5000);
	assert_string_equal(cfg.redis.sentinel_master, "kiln");
	assert_string_equal(cfg.server.allow_from, "");
	assert_int_equal(parse(&cfg,
	                       "[database]\nreplica_urls = postgresql://r1/kiln "
	                       "postgres://r2,r3/kiln\nreplica_retry = 2s\nryw_window = 0\n"
	                       "[redis]\nsentinels = 10.0.0.5:26379 [fd00::6]:26379\n"
	                       "sentinel_master = main\n[server]\nallow_from = 10.0.0.2 fd00::2\n",
	                       err, sizeof(err)),
	                 0);
	assert_int_equal(cfg.database.replica_retry_ms, 2000);
	assert_int_equal(cfg.database.ryw_window_ms, 0);
	assert_string_equal(cfg.redis.sentinel_master, "main");
	assert_int_equal(
	    parse(&cfg, "[database]\nreplica_urls = host=r1 dbname=kiln\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "replica_urls: 'host=r1' is not a postgresql:// URL"));
	assert_int_equal(
	    parse(&cfg, "[server]\nallow_from = 10.0.0.2 lb.example\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'lb.example' is not an IPv4 or IPv6 address"));
	assert_int_equal(parse(&cfg, "[redis]\nsentinels = 10.0.0.5\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'10.0.0.5' is not host:port"));
	assert_int_equal(parse(&cfg, "[redis]\nsentinel_master = a b\n", err, sizeof(err)), -1);
	assert_int_equal(parse(&cfg, "[database]\nreplica_retry = 10ms\n", err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_alternate_between_healthy_replicas),
	    cmocka_unit_test(test_failed_replica_is_skipped_then_reprobed),
	    cmocka_unit_test(test_all_resting_means_no_replica_read),
	    cmocka_unit_test(test_refused_statement_rests_the_replica),
	    cmocka_unit_test(test_primary_never_rests),
	    cmocka_unit_test(test_replica_url_joins_replica_urls_once),
	    cmocka_unit_test(test_scaling_keys_parse_and_check),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
