/* kilnctl backup / restore: pg_dump in custom format into [backup] dir,
 * named kiln-YYYYMMDDTHHMMSSZ.dump (UTC) with a sha256sum(1)-style .sha256
 * beside it, retention by count and age, an optional copy of Redis's RDB
 * snapshot; restore verifies the checksum, refuses a non-empty target
 * unless --force, runs pg_restore in one transaction and reports row counts.
 * pg_dump and pg_restore run by fork/exec with an argv (no shell); the
 * password reaches them as PGPASSWORD in their environment, never in argv
 * (the conninfo they get is rebuilt without it). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kiln/buf.h"
#include "kiln/db.h"
#include "kiln/redis.h"
#include "kiln/util.h"
#include "ctl.h"

#define BK_PREFIX     "kiln-"
#define BK_STAMP_LEN  16 /* YYYYMMDDTHHMMSSZ */
#define BK_SHA_HEX    65
#define BK_PATH_MAX   (KILN_CFG_STR_MAX + 128)
#define BK_SUFFIX_MAX 100 /* kiln-<stamp>-N.dump when a second holds several */

/* A connection target: conninfo without the password, and the password. */
struct bk_target {
	char conninfo[2 * KILN_CFG_STR_MAX];
	char password[KILN_CFG_STR_MAX];
	char dbname[KILN_CFG_STR_MAX]; /* for messages */
};

/* One backup found in the directory, for retention. */
struct bk_entry {
	char stem[64]; /* kiln-<stamp>[-N] */
	time_t when;
	int seq;
};

/* ---------------------------------------------------------------- helpers */

/* Append key='value' to b, quoting as libpq wants. Returns 0, or -1 on OOM. */
static int bk_conninfo_add(struct kiln_buf *b, const char *key, const char *val)
{
	const char *p;

	if (kiln_buf_printf(b, "%s%s='", b->len ? " " : "", key) < 0)
		return -1;
	for (p = val; *p; p++) {
		if ((*p == '\'' || *p == '\\') && kiln_buf_addc(b, '\\') < 0)
			return -1;
		if (kiln_buf_addc(b, *p) < 0)
			return -1;
	}
	return kiln_buf_addc(b, '\'');
}

/* Fill t from url (conninfo or URI): every option but the password, dbname
 * replaced by dbname when not NULL; the password from the url, else
 * fallback_pw. Returns 0, or -1 with a message printed (never the url: it
 * may hold the password). */
static int bk_target_from(struct bk_target *t, const char *url, const char *dbname,
                          const char *fallback_pw)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL), *o;
	struct kiln_buf b;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (opts == NULL) {
		ctl_err("the database url is not a valid conninfo string or URI");
		return -1;
	}
	kiln_buf_init(&b);
	kiln_strlcpy(t->password, fallback_pw, sizeof(t->password));
	if (dbname)
		kiln_strlcpy(t->dbname, dbname, sizeof(t->dbname));
	for (o = opts; rc == 0 && o->keyword; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
			kiln_strlcpy(t->password, o->val, sizeof(t->password));
		else if (strcmp(o->keyword, "dbname") == 0 && dbname)
			continue;
		else
			rc = bk_conninfo_add(&b, o->keyword, o->val);
		if (strcmp(o->keyword, "dbname") == 0 && dbname == NULL)
			kiln_strlcpy(t->dbname, o->val, sizeof(t->dbname));
	}
	if (rc == 0 && dbname)
		rc = bk_conninfo_add(&b, "dbname", dbname);
	PQconninfoFree(opts);
	if (rc == 0 && b.len >= sizeof(t->conninfo))
		rc = -1;
	if (rc == 0)
		memcpy(t->conninfo, b.len ? b.data : "", b.len + 1);
	else
		ctl_err("database conninfo too long or out of memory");
	kiln_buf_free(&b);
	if (t->dbname[0] == '\0')
		kiln_strlcpy(t->dbname, "(default database)", sizeof(t->dbname));
	return rc;
}

static void bk_target_wipe(struct bk_target *t)
{
	explicit_bzero(t, sizeof(*t));
}

/* Run argv[0] (looked up in PATH) with argv, PGPASSWORD=password in its
 * environment when password is not empty, and wait for it. Returns 0 when
 * it exited 0, else -1 after printing why. */
static int bk_exec(char *const argv[], const char *password)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ctl_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (*password && setenv("PGPASSWORD", password, 1) < 0)
			_exit(126);
		execvp(argv[0], argv);
		fprintf(stderr, "kilnctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			ctl_err("waitpid: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		ctl_err("%s exited with status %d", argv[0], WEXITSTATUS(status));
	else
		ctl_err("%s was killed by signal %d", argv[0], WTERMSIG(status));
	return -1;
}

/* SHA-256 of the file at path as lowercase hex. Returns 0, or -1 with a
 * message printed. */
static int bk_sha256_file(const char *path, char hex[BK_SHA_HEX])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;
	int ok;

	ok = ctx && f && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n) == 1;
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	if (!ok)
		ctl_err("cannot checksum %s: %s", path, f ? "read error" : strerror(errno));
	for (i = 0; ok && i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (f)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* fsync the file or directory at path. Returns 0, or -1 with errno set. */
static int bk_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write "<sha>  <name of path>\n" to path.sha256 (atomically), as
 * sha256sum(1) does. Returns 0, or -1 with a message printed. */
static int bk_write_sum(const char *path, const char *sha)
{
	char sum[BK_PATH_MAX], tmp[BK_PATH_MAX + 16], line[BK_PATH_MAX + 80];
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int fd, n, ok;

	snprintf(sum, sizeof(sum), "%s.sha256", path);
	n = snprintf(line, sizeof(line), "%s  %s\n", sha, base);
	fd = kiln_tmpfile_beside(sum, 0600, tmp, sizeof(tmp));
	if (fd < 0 || n < 0 || (size_t)n >= sizeof(line)) {
		ctl_err("cannot write %s: %s", sum, fd < 0 ? strerror(errno) : "name too long");
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return -1;
	}
	ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
	ok = close(fd) == 0 && ok && rename(tmp, sum) == 0;
	if (!ok) {
		ctl_err("cannot write %s: %s", sum, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Is name "kiln-<stamp>[-N]<ext>"? Fills e (stem, time, seq). */
static int bk_parse_name(const char *name, const char *ext, struct bk_entry *e)
{
	size_t plen = strlen(BK_PREFIX), len = strlen(name), elen = strlen(ext), stem;
	const char *p = name + plen + BK_STAMP_LEN;
	struct tm tm = {0};
	int64_t seq = 0;
	char *end;

	if (len < plen + BK_STAMP_LEN + elen || strncmp(name, BK_PREFIX, plen) != 0 ||
	    strcmp(name + len - elen, ext) != 0)
		return 0;
	end = strptime(name + plen, "%Y%m%dT%H%M%SZ", &tm);
	if (end != p)
		return 0;
	stem = len - elen;
	if (p < name + stem) {
		char num[8];
		size_t n = (size_t)(name + stem - p) - 1;

		if (*p != '-' || n == 0 || n >= sizeof(num))
			return 0;
		memcpy(num, p + 1, n);
		num[n] = '\0';
		if (kiln_parse_int(num, 1, BK_SUFFIX_MAX, &seq) < 0)
			return 0;
	}
	if (stem >= sizeof(e->stem))
		return 0;
	memcpy(e->stem, name, stem);
	e->stem[stem] = '\0';
	e->when = timegm(&tm);
	e->seq = (int)seq;
	return 1;
}

/* ---------------------------------------------------------------- retention */

/* Newest first. */
static int bk_entry_cmp(const void *a, const void *b)
{
	const struct bk_entry *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? 1 : -1;
	return y->seq - x->seq;
}

static void bk_remove_stem(const char *dir, const char *stem)
{
	static const char *const exts[] = {".dump", ".dump.sha256", ".rdb", ".rdb.sha256"};
	char path[BK_PATH_MAX];
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(exts); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, stem, exts[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			ctl_err("cannot remove %s: %s", path, strerror(errno));
	}
	printf("removed %s/%s.dump\n", dir, stem);
}

/* Keep the newest `keep` dumps, and of those the ones younger than max_age
 * (the newest always). Returns 0, or -1 when dir cannot be read. */
static int bk_retention(const char *dir, int64_t keep, int64_t max_age_ms)
{
	struct bk_entry *list = NULL, *grown, e;
	size_t n = 0, cap = 0, i;
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		ctl_err("cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!bk_parse_name(de->d_name, ".dump", &e))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			grown = realloc(list, cap * sizeof(*list));
			if (grown == NULL) {
				free(list);
				closedir(d);
				ctl_err("out of memory");
				return -1;
			}
			list = grown;
		}
		list[n++] = e;
	}
	closedir(d);
	if (n)
		qsort(list, n, sizeof(*list), bk_entry_cmp);
	for (i = 1; i < n; i++)
		if ((int64_t)i >= keep ||
		    (max_age_ms > 0 && (int64_t)(now - list[i].when) * 1000 > max_age_ms))
			bk_remove_stem(dir, list[i].stem);
	free(list);
	return 0;
}

/* ---------------------------------------------------------------- backup */

/* Move tmp to dir/kiln-<stamp>[-N]<ext> without replacing anything (link,
 * then unlink): two backups in one second get -1, -2, ... Writes the name
 * used to out. Returns 0, or -1 with a message printed. */
static int bk_publish(const char *tmp, const char *dir, const char *stamp, const char *ext,
                      char *out, size_t outlen)
{
	int i;

	for (i = 0; i <= BK_SUFFIX_MAX; i++) {
		int n = i ? snprintf(out, outlen, "%s/" BK_PREFIX "%s-%d%s", dir, stamp, i, ext)
		          : snprintf(out, outlen, "%s/" BK_PREFIX "%s%s", dir, stamp, ext);

		if (n < 0 || (size_t)n >= outlen) {
			ctl_err("backup path too long");
			return -1;
		}
		if (link(tmp, out) == 0) {
			unlink(tmp);
			return 0;
		}
		if (errno != EEXIST) {
			ctl_err("cannot create %s: %s", out, strerror(errno));
			return -1;
		}
	}
	ctl_err("more than %d backups within one second in %s", BK_SUFFIX_MAX, dir);
	return -1;
}

/* Wait until Redis reports no BGSAVE running. Returns 0, or -1 (timeout,
 * Redis error) with a message printed. */
static int bk_redis_idle(struct kiln_redis *r, int64_t deadline, int *last_ok)
{
	char err[256];

	for (;;) {
		redisReply *rep = kiln_redis_command(r, err, sizeof(err), "INFO persistence");
		int busy;

		if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
			ctl_err("redis INFO: %s", rep ? "unexpected reply" : err);
			if (rep)
				freeReplyObject(rep);
			return -1;
		}
		busy = strstr(rep->str, "rdb_bgsave_in_progress:1") != NULL;
		*last_ok = strstr(rep->str, "rdb_last_bgsave_status:ok") != NULL;
		freeReplyObject(rep);
		if (!busy)
			return 0;
		if (kiln_now_ms() > deadline) {
			ctl_err("redis BGSAVE still running after redis_wait");
			return -1;
		}
		usleep(100 * 1000);
	}
}

/* BGSAVE, wait for it, copy [backup] redis_rdb beside the dump. Returns 0,
 * or -1 with a message printed. */
static int bk_redis(const struct kiln_config *cfg, const char *stem_path)
{
	int64_t deadline = kiln_now_ms() + cfg->backup.redis_wait_ms;
	struct kiln_redis *r = kiln_redis_new(&cfg->redis);
	char err[256], tmp[BK_PATH_MAX + 16], out[BK_PATH_MAX], sha[BK_SHA_HEX];
	int last_ok = 0, rc = -1, fd = -1, in = -1;
	redisReply *rep = NULL;
	char buf[65536];
	ssize_t n = 0;

	if (r == NULL || bk_redis_idle(r, deadline, &last_ok) < 0)
		goto out;
	rep = kiln_redis_command(r, err, sizeof(err), "BGSAVE");
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		ctl_err("redis BGSAVE: %s", rep ? rep->str : err);
		goto out;
	}
	if (bk_redis_idle(r, deadline, &last_ok) < 0)
		goto out;
	if (!last_ok) {
		ctl_err("redis BGSAVE failed (rdb_last_bgsave_status); see Redis's log");
		goto out;
	}
	snprintf(out, sizeof(out), "%s.rdb", stem_path);
	in = open(cfg->backup.redis_rdb, O_RDONLY | O_CLOEXEC);
	fd = in < 0 ? -1 : kiln_tmpfile_beside(out, 0600, tmp, sizeof(tmp));
	if (in < 0 || fd < 0) {
		ctl_err("cannot copy %s: %s", cfg->backup.redis_rdb, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (n < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, out) < 0) {
		ctl_err("cannot copy %s to %s: %s", cfg->backup.redis_rdb, out, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		fd = -1;
		goto out;
	}
	fd = -1;
	if (bk_sha256_file(out, sha) < 0 || bk_write_sum(out, sha) < 0)
		goto out;
	printf("redis %s (sha256 %s)\n", out, sha);
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	if (in >= 0)
		close(in);
	kiln_redis_free(r);
	return rc;
}

/* pg_dump into dir, checksum, publish. Writes the dump's path to out.
 * Returns 0, or -1 with a message printed. */
static int bk_dump(const struct kiln_config *cfg, const char *dir, const char *stamp, char *out,
                   size_t outlen)
{
	char tmp[BK_PATH_MAX], file_arg[BK_PATH_MAX + 8], db_arg[2 * KILN_CFG_STR_MAX + 16];
	char sha[BK_SHA_HEX];
	struct bk_target t;
	struct stat st;
	int rc;

	if (bk_target_from(&t, cfg->database.url, NULL, cfg->database.password) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s/." BK_PREFIX "%s.dump.partial", dir, stamp);
	snprintf(file_arg, sizeof(file_arg), "--file=%s", tmp);
	snprintf(db_arg, sizeof(db_arg), "--dbname=%s", t.conninfo);
	{
		char *const argv[] = {
		    "pg_dump", "--format=custom", "--no-password", file_arg, db_arg, NULL};

		unlink(tmp);
		rc = bk_exec(argv, t.password);
	}
	bk_target_wipe(&t);
	explicit_bzero(db_arg, sizeof(db_arg));
	if (rc == 0 && (chmod(tmp, 0600) < 0 || bk_fsync_path(tmp) < 0)) {
		ctl_err("cannot sync %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (rc == 0)
		rc = bk_sha256_file(tmp, sha);
	if (rc == 0)
		rc = bk_publish(tmp, dir, stamp, ".dump", out, outlen);
	if (rc < 0) {
		unlink(tmp);
		return -1;
	}
	if (bk_write_sum(out, sha) < 0 || bk_fsync_path(dir) < 0) {
		ctl_err("cannot finish %s", out);
		return -1;
	}
	printf("backup %s (%lld bytes, sha256 %s)\n", out,
	       stat(out, &st) == 0 ? (long long)st.st_size : -1LL, sha);
	return 0;
}

int ctl_backup(struct ctl *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
	                                         {NULL, 0, NULL, 0}};
	const char *usage = "backup [--dir DIR]", *dir = NULL;
	char stamp[BK_STAMP_LEN + 1], path[BK_PATH_MAX], stem[BK_PATH_MAX];
	time_t now = time(NULL);
	struct tm tm;
	int c;

	while ((c = getopt_long(argc, argv, "d:", longopts, NULL)) != -1) {
		if (c != 'd')
			return ctl_usage(usage);
		dir = optarg;
	}
	if (optind != argc)
		return ctl_usage(usage);
	if (ctl_load_config(ctx) < 0)
		return CTL_FAIL;
	if (dir == NULL)
		dir = ctx->cfg.backup.dir;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ctl_err("cannot create %s: %s", dir, strerror(errno));
		return CTL_FAIL;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (bk_dump(&ctx->cfg, dir, stamp, path, sizeof(path)) < 0)
		return CTL_FAIL;
	/* The .rdb takes the dump's stem (kiln-<stamp>[-N]), so both go together. */
	snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(path) - strlen(".dump")), path);
	if (ctx->cfg.backup.redis_rdb[0] == '\0')
		printf("redis copy skipped ([backup] redis_rdb is not set)\n");
	else if (bk_redis(&ctx->cfg, stem) < 0)
		return CTL_FAIL;
	return bk_retention(dir, ctx->cfg.backup.keep, ctx->cfg.backup.max_age_ms) < 0 ? CTL_FAIL
	                                                                               : CTL_OK;
}

/* ---------------------------------------------------------------- restore */

/* Compare file's SHA-256 with the one in file.sha256. Returns 0 when they
 * match, or -1 with a message printed. */
static int bk_verify(const char *file)
{
	char sum[BK_PATH_MAX], want[BK_SHA_HEX], have[BK_SHA_HEX];
	size_t len = 0;
	char *text;
	int n, ok;

	n = snprintf(sum, sizeof(sum), "%s.sha256", file);
	if (n < 0 || (size_t)n >= sizeof(sum)) {
		ctl_err("path too long: %s", file);
		return -1;
	}
	text = kiln_read_file(sum, 4096, &len);
	if (text == NULL) {
		ctl_err("cannot read checksum file %s: %s (refusing to restore an unverified dump)",
		        sum, strerror(errno));
		return -1;
	}
	ok = len >= 64 && strspn(text, "0123456789abcdef") == 64 && (len == 64 || text[64] == ' ');
	if (ok)
		memcpy(want, text, 64), want[64] = '\0';
	free(text);
	if (!ok) {
		ctl_err("%s is not a sha256sum line", sum);
		return -1;
	}
	if (bk_sha256_file(file, have) < 0)
		return -1;
	if (CRYPTO_memcmp(want, have, 64) != 0) {
		ctl_err("checksum mismatch for %s: %s says %s, the file is %s; refusing to restore",
		        file, sum, want, have);
		return -1;
	}
	printf("checksum ok %s\n", have);
	return 0;
}

/* A kiln_db for target t with no statement timeout. NULL on OOM. */
static struct kiln_db *bk_db(const struct kiln_config *cfg, const struct bk_target *t)
{
	struct kiln_cfg_database d = cfg->database;
	struct kiln_db *db;

	kiln_strlcpy(d.url, t->conninfo, sizeof(d.url));
	kiln_strlcpy(d.password, t->password, sizeof(d.password));
	d.statement_timeout_ms = 0;
	db = kiln_db_new(&d);
	explicit_bzero(&d, sizeof(d));
	return db;
}

static const char sql_relations[] =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/* Exact row counts of every table, without building SQL from names here:
 * query_to_xml runs the per-table count inside the server. */
static const char sql_counts[] =
    "SELECT format('%I.%I', n.nspname, c.relname),"
    " (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I',"
    " n.nspname, c.relname), false, true, '')))[1]::text"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    " ORDER BY 1";

/* Number of user relations in the target, or -1 with a message printed. */
static long bk_relations(struct kiln_db *db, const char *dbname)
{
	char err[512];
	PGresult *r =
	    kiln_db_query(db, NULL, sql_relations, 0, NULL, 60000, NULL, err, sizeof(err));
	long n;

	if (r == NULL) {
		ctl_err("database %s: %s", dbname, err);
		return -1;
	}
	n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return n;
}

static int bk_report(struct kiln_db *db, const char *dbname)
{
	char err[512];
	PGresult *r = kiln_db_query(db, NULL, sql_counts, 0, NULL, 0, NULL, err, sizeof(err));
	int i;

	if (r == NULL) {
		ctl_err("counting rows in %s: %s", dbname, err);
		return -1;
	}
	printf("restored into %s: %d tables\n", dbname, PQntuples(r));
	for (i = 0; i < PQntuples(r); i++)
		printf("%-40s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return 0;
}

/* --database VALUE: a conninfo string or URI, else a database name on the
 * server of [database] url. Returns 0, or -1 with a message printed. */
static int bk_restore_target(const struct kiln_config *cfg, const char *value, struct bk_target *t)
{
	if (value == NULL)
		return bk_target_from(t, cfg->database.url, NULL, cfg->database.password);
	if (strchr(value, '=') || strstr(value, "://"))
		return bk_target_from(t, value, NULL, cfg->database.password);
	return bk_target_from(t, cfg->database.url, value, cfg->database.password);
}

static int bk_pg_restore(const char *file, const struct bk_target *t, int force)
{
	char db_arg[2 * KILN_CFG_STR_MAX + 16];
	char *argv[12];
	int n = 0, rc;

	snprintf(db_arg, sizeof(db_arg), "--dbname=%s", t->conninfo);
	argv[n++] = "pg_restore";
	argv[n++] = "--no-password";
	argv[n++] = "--exit-on-error";
	argv[n++] = "--single-transaction";
	argv[n++] = "--no-owner";
	if (force) {
		argv[n++] = "--clean";
		argv[n++] = "--if-exists";
	}
	argv[n++] = db_arg;
	argv[n++] = (char *)file;
	argv[n] = NULL;
	rc = bk_exec(argv, t->password);
	explicit_bzero(db_arg, sizeof(db_arg));
	return rc;
}

int ctl_restore(struct ctl *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {{"database", required_argument, NULL, 'd'},
	                                         {"force", no_argument, NULL, 'f'},
	                                         {NULL, 0, NULL, 0}};
	const char *usage = "restore FILE [--database URL|NAME] [--force]", *target = NULL;
	struct kiln_db *db = NULL;
	struct bk_target t;
	int c, force = 0, rc = CTL_FAIL;
	long rels;

	while ((c = getopt_long(argc, argv, "d:f", longopts, NULL)) != -1) {
		if (c == 'd')
			target = optarg;
		else if (c == 'f')
			force = 1;
		else
			return ctl_usage(usage);
	}
	if (optind != argc - 1)
		return ctl_usage(usage);
	if (ctl_load_config(ctx) < 0 || bk_verify(argv[optind]) < 0)
		return CTL_FAIL;
	if (bk_restore_target(&ctx->cfg, target, &t) < 0)
		return CTL_FAIL;
	db = bk_db(&ctx->cfg, &t);
	if (db == NULL) {
		ctl_err("out of memory");
		goto out;
	}
	rels = bk_relations(db, t.dbname);
	if (rels < 0)
		goto out;
	if (rels > 0 && !force) {
		ctl_err("database %s is not empty (%ld relations); restore into an empty database "
		        "(createdb) or give --force to replace what the dump holds",
		        t.dbname, rels);
		goto out;
	}
	kiln_db_free(db); /* pg_restore --clean must not wait on our connection */
	db = NULL;
	if (bk_pg_restore(argv[optind], &t, force) < 0)
		goto out;
	db = bk_db(&ctx->cfg, &t);
	if (db && bk_report(db, t.dbname) == 0)
		rc = CTL_OK;
out:
	kiln_db_free(db);
	bk_target_wipe(&t);
	return rc;
}
