/* kilnctl migrate: apply sql/NNN_name.sql files forward-only, each in its
 * own transaction, recorded in schema_migrations with the SHA-256 of the
 * bytes that ran. A file changed after it was applied, or an applied file
 * gone missing, stops everything: the database no longer matches the
 * repository and a human has to decide. A session advisory lock serialises
 * migrators (two deploys at once, or `make run` racing an e2e suite). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kiln/db.h"
#include "kiln/util.h"
#include "ctl.h"

#ifndef KILN_SQL_DIR
#define KILN_SQL_DIR "/usr/local/share/kiln/sql"
#endif

/* pg_advisory_lock key of every migrator: "kilnmigr" as a big-endian int64. */
#define MIG_LOCK_KEY "7739836656150734706"
#define MIG_FILE_MAX (64 * 1024 * 1024)
#define MIG_SHA_HEX  65

struct mig_file {
	int64_t version;
	char *name; /* "001_users": the file name without .sql */
	char *path; /* DIR/001_users.sql, as messages show it */
	char *sql;  /* the file's bytes, NUL-terminated */
	size_t len;
	char sha[MIG_SHA_HEX];
};

struct mig_run {
	const char *dir;
	struct mig_file *files; /* sorted by version */
	size_t nfiles;
	struct kiln_db *db;
	PGconn *conn;
	PGresult *applied;   /* version, name, checksum, applied_at; NULL = no table */
	const char *current; /* path of the file being applied, for notices */
};

static const char sql_create[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version integer PRIMARY KEY,"
                                 " name text NOT NULL,"
                                 " checksum text NOT NULL,"
                                 " applied_at timestamptz NOT NULL DEFAULT now(),"
                                 " applied_by text)";
static const char sql_applied[] =
    "SELECT version, name, checksum,"
    " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM schema_migrations ORDER BY version";
static const char sql_record[] =
    "INSERT INTO schema_migrations (version, name, checksum, applied_by)"
    " VALUES ($1, $2, $3, $4)";

/* ---------------------------------------------------------------- files */

/* Split "NNN_name.sql" (NNN = 3+ digits, name of [A-Za-z0-9_-]) into its
 * version. Returns 0, or -1 when fname is not a migration's name. */
static int mig_parse_name(const char *fname, int64_t *version)
{
	size_t len = strlen(fname), digits = strspn(fname, "0123456789"), i;
	char num[16];

	if (digits < 3 || digits >= sizeof(num) || fname[digits] != '_' || len < 4 ||
	    strcmp(fname + len - 4, ".sql") != 0 || len - 4 <= digits + 1)
		return -1;
	for (i = digits + 1; i < len - 4; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
		            fname[i]))
			return -1;
	memcpy(num, fname, digits);
	num[digits] = '\0';
	return kiln_parse_int(num, 0, INT32_MAX, version); /* the column is an integer */
}

/* Read the whole file, bytes exactly as they are (the checksum covers
 * them, trailing newlines included). Returns 0, or -1 with errno set. */
static int mig_read(const char *path, char **out, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *data;
	size_t n;
	int err = 0;

	if (f == NULL)
		return -1;
	if (fstat(fileno(f), &st) < 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
	else if (st.st_size > MIG_FILE_MAX)
		err = EFBIG;
	if (err) {
		fclose(f);
		errno = err;
		return -1;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(data, 1, (size_t)st.st_size, f);
	if (ferror(f) || n != (size_t)st.st_size) {
		free(data);
		fclose(f);
		errno = EIO;
		return -1;
	}
	fclose(f);
	data[n] = '\0';
	*out = data;
	*lenp = n;
	return 0;
}

static int mig_sha256_hex(const char *data, size_t len, char out[MIG_SHA_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Add DIR/fname to run->files. Returns 0, or -1 after printing why. */
static int mig_add(struct mig_run *run, const char *fname, size_t *cap)
{
	struct mig_file *f;
	size_t n = strlen(fname);
	int64_t version;

	if (mig_parse_name(fname, &version) < 0) {
		ctl_err("%s/%s: not a migration (expected NNN_name.sql: 3+ digits, '_', a name of "
		        "letters, digits, '_' or '-')",
		        run->dir, fname);
		return -1;
	}
	if (run->nfiles == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct mig_file *p = realloc(run->files, ncap * sizeof(*p));

		if (p == NULL) {
			ctl_err("out of memory");
			return -1;
		}
		run->files = p;
		*cap = ncap;
	}
	f = &run->files[run->nfiles];
	memset(f, 0, sizeof(*f));
	f->version = version;
	run->nfiles++; /* from here on mig_free releases what f holds */
	f->name = strndup(fname, n - 4);
	if (f->name == NULL || asprintf(&f->path, "%s/%s", run->dir, fname) < 0) {
		f->path = NULL; /* asprintf leaves it undefined on failure */
		ctl_err("out of memory");
		return -1;
	}
	if (mig_read(f->path, &f->sql, &f->len) < 0) {
		ctl_err("%s: cannot read: %s", f->path, strerror(errno));
		return -1;
	}
	if (mig_sha256_hex(f->sql, f->len, f->sha) < 0) {
		ctl_err("%s: SHA-256 failed", f->path);
		return -1;
	}
	return 0;
}

static int mig_cmp(const void *a, const void *b)
{
	const struct mig_file *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Read every migration of run->dir, sorted by version. Anything else in
 * the directory is an error: a stray file is a typo or a leftover that
 * would otherwise be silently skipped. Returns 0, or -1 after printing. */
static int mig_scan(struct mig_run *run)
{
	DIR *d = opendir(run->dir);
	struct dirent *e;
	size_t cap = 0, i;
	int rc = 0;

	if (d == NULL) {
		ctl_err("cannot open migrations directory %s: %s", run->dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = mig_add(run, e->d_name, &cap);
	if (rc == 0 && errno != 0) {
		ctl_err("cannot read migrations directory %s: %s", run->dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	if (rc < 0)
		return -1;
	qsort(run->files, run->nfiles, sizeof(*run->files), mig_cmp);
	for (i = 1; i < run->nfiles; i++)
		if (run->files[i].version == run->files[i - 1].version) {
			ctl_err("%s and %s have the same version %lld", run->files[i - 1].path,
			        run->files[i].path, (long long)run->files[i].version);
			return -1;
		}
	return 0;
}

static void mig_free(struct mig_run *run)
{
	size_t i;

	for (i = 0; i < run->nfiles; i++) {
		free(run->files[i].name);
		free(run->files[i].path);
		free(run->files[i].sql);
	}
	free(run->files);
	PQclear(run->applied);
	kiln_db_free(run->db);
}

/* ---------------------------------------------------------------- database */

/* Run constant sql; an error is printed as "what: message". Returns 0/-1. */
static int mig_exec(struct mig_run *run, const char *sql, const char *what)
{
	PGresult *r = PQexec(run->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		ctl_err("%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(run->conn));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

/* Run a one-row, one-column boolean query. Returns 1, 0, or -1. */
static int mig_bool(struct mig_run *run, const char *sql, const char *what)
{
	PGresult *r = PQexec(run->conn, sql);
	int rc = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	else
		ctl_err("%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(run->conn));
	PQclear(r);
	return rc;
}

/* A WARNING raised while a file runs (e.g. "there is already a transaction
 * in progress" from a file with its own BEGIN) names that file. */
static void mig_notice(void *arg, const char *message)
{
	const struct mig_run *run = arg;

	if (run->current)
		ctl_err("%s: %s", run->current, message);
	else
		ctl_err("%s", message);
}

/* Connect with the config's [database]. Migrations and the wait for the
 * lock may take long: the apps' statement_timeout is for requests, so this
 * session lifts it; client_min_messages hides "already exists, skipping". */
static int mig_connect(struct mig_run *run, struct ctl *ctx)
{
	char err[512];

	if (ctl_load_config(ctx) < 0)
		return -1;
	run->db = kiln_db_new(&ctx->cfg.database);
	if (run->db == NULL) {
		ctl_err("out of memory");
		return -1;
	}
	run->conn = kiln_db_conn(run->db, err, sizeof(err));
	if (run->conn == NULL) {
		ctl_err("%s", err);
		return -1;
	}
	PQsetNoticeProcessor(run->conn, mig_notice, run);
	return mig_exec(run, "SET statement_timeout = 0; SET client_min_messages = warning",
	                "configuring the session");
}

/* Take the migrators' lock for the rest of the session (released when the
 * connection closes, even if we die). Says so when it has to wait. */
static int mig_lock(struct mig_run *run)
{
	int got = mig_bool(run, "SELECT pg_try_advisory_lock(" MIG_LOCK_KEY ")", "locking");

	if (got < 0)
		return -1;
	if (got == 1)
		return 0;
	fprintf(stderr, "kilnctl: waiting for another migrator\n");
	return mig_exec(run, "SELECT pg_advisory_lock(" MIG_LOCK_KEY ")", "locking");
}

/* Load schema_migrations into run->applied (NULL when the table does not
 * exist, which --status must not change). Returns 0, or -1. */
static int mig_load_applied(struct mig_run *run)
{
	int exists = mig_bool(run, "SELECT to_regclass('schema_migrations') IS NOT NULL",
	                      "reading schema_migrations");

	if (exists <= 0)
		return exists;
	run->applied = PQexec(run->conn, sql_applied);
	if (PQresultStatus(run->applied) != PGRES_TUPLES_OK) {
		ctl_err("reading schema_migrations: %s", PQresultErrorMessage(run->applied));
		return -1;
	}
	return 0;
}

static int mig_napplied(const struct mig_run *run)
{
	return run->applied ? PQntuples(run->applied) : 0;
}

/* Row of schema_migrations for version, or -1 when not applied. */
static int mig_applied_row(const struct mig_run *run, int64_t version)
{
	int64_t v;
	int i;

	for (i = 0; i < mig_napplied(run); i++)
		if (kiln_parse_int(PQgetvalue(run->applied, i, 0), 0, INT32_MAX, &v) == 0 &&
		    v == version)
			return i;
	return -1;
}

/* The file of an applied row, or NULL when it is missing. */
static const struct mig_file *mig_file_of(const struct mig_run *run, int row)
{
	int64_t v;
	size_t i;

	if (kiln_parse_int(PQgetvalue(run->applied, row, 0), 0, INT32_MAX, &v) < 0)
		return NULL;
	for (i = 0; i < run->nfiles; i++)
		if (run->files[i].version == v)
			return &run->files[i];
	return NULL;
}

/* Does every applied migration still have its file, byte for byte?
 * Returns 0, or -1 after printing the first discrepancy. */
static int mig_verify(const struct mig_run *run)
{
	const struct mig_file *f;
	const char *sum;
	int i;

	for (i = 0; i < mig_napplied(run); i++) {
		f = mig_file_of(run, i);
		if (f == NULL) {
			ctl_err("applied migration %03lld (%s) has no file in %s; migrations are "
			        "forward-only: restore the file",
			        strtoll(PQgetvalue(run->applied, i, 0), NULL, 10),
			        PQgetvalue(run->applied, i, 1), run->dir);
			return -1;
		}
		sum = PQgetvalue(run->applied, i, 2);
		if (strcmp(sum, f->sha) != 0) {
			ctl_err(
			    "%s was changed after it was applied (checksum %.12s\u2026 recorded, "
			    "%.12s\u2026 now); migrations are forward-only: add a new file instead",
			    f->path, sum, f->sha);
			return -1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- applying */

/* 1-based line of the character offset pos (PostgreSQL counts characters,
 * not bytes) in f, or 0 when pos is out of range. */
static long mig_line_of(const struct mig_file *f, long pos)
{
	long line = 1, chars = 0;
	size_t i;

	for (i = 0; i < f->len; i++) {
		if (((unsigned char)f->sql[i] & 0xC0) != 0x80 && ++chars == pos)
			return line;
		if (f->sql[i] == '\n')
			line++;
	}
	return 0;
}

/* Print a statement's failure on one line: file, PostgreSQL's message, the
 * line of the file it points at, and its detail and hint when it has them. */
static void mig_report(const struct mig_file *f, const PGresult *r, PGconn *conn)
{
	const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
	const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
	char where[32] = "";
	long line = pos ? mig_line_of(f, strtol(pos, NULL, 10)) : 0;

	if (primary == NULL) {
		ctl_err("%s failed: %s", f->path,
		        r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
		return;
	}
	if (line > 0)
		snprintf(where, sizeof(where), " (line %ld)", line);
	ctl_err("%s failed: %s%s%s%s%s%s; rolled back", f->path, primary, where, detail ? "; " : "",
	        detail ? detail : "", hint ? "; hint: " : "", hint ? hint : "");
}

/* Who ran the migration, for schema_migrations.applied_by. */
static void mig_who(char *out, size_t outlen)
{
	const struct passwd *pw = getpwuid(geteuid());
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(out, outlen, "%s@%s", pw ? pw->pw_name : "?", host);
}

/* BEGIN; the file; its schema_migrations row; COMMIT. Returns 0, or -1
 * after rolling back and printing why. */
static int mig_apply(struct mig_run *run, const struct mig_file *f, const char *who)
{
	char version[24];
	const char *params[4] = {version, f->name, f->sha, who};
	PGresult *r;
	ExecStatusType st;

	if (mig_exec(run, "BEGIN", f->path) < 0)
		return -1;
	run->current = f->path;
	r = PQexec(run->conn, f->sql);
	run->current = NULL;
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		mig_report(f, r, run->conn);
		PQclear(r);
		PQclear(PQexec(run->conn, "ROLLBACK"));
		return -1;
	}
	PQclear(r);
	snprintf(version, sizeof(version), "%lld", (long long)f->version);
	r = PQexecParams(run->conn, sql_record, 4, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK) {
		ctl_err("%s: recording it failed: %s", f->path, PQresultErrorMessage(r));
		PQclear(r);
		PQclear(PQexec(run->conn, "ROLLBACK"));
		return -1;
	}
	PQclear(r);
	return mig_exec(run, "COMMIT", f->path);
}

/* Apply every pending file in version order; stop at the first failure
 * (earlier files stay applied). Returns a CTL_* status. */
static int mig_apply_pending(struct mig_run *run)
{
	char who[320];
	size_t i, done = 0, pending = 0;
	int64_t t0;

	mig_who(who, sizeof(who));
	for (i = 0; i < run->nfiles; i++)
		pending += mig_applied_row(run, run->files[i].version) < 0;
	if (pending == 0) {
		printf("nothing to do: %d applied\n", mig_napplied(run));
		return CTL_OK;
	}
	for (i = 0; i < run->nfiles; i++) {
		if (mig_applied_row(run, run->files[i].version) >= 0)
			continue;
		t0 = kiln_now_ms();
		if (mig_apply(run, &run->files[i], who) < 0) {
			printf("%zu applied, %zu pending\n", done, pending - done);
			return CTL_FAIL;
		}
		done++;
		printf("applied %s (%lld ms)\n", run->files[i].name,
		       (long long)(kiln_now_ms() - t0));
		fflush(stdout);
	}
	printf("%zu applied, %zu pending\n", done, pending - done);
	return CTL_OK;
}

static int mig_run_all(struct mig_run *run)
{
	if (mig_lock(run) < 0 || mig_exec(run, sql_create, "creating schema_migrations") < 0 ||
	    mig_load_applied(run) < 0 || mig_verify(run) < 0)
		return CTL_FAIL;
	return mig_apply_pending(run);
}

/* ---------------------------------------------------------------- --status */

/* One line per file, then one per applied version without a file. Returns
 * CTL_FAIL when any file changed or is missing, else CTL_OK. */
static int mig_status(struct mig_run *run)
{
	int bad = 0, row, i;
	size_t k;

	if (mig_load_applied(run) < 0)
		return CTL_FAIL;
	for (k = 0; k < run->nfiles; k++) {
		const struct mig_file *f = &run->files[k];

		row = mig_applied_row(run, f->version);
		if (row < 0) {
			printf("%-32s pending\n", f->name);
		} else if (strcmp(PQgetvalue(run->applied, row, 2), f->sha) != 0) {
			printf("%-32s CHANGED (checksum %.12s\u2026 recorded, %.12s\u2026 now)\n",
			       f->name, PQgetvalue(run->applied, row, 2), f->sha);
			bad = 1;
		} else {
			printf("%-32s applied %s\n", f->name, PQgetvalue(run->applied, row, 3));
		}
	}
	for (i = 0; i < mig_napplied(run); i++) {
		if (mig_file_of(run, i) != NULL)
			continue;
		printf("%-32s MISSING (applied %s, no file)\n", PQgetvalue(run->applied, i, 1),
		       PQgetvalue(run->applied, i, 3));
		bad = 1;
	}
	return bad ? CTL_FAIL : CTL_OK;
}

int ctl_migrate(struct ctl *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"status", no_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	struct mig_run run = {.dir = KILN_SQL_DIR};
	char dir[4096];
	int c, status = 0, rc;
	size_t n;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'd')
			run.dir = optarg;
		else if (c == 's')
			status = 1;
		else
			return ctl_usage("migrate [--dir DIR] [--status]");
	}
	if (optind != argc)
		return ctl_usage("migrate [--dir DIR] [--status]");
	/* Drop trailing slashes so messages name "sql/001_users.sql". */
	if (kiln_strlcpy(dir, run.dir, sizeof(dir)) >= sizeof(dir)) {
		ctl_err("--dir: path too long");
		return CTL_FAIL;
	}
	for (n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0';
	run.dir = dir;
	if (mig_scan(&run) < 0 || mig_connect(&run, ctx) < 0)
		rc = CTL_FAIL;
	else
		rc = status ? mig_status(&run) : mig_run_all(&run);
	mig_free(&run);
	return rc;
}
