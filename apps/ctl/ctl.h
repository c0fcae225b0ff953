/* kilnctl internals: the commands share one context (config path, the
 * config once loaded) and one way to fail. */
#ifndef KILN_CTL_H
#define KILN_CTL_H

#include "kiln/config.h"

/* Exit statuses: every command returns one of these. */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
	const char *config_path;
	struct kiln_config cfg; /* valid after ctl_load_config succeeded */
	int cfg_loaded;
};

/* Load ctx->cfg from ctx->config_path for program "ctl" (once).
 * Returns 0, or -1 after printing the loader's message. */
int ctl_load_config(struct ctl *ctx);

/* Print "kilnctl: <message>" on one line of stderr: newlines and tabs in
 * the formatted text (libpq messages carry them) become spaces. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a command's usage line on stderr and return CTL_USAGE. */
int ctl_usage(const char *usage);

/* The commands: argv[0] is the command name; each returns a CTL_* status. */
int ctl_migrate(struct ctl *ctx, int argc, char **argv);
int ctl_create_admin(struct ctl *ctx, int argc, char **argv);
int ctl_gen_secret(struct ctl *ctx, int argc, char **argv);
int ctl_jobs(struct ctl *ctx, int argc, char **argv);
int ctl_seed(struct ctl *ctx, int argc, char **argv);
int ctl_backup(struct ctl *ctx, int argc, char **argv);
int ctl_restore(struct ctl *ctx, int argc, char **argv);

#endif
