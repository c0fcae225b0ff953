/* kilnctl gen-secret: a signing key (or any shared secret) as a file of
 * base64url text, readable by its owner only. Keys are only ever read from
 * files (config.c's *_file keys), so the key never passes through argv, the
 * environment or the terminal; only the path is printed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "kiln/util.h"
#include "ctl.h"

#define SECRET_DEFAULT_BYTES 48
#define SECRET_MIN_BYTES     32 /* HS256 wants a key at least as long as its hash */
#define SECRET_MAX_BYTES     256
#define SECRET_TEXT_MAX      (SECRET_MAX_BYTES * 4 / 3 + 4)

static const char usage_gen_secret[] = "gen-secret PATH [--bytes N] [--force]";

/* Write all of buf to fd, then flush it to disk. Returns 0, or -1 with errno. */
static int secret_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return fsync(fd);
}

/* Create path (which must not exist, and is never followed if it is a
 * symlink) with mode 0600 and write text. Returns 0, or -1 after printing. */
static int secret_create(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			ctl_err("%s already exists; use --force to replace it", path);
		else
			ctl_err("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (secret_write_all(fd, text, len) < 0 || close(fd) < 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

/* Replace path atomically: a temporary file beside it (same filesystem),
 * then rename(2), so a reader sees the old key or the new one, never half
 * a key. Returns 0, or -1 after printing. */
static int secret_replace(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	int fd, rc = -1;

	fd = kiln_tmpfile_beside(path, 0600, tmp, sizeof(tmp));
	if (fd < 0) {
		ctl_err("cannot create a temporary file beside %s: %s", path, strerror(errno));
		return -1;
	}
	if (secret_write_all(fd, text, len) < 0) {
		ctl_err("cannot write %s: %s", tmp, strerror(errno));
		close(fd);
	} else if (close(fd) < 0 || rename(tmp, path) < 0) {
		ctl_err("cannot replace %s: %s", path, strerror(errno));
	} else {
		rc = 0;
	}
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Parse the options. Returns CTL_OK with *path, *bytes and *force set, or
 * CTL_USAGE after printing the usage. */
static int secret_options(int argc, char **argv, const char **path, int64_t *bytes, int *force)
{
	static const struct option longopts[] = {
	    {"bytes", required_argument, NULL, 'b'},
	    {"force", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*bytes = SECRET_DEFAULT_BYTES;
	*force = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'f') {
			*force = 1;
		} else if (c != 'b' ||
		           kiln_parse_int(optarg, SECRET_MIN_BYTES, SECRET_MAX_BYTES, bytes) < 0) {
			if (c == 'b')
				ctl_err("--bytes must be a number from %d to %d", SECRET_MIN_BYTES,
				        SECRET_MAX_BYTES);
			return ctl_usage(usage_gen_secret);
		}
	}
	if (optind != argc - 1)
		return ctl_usage(usage_gen_secret);
	*path = argv[optind];
	return CTL_OK;
}

int ctl_gen_secret(struct ctl *ctx, int argc, char **argv)
{
	unsigned char key[SECRET_MAX_BYTES];
	char text[SECRET_TEXT_MAX];
	const char *path = NULL;
	int64_t bytes;
	int force, rc;
	long n;

	(void)ctx; /* no config: the stack makes its key before its config */
	rc = secret_options(argc, argv, &path, &bytes, &force);
	if (rc != CTL_OK)
		return rc;
	if (RAND_bytes(key, (int)bytes) != 1) {
		ctl_err("RAND_bytes failed: no secure random source");
		return CTL_FAIL;
	}
	n = kiln_b64url_encode(key, (size_t)bytes, text, sizeof(text) - 1);
	explicit_bzero(key, sizeof(key));
	if (n < 0) {
		ctl_err("base64url encoding failed");
		return CTL_FAIL;
	}
	text[n++] = '\n';
	text[n] = '\0';
	rc = force ? secret_replace(path, text, (size_t)n) : secret_create(path, text, (size_t)n);
	explicit_bzero(text, sizeof(text));
	if (rc < 0)
		return CTL_FAIL;
	printf("%s\n", path);
	return CTL_OK;
}
