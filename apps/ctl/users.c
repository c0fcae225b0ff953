/* kilnctl create-admin: the first administrator has nobody to promote them,
 * so the operator creates (or promotes) one from the shell. The password
 * comes from stdin or the terminal, never argv (which every local user can
 * read in ps), and goes through the same policy and Argon2id parameters as
 * kiln-auth's register. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kiln/db.h"
#include "kiln/email.h"
#include "kiln/password.h"
#include "kiln/util.h"
#include "ctl.h"

#define USERS_NAME_MAX     100
#define USERS_DEFAULT_NAME "Administrator"
/* One byte more than the policy allows, so an over-long password is
 * reported by the policy ("must be at most ...") instead of cut short. */
#define USERS_PW_READ (KILN_PASSWORD_MAX + 1)

static const char usage_create_admin[] = "create-admin --email EMAIL [--name NAME]";

/* An existing account (any case of the email): make it an administrator
 * with the new password. Like a password change through kiln-auth, the
 * session version moves on and its sessions are revoked, so nobody keeps a
 * session opened with the old password; the lockout counters start over. */
static const char sql_promote[] =
    "UPDATE users SET role = 'admin', password_hash = $2,"
    " display_name = COALESCE($3, display_name),"
    " session_version = session_version + 1, failed_logins = 0, locked_until = NULL,"
    " updated_at = now()"
    " WHERE lower(email) = lower($1) RETURNING id";
static const char sql_revoke[] =
    "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password_change'"
    " WHERE user_id = $1 AND revoked_at IS NULL";
static const char sql_insert[] = "INSERT INTO users (email, display_name, password_hash, role)"
                                 " VALUES ($1, $2, $3, 'admin') RETURNING id";

struct users_admin {
	char email[KILN_EMAIL_MAX + 1];
	char name[USERS_NAME_MAX + 1];
	int name_given;
	char pw[USERS_PW_READ + 1];
	size_t pwlen;
	char phc[KILN_PHC_MAX];
};

/* ---------------------------------------------------------------- input */

/* display_name rules of docs/api.md: trimmed, 1..100 bytes of UTF-8, no
 * control characters. Returns NULL, or the reason. */
static const char *users_name(const char *in, char *out, size_t outlen)
{
	size_t len = strlen(in), i, n;

	while (len > 0 && strchr(" \t\r\n", in[len - 1]))
		len--;
	while (len > 0 && strchr(" \t\r\n", *in)) {
		in++;
		len--;
	}
	if (len == 0 || len > USERS_NAME_MAX || len >= outlen)
		return "must be 1 to 100 bytes";
	for (i = 0; i < len; i += n) {
		n = kiln_utf8_len((const unsigned char *)in + i, len - i);
		if (n == 0)
			return "must be valid UTF-8";
		if (n == 1 && ((unsigned char)in[i] < 0x20 || in[i] == 0x7f))
			return "must not contain control characters";
		if (n == 2 && (unsigned char)in[i] == 0xC2 && (unsigned char)in[i + 1] < 0xA0)
			return "must not contain control characters"; /* C1: U+0080..U+009F */
	}
	memcpy(out, in, len);
	out[len] = '\0';
	return NULL;
}

/* Read one line from fd into buf (at most max bytes, newline dropped, a
 * CR before it too, as files written on Windows carry one). Returns 0, 1
 * at end of input with nothing read, -1 on a read error. */
static int users_read_line(int fd, char *buf, size_t max, size_t *len)
{
	ssize_t r = 0;
	char c;

	*len = 0;
	while (*len < max) {
		r = read(fd, &c, 1);
		if (r < 0)
			return -1;
		if (r == 0 || c == '\n')
			break;
		buf[(*len)++] = c;
	}
	buf[*len] = '\0';
	if (*len > 0 && buf[*len - 1] == '\r')
		buf[--*len] = '\0';
	return (*len == 0 && r == 0) ? 1 : 0;
}

static struct termios users_saved_tty;

/* SIGINT/SIGTERM/SIGHUP while echo is off: give the terminal its echo back,
 * then die of the signal as if we had no handler. */
static void users_restore_tty(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &users_saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Prompt on stderr and read a line from the terminal without echo.
 * Returns 0, or -1 (no terminal, read error, end of input). */
static int users_prompt(const char *prompt, char *buf, size_t max, size_t *len)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = users_restore_tty}, old[KILN_ARRAY_LEN(sigs)];
	struct termios quiet;
	size_t i;
	int rc;

	if (tcgetattr(STDIN_FILENO, &users_saved_tty) < 0)
		return -1;
	for (i = 0; i < KILN_ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	quiet = users_saved_tty;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL; /* the Enter still moves to the next line */
	fputs(prompt, stderr);
	fflush(stderr);
	rc = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	if (rc == 0)
		rc = users_read_line(STDIN_FILENO, buf, max, len) == 0 ? 0 : -1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &users_saved_tty);
	for (i = 0; i < KILN_ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	return rc;
}

/* The new password: the first line of stdin, or asked twice on a terminal.
 * Returns 0, or -1 after printing why. */
static int users_password(struct users_admin *a)
{
	char again[USERS_PW_READ + 1];
	size_t len2 = 0;
	int rc;

	if (!isatty(STDIN_FILENO)) {
		rc = users_read_line(STDIN_FILENO, a->pw, USERS_PW_READ, &a->pwlen);
		if (rc != 0)
			ctl_err(rc < 0 ? "reading the password from stdin failed"
			               : "no password on stdin (give it as the first line)");
		return rc == 0 ? 0 : -1;
	}
	if (users_prompt("New password: ", a->pw, USERS_PW_READ, &a->pwlen) < 0 ||
	    users_prompt("Repeat it: ", again, USERS_PW_READ, &len2) < 0) {
		explicit_bzero(again, sizeof(again));
		ctl_err("reading the password from the terminal failed");
		return -1;
	}
	rc = len2 == a->pwlen && CRYPTO_memcmp(again, a->pw, len2) == 0 ? 0 : -1;
	explicit_bzero(again, sizeof(again));
	if (rc < 0)
		ctl_err("the two passwords differ");
	return rc;
}

/* Parse the options into a. Returns CTL_OK, or CTL_USAGE / CTL_FAIL after
 * printing why. */
static int users_options(struct users_admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"email", required_argument, NULL, 'e'},
	    {"name", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const char *email = NULL, *name = USERS_DEFAULT_NAME, *why;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'e')
			email = optarg;
		else if (c == 'n')
			name = optarg;
		else
			return ctl_usage(usage_create_admin);
		a->name_given |= c == 'n';
	}
	if (optind != argc || email == NULL)
		return ctl_usage(usage_create_admin);
	why = kiln_email_normalize(email, strlen(email), a->email, sizeof(a->email));
	if (why != NULL) {
		ctl_err("--email '%s' %s", email, why);
		return CTL_FAIL;
	}
	why = users_name(name, a->name, sizeof(a->name));
	if (why != NULL) {
		ctl_err("--name %s", why);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* ---------------------------------------------------------------- database */

/* Run one statement; a failure is printed. Returns the result when its
 * status is ok (PQclear it), else NULL. */
static PGresult *users_exec(struct kiln_db *db, const char *sql, int n, const char *const *v)
{
	char err[512];
	PGresult *r = kiln_db_query(db, NULL, sql, n, v, 0, NULL, err, sizeof(err));

	if (r == NULL)
		ctl_err("%s", err);
	return r;
}

/* Promote the account with a's email, if there is one. Returns 1 when it
 * was promoted, 0 when there is no such account, -1 on error. */
static int users_promote(struct kiln_db *db, const struct users_admin *a)
{
	const char *v[3] = {a->email, a->phc, a->name_given ? a->name : NULL};
	PGresult *r = users_exec(db, sql_promote, 3, v), *s;
	char id[24];

	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	kiln_strlcpy(id, PQgetvalue(r, 0, 0), sizeof(id));
	PQclear(r);
	v[0] = id;
	s = users_exec(db, sql_revoke, 1, v);
	if (s == NULL)
		return -1;
	printf("existing user %s (%s) promoted to admin with the new password; %s session(s) "
	       "revoked\n",
	       id, a->email, PQcmdTuples(s));
	PQclear(s);
	return 1;
}

/* Promote or insert in one transaction. Returns CTL_OK or CTL_FAIL. */
static int users_store(struct kiln_db *db, const struct users_admin *a)
{
	const char *v[3] = {a->email, a->name, a->phc};
	PGresult *r;
	int rc;

	r = users_exec(db, "BEGIN", 0, NULL);
	if (r == NULL)
		return CTL_FAIL;
	PQclear(r);
	rc = users_promote(db, a);
	if (rc == 0) {
		r = users_exec(db, sql_insert, 3, v);
		rc = r ? 1 : -1;
		if (r)
			printf("created admin %s (%s)\n", PQgetvalue(r, 0, 0), a->email);
		PQclear(r);
	}
	r = users_exec(db, rc > 0 ? "COMMIT" : "ROLLBACK", 0, NULL);
	if (r == NULL)
		rc = -1;
	PQclear(r);
	return rc > 0 ? CTL_OK : CTL_FAIL;
}

/* ---------------------------------------------------------------- command */

/* Check the password against the policy and hash it into a->phc; the
 * plain password is wiped either way. Returns 0, or -1 after printing. */
static int users_hash(struct ctl *ctx, struct users_admin *a)
{
	struct kiln_password_params p;
	const char *why =
	    kiln_password_policy(a->pw, a->pwlen, ctx->cfg.auth.common_password_check);
	int rc = -1;

	kiln_password_params_from_config(&p, &ctx->cfg.auth);
	if (why != NULL)
		ctl_err("password %s", why);
	else if (kiln_password_hash(&p, a->pw, a->pwlen, a->phc, sizeof(a->phc)) < 0)
		ctl_err("hashing the password failed");
	else
		rc = 0;
	explicit_bzero(a->pw, sizeof(a->pw));
	a->pwlen = 0;
	return rc;
}

int ctl_create_admin(struct ctl *ctx, int argc, char **argv)
{
	struct users_admin *a = calloc(1, sizeof(*a));
	struct kiln_db *db = NULL;
	int rc;

	if (a == NULL) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	rc = users_options(a, argc, argv);
	if (rc == CTL_OK &&
	    (ctl_load_config(ctx) < 0 || users_password(a) < 0 || users_hash(ctx, a) < 0))
		rc = CTL_FAIL;
	if (rc == CTL_OK) {
		db = kiln_db_new(&ctx->cfg.database);
		rc = db ? users_store(db, a) : CTL_FAIL;
		if (db == NULL)
			ctl_err("out of memory");
	}
	kiln_db_free(db);
	explicit_bzero(a, sizeof(*a));
	free(a);
	return rc;
}
