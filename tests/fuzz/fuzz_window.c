/* libFuzzer: kiln-admin's live-stats window file (<run_dir>/admin.window)
 * read back by kiln_window_record, whatever bytes it holds: a file left by
 * another build, truncated, or corrupted. The input is laid over a ring
 * (zero past its end); an odd first byte also writes a valid header so
 * mutations reach the snapshots, with head and count as the input says.
 * The newest snapshot of the input, with clocks a host can have, is the
 * look being recorded (its clocks come from the host, not the file);
 * each of its programs' rates are then computed against the base read from
 * the file.
 *
 * Invariants: record returns -1, 0 or 1; afterwards the file is a valid
 * ring holding the look as its newest snapshot; rates never count more
 * requests in the window than in total, cover no negative time, and give
 * percentiles that are -1 (no requests) or not negative. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kiln_window_ring ring, back;

static char fuzz_file[64];

static void fuzz_path_remove(void)
{
	unlink(fuzz_file);
}

/* A file of this process in /dev/shm, removed at exit. */
static const char *fuzz_path(void)
{
	if (fuzz_file[0] == '\0') {
		snprintf(fuzz_file, sizeof(fuzz_file), "/dev/shm/kiln-fuzz-window.%ld",
		         (long)getpid());
		atexit(fuzz_path_remove);
	}
	return fuzz_file;
}

static int write_ring(const char *path)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(&ring, sizeof(ring), 1, f) == 1;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void check_back(const char *path, const struct kiln_window_snap *now)
{
	FILE *f = fopen(path, "rb");

	if (f == NULL || fread(&back, sizeof(back), 1, f) != 1)
		abort();
	fclose(f);
	if (memcmp(back.magic, KILN_WINDOW_MAGIC, 8) != 0 || back.nslots != KILN_WINDOW_SLOTS ||
	    back.head >= KILN_WINDOW_SLOTS || back.count < 1 || back.count > KILN_WINDOW_SLOTS)
		abort();
	/* The look is the newest snapshot, unless one less than a gap older
	 * was kept instead. */
	if (back.snaps[back.head].mono_ms > now->mono_ms ||
	    now->mono_ms - back.snaps[back.head].mono_ms >= KILN_WINDOW_GAP_MS)
		abort();
}

static void check_rates(const struct kiln_window_snap *now, const struct kiln_window_snap *base)
{
	struct kiln_window_rates r;
	uint32_t i;

	for (i = 0; i < now->napps; i++) {
		kiln_window_rates(&now->apps[i], base, now->mono_ms, now->wall_ms, &r);
		if (r.requests > r.requests_total || r.window_s < 0)
			abort();
		if ((r.p50_ms < 0 && r.p50_ms != -1) || (r.p99_ms < 0 && r.p99_ms != -1))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_window_snap now, base;
	const char *path = fuzz_path();
	uint32_t i;
	int rc;

	memset(&ring, 0, sizeof(ring));
	memcpy(&ring, data, size < sizeof(ring) ? size : sizeof(ring));
	if (size > 0 && (data[0] & 1)) {
		memcpy(ring.magic, KILN_WINDOW_MAGIC, 8);
		ring.version = 1;
		ring.nslots = KILN_WINDOW_SLOTS;
	}
	now = ring.snaps[ring.head % KILN_WINDOW_SLOTS];
	if (now.napps > KILN_STATS_MAX_BOARDS)
		now.napps = KILN_STATS_MAX_BOARDS;
	/* Clocks of a real host: far from overflow. */
	now.mono_ms &= INT64_C(0xffffffffffff);
	now.wall_ms &= INT64_C(0xffffffffffff);
	for (i = 0; i < now.napps; i++)
		now.apps[i].start_wall_ms &= INT64_C(0xffffffffffff);
	if (write_ring(path) < 0)
		return 0;
	rc = kiln_window_record(path, &now, &base);
	if (rc < -1 || rc > 1)
		abort();
	if (rc >= 0)
		check_back(path, &now);
	check_rates(&now, rc == 1 ? &base : NULL);
	return 0;
}
