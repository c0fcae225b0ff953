/* boards: every program's scoreboard in a run_dir, mapped read-only for one
 * look (a scrape, a dashboard refresh). See kiln/stats.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config.h"
#include "kiln/log.h"
#include "kiln/stats.h"
#include "kiln/util.h"

#define STATS_SUFFIX ".stats"

static int boards_has_suffix(const char *name)
{
	size_t n = strlen(name), s = strlen(STATS_SUFFIX);

	return n > s && strcmp(name + n - s, STATS_SUFFIX) == 0;
}

static int boards_same_app(const struct kiln_stats *a, const struct kiln_stats *b)
{
	return strncmp(a->hdr->app, b->hdr->app, sizeof(a->hdr->app)) == 0;
}

/* Map one file into the next free entry. Returns 0 (taken or skipped), or
 * -1 after logging a file that should have been readable. */
static int boards_add(struct kiln_stats_boards *b, const char *dir, const char *name)
{
	struct kiln_stats *st = &b->st[b->n];
	char path[KILN_CFG_STR_MAX + 300];
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	if (kiln_stats_open(st, path) < 0) {
		if (errno == ENOENT)
			return 0;
		kiln_warn("cannot read scoreboard", "path=%s error=%s", path,
		          errno == EINVAL ? "not a scoreboard of this version" : strerror(errno));
		return -1;
	}
	/* A file left behind by a program that is gone describes nothing. */
	if (!kiln_pid_alive((pid_t)st->hdr->master_pid)) {
		kiln_stats_close(st);
		return 0;
	}
	for (i = 0; i < b->n; i++) {
		if (boards_same_app(&b->st[i], st)) {
			kiln_warn("two scoreboards of one program; using the first",
			          "path=%s app=%.32s", path, st->hdr->app);
			kiln_stats_close(st);
			return -1;
		}
	}
	b->n++;
	return 0;
}

static int boards_cmp(const void *a, const void *b)
{
	const struct kiln_stats *x = *(const struct kiln_stats *const *)a;
	const struct kiln_stats *y = *(const struct kiln_stats *const *)b;

	return strncmp(x->hdr->app, y->hdr->app, sizeof(x->hdr->app));
}

int kiln_stats_boards_open(struct kiln_stats_boards *b, const char *run_dir)
{
	struct dirent *e;
	int skipped = 0;
	DIR *d;
	size_t i;

	b->n = 0;
	d = opendir(run_dir);
	if (d == NULL) {
		kiln_warn("cannot read run_dir", "path=%s error=%s", run_dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL && b->n < KILN_STATS_MAX_BOARDS)
		if (boards_has_suffix(e->d_name) && boards_add(b, run_dir, e->d_name) < 0)
			skipped++;
	closedir(d);
	for (i = 0; i < b->n; i++)
		b->sorted[i] = &b->st[i];
	qsort(b->sorted, b->n, sizeof(b->sorted[0]), boards_cmp);
	return skipped;
}

void kiln_stats_boards_close(struct kiln_stats_boards *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		kiln_stats_close(&b->st[i]);
	b->n = 0;
}
