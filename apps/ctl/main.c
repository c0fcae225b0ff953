/* kilnctl: the administrator's command line. `kilnctl [-c FILE] COMMAND`
 * looks COMMAND up in one table; each command group lives in its own file
 * (migrate.c, users.c, secret.c, jobs.c, seed.c, backup.c). Exit 0 on success, 1 on failure (one
 * line on stderr), 2 on a usage error. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/util.h"
#include "ctl.h"

#ifdef KILN_CONFIG_PATH
#define CTL_DEFAULT_CONFIG KILN_CONFIG_PATH
#else
#define CTL_DEFAULT_CONFIG "/etc/kiln/kiln.conf"
#endif

static int ctl_check_config(struct ctl *ctx, int argc, char **argv);
static int ctl_help(struct ctl *ctx, int argc, char **argv);

struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctx, int argc, char **argv);
	const char *args;
	const char *summary;
};

static const struct ctl_command commands[] = {
    {"migrate", ctl_migrate, "[--dir DIR] [--status]",
     "apply pending sql/NNN_name.sql migrations, or list them with --status"},
    {"create-admin", ctl_create_admin, "--email EMAIL [--name NAME]",
     "create an administrator (or promote an existing user); password on stdin"},
    {"gen-secret", ctl_gen_secret, "PATH [--bytes N] [--force]",
     "write N (default 48) random bytes, base64url, to a new 0600 file"},
    {"jobs", ctl_jobs, "stats | list | retry ID | discard ID | cancel ID | enqueue KIND [ARGS]",
     "the job queue: counts, recent jobs, move one job, add jobs (see docs/operations.md)"},
    {"seed", ctl_seed, "--exercises N [--users M]",
     "idempotent demo data: an author, N exercises demo-0001.., M users with progress"},
    {"backup", ctl_backup, "[--dir DIR]",
     "pg_dump to [backup] dir with a .sha256, optional Redis copy, retention (keep, max_age)"},
    {"restore", ctl_restore, "FILE [--database URL|NAME] [--force]",
     "verify FILE's .sha256, pg_restore it into an empty (or --force) database, count rows"},
    {"check-config", ctl_check_config, "", "load the whole configuration and report"},
    {"help", ctl_help, "", "this text"},
};

void ctl_err(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (i = 0; msg[i]; i++)
		if (msg[i] == '\n' || msg[i] == '\r' || msg[i] == '\t')
			msg[i] = ' ';
	while (i > 0 && msg[i - 1] == ' ')
		msg[--i] = '\0';
	fprintf(stderr, "kilnctl: %s\n", msg);
}

int ctl_usage(const char *usage)
{
	fprintf(stderr, "usage: kilnctl [-c FILE] %s\n", usage);
	return CTL_USAGE;
}

int ctl_load_config(struct ctl *ctx)
{
	char err[1024];

	if (ctx->cfg_loaded)
		return 0;
	if (kiln_config_load(&ctx->cfg, ctx->config_path, "ctl", err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		return -1;
	}
	ctx->cfg_loaded = 1;
	return 0;
}

static void ctl_print_help(FILE *f)
{
	size_t i;

	fprintf(f, "usage: kilnctl [-c FILE] COMMAND [args]\n"
	           "       kilnctl -h | --version\n\n"
	           "  -c FILE   configuration (default $KILN_CONFIG, else " CTL_DEFAULT_CONFIG
	           ")\n\ncommands:\n");
	for (i = 0; i < KILN_ARRAY_LEN(commands); i++)
		fprintf(f, "  %s%s%s\n      %s\n", commands[i].name, *commands[i].args ? " " : "",
		        commands[i].args, commands[i].summary);
	fprintf(f, "\nexit status: 0 success, 1 failure, 2 usage error\n");
}

static int ctl_help(struct ctl *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argv;
	if (argc > 1)
		return ctl_usage("help");
	ctl_print_help(stdout);
	return CTL_OK;
}

/* Every section is checked whatever program reads it, so one load proves
 * the file (and the secret files it names) good for every kiln program. */
static int ctl_check_config(struct ctl *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return ctl_usage("check-config");
	if (ctl_load_config(ctx) < 0)
		return CTL_FAIL;
	printf("configuration %s is valid\n", ctx->config_path);
	return CTL_OK;
}

static const struct ctl_command *ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Parse the global options; returns the index of the command in argv,
 * or -1 after printing help/version (exit 0) or -2 on a usage error. */
static int ctl_global_opts(struct ctl *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	/* "+": stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx->config_path = optarg;
			break;
		case 'h':
			ctl_print_help(stdout);
			return -1;
		case 'V':
			printf("kilnctl %s (%s)\n", KILN_VERSION, KILN_COMMIT);
			return -1;
		default:
			return -2;
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct ctl ctx = {0};
	const struct ctl_command *cmd;
	const char *env = getenv("KILN_CONFIG");
	int first, rc;

	ctx.config_path = env && *env ? env : CTL_DEFAULT_CONFIG;
	first = ctl_global_opts(&ctx, argc, argv);
	if (first == -1)
		return CTL_OK;
	if (first < 0 || first >= argc) {
		ctl_print_help(stderr);
		return CTL_USAGE;
	}
	cmd = ctl_find(argv[first]);
	if (cmd == NULL) {
		ctl_err("unknown command '%s' (try: kilnctl help)", argv[first]);
		return CTL_USAGE;
	}
	optind = 0; /* glibc: re-initialise getopt for the command's own options */
	rc = cmd->run(&ctx, argc - first, argv + first);
	explicit_bzero(&ctx.cfg, sizeof(ctx.cfg)); /* it holds the secrets */
	return rc;
}
