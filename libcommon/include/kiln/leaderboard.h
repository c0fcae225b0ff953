/* leaderboard: users ranked by points (the sum of the points of the
 * exercises they completed), kept in a Redis sorted set that can always be
 * rebuilt from PostgreSQL (user_progress joined with exercises). Shared by
 * kiln-api (reads, rebuild when missing) and kiln-worker (a user's entry
 * after grading; the periodic rebuild).
 *
 * Order: most points first; equal points, lower user id first. Users with
 * 0 points are not on the board.
 *
 * The set KILN_LEADERBOARD_KEY is trimmed to the top `size` users and kept
 * in that order by Redis's own (ascending score, then member bytes):
 * member = the user id as 19 zero-padded decimal digits, score = minus the
 * points. A sentinel member KILN_LEADERBOARD_SENTINEL with score +inf (last,
 * never trimmed) tells an empty board from a missing one; readers skip it. */
#ifndef KILN_LEADERBOARD_H
#define KILN_LEADERBOARD_H

#include <stddef.h>
#include <stdint.h>

struct kiln_db;
struct kiln_redis;

#define KILN_LEADERBOARD_KEY      "kiln:leaderboard"
#define KILN_LEADERBOARD_SENTINEL "built"

struct kiln_leaderboard_entry {
	int64_t user_id;
	int64_t points;
};

/* Set user_id's points from PostgreSQL (recomputed, so running it twice
 * gives the same result; 0 points removes the user), then trim to size.
 * Does nothing when the set is missing (the next read rebuilds it). Returns
 * 0, or -1 with err set. */
int kiln_leaderboard_update_user(struct kiln_db *db, struct kiln_redis *r, int64_t user_id,
                                 int64_t size, char *err, size_t errlen);

/* Rebuild the whole set from PostgreSQL into a temporary key and RENAME it
 * over the live one (readers never see it half-built). Returns the number
 * of users in it, or -1 with err set. */
int kiln_leaderboard_rebuild(struct kiln_db *db, struct kiln_redis *r, int64_t size, char *err,
                             size_t errlen);

/* The top n entries (n <= size; a larger n reads size), best first. When
 * the set is missing it is rebuilt first, by one process at a time (a short
 * Redis lock); a process that does not get the lock, or finds Redis down,
 * reads PostgreSQL directly with the rebuild's query. Returns the number of
 * entries, or -1 with err set (PostgreSQL needed and unavailable). */
int kiln_leaderboard_top(struct kiln_db *db, struct kiln_redis *r, int64_t size,
                         struct kiln_leaderboard_entry *out, int n, char *err, size_t errlen);

#endif
