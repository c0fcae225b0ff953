/* kilnctl seed: demo data for a development or demo stack. An author
 * (seed-author@kiln.invalid), N exercises demo-0001.. made from a table of
 * templates (every category, difficulty and answer kind; titles varied
 * enough for the title search), and optionally M users
 * (seed-user-0001@kiln.invalid..) with some progress, so the leaderboard
 * has people on it. Every account has password_hash '!', which no password
 * verifies: nobody can sign in as them.
 *
 * Idempotent: rows are found by their email or slug and never written
 * twice (ON CONFLICT DO NOTHING), so running it again with the same
 * arguments adds nothing, and with a larger N adds the missing ones. One
 * transaction: all of it, or nothing. Each generated rule is checked with
 * the grader itself (a sample answer must be graded correct) before it is
 * written. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/answer.h"
#include "kiln/db.h"
#include "kiln/leaderboard.h"
#include "kiln/redis.h"
#include "kiln/util.h"
#include "ctl.h"

#define SEED_MAX 100000

static const char usage_seed[] = "seed --exercises N [--users M]";

static const char sql_author[] =
    "INSERT INTO users (email, display_name, password_hash, role)"
    " VALUES ('seed-author@kiln.invalid', 'Seed author', '!', 'author')"
    " ON CONFLICT ((lower(email))) DO NOTHING";
static const char sql_author_id[] =
    "SELECT id FROM users WHERE lower(email) = 'seed-author@kiln.invalid'";
static const char sql_exercise[] =
    "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind,"
    " answer, tolerance, choices, created_by)"
    " VALUES ($1, $2, $3, $4::smallint, $5::integer, $6, $7, $8, $9::double precision,"
    " $10::text[], $11::bigint)"
    " ON CONFLICT (slug) DO NOTHING";
/* Users 0001..M (more digits past 9999). */
static const char sql_users[] =
    "INSERT INTO users (email, display_name, password_hash, role)"
    " SELECT 'seed-user-' || n || '@kiln.invalid', 'Demo user ' || n, '!', 'user'"
    " FROM generate_series(1, $1::integer) i,"
    "      LATERAL (SELECT lpad(i::text, greatest(4, length(i::text)), '0') AS n) x"
    " ON CONFLICT ((lower(email))) DO NOTHING";
/* The k-th demo user has tried 1 + k % 12 of the first 60 demo exercises,
 * and completed two in three of them: a board with ties and gaps. */
static const char sql_progress[] =
    "WITH ex AS (SELECT array_agg(id ORDER BY id) AS ids FROM exercises"
    "            WHERE slug ~ '^demo-[0-9]+$'),"
    " u AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM users"
    "       WHERE email LIKE 'seed-user-%@kiln.invalid'),"
    " pick AS (SELECT u.id AS user_id,"
    "          ex.ids[1 + (u.k * 7 + j * 13) % least(cardinality(ex.ids), 60)] AS exercise_id,"
    "          j % 3 <> 0 AS done, 1 + j % 3 AS attempts"
    "          FROM u, ex, generate_series(1, 1 + (u.k % 12)::integer) j"
    "          WHERE cardinality(ex.ids) > 0)"
    " INSERT INTO user_progress (user_id, exercise_id, best_score, attempts, completed_at)"
    " SELECT p.user_id, p.exercise_id, CASE WHEN p.done THEN e.points ELSE 0 END, p.attempts,"
    "        CASE WHEN p.done THEN now() END"
    " FROM pick p JOIN exercises e ON e.id = p.exercise_id"
    " ON CONFLICT (user_id, exercise_id) DO NOTHING";

/* ---------------------------------------------------------------- templates */

/* One exercise as it is inserted. */
struct seed_ex {
	char title[160], body[400], answer[160], sample[160], choices[400], tolerance[16];
	const char *category, *kind;
};

static const char *const words[] = {"kiln",    "glaze",    "ember",   "forge",  "quartz",
                                    "pottery", "spark",    "flame",   "anvil",  "cinder",
                                    "bellows", "crucible", "furnace", "mortar", "porcelain"};
static const char *const countries[][2] = {
    {"France", "Paris"},    {"Japan", "Tokyo"},  {"Kenya", "Nairobi"}, {"Peru", "Lima"},
    {"Canada", "Ottawa"},   {"Egypt", "Cairo"},  {"Norway", "Oslo"},   {"Chile", "Santiago"},
    {"India", "New Delhi"}, {"Spain", "Madrid"}, {"Vietnam", "Hanoi"}, {"Ghana", "Accra"}};
static const char *const planets[] = {"Mercury", "Venus",  "Earth",  "Mars",
                                      "Jupiter", "Saturn", "Uranus", "Neptune"};
static const char *const shapes[][2] = {{"triangle", "3"}, {"square", "4"},   {"pentagon", "5"},
                                        {"hexagon", "6"},  {"heptagon", "7"}, {"octagon", "8"},
                                        {"decagon", "10"}};

#define PICK(arr, i) (arr)[(size_t)(i) % KILN_ARRAY_LEN(arr)]

/* The two numbers of exercise i, different from each other. */
static int num_a(int i)
{
	return 2 + (i * 37) % 97;
}

static int num_b(int i)
{
	int b = 3 + (i * 53) % 89;

	return b == num_a(i) ? b + 1 : b;
}

static int is_prime(int n)
{
	int d;

	for (d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return n > 1;
}

/* Fill every text field at once: title, body, rule, a correct answer. */
static void ex_text(struct seed_ex *e, const char *title, const char *body, const char *answer,
                    const char *sample)
{
	kiln_strlcpy(e->title, title, sizeof(e->title));
	kiln_strlcpy(e->body, body, sizeof(e->body));
	kiln_strlcpy(e->answer, answer, sizeof(e->answer));
	kiln_strlcpy(e->sample, sample ? sample : answer, sizeof(e->sample));
}

static void t_sum(struct seed_ex *e, int i)
{
	char t[160], b[400], a[32];

	snprintf(t, sizeof(t), "Add %d and %d", num_a(i), num_b(i));
	snprintf(b, sizeof(b), "What is %d + %d? Answer with a number.", num_a(i), num_b(i));
	snprintf(a, sizeof(a), "%d", num_a(i) + num_b(i));
	ex_text(e, t, b, a, NULL);
	kiln_strlcpy(e->tolerance, "0", sizeof(e->tolerance));
}

static void t_reverse(struct seed_ex *e, int i)
{
	const char *w = PICK(words, i);
	char t[160], a[32];
	size_t n = strlen(w), k;

	for (k = 0; k < n; k++)
		a[k] = w[n - 1 - k];
	a[n] = '\0';
	snprintf(t, sizeof(t), "Reverse the word \"%s\"", w);
	ex_text(e, t, "Write the word backwards, letter by letter.", a, NULL);
}

static void t_parity(struct seed_ex *e, int i)
{
	char t[160];

	snprintf(t, sizeof(t), "Is %d even or odd?", num_a(i) * num_b(i));
	ex_text(e, t, "Pick one.", (num_a(i) * num_b(i)) % 2 ? "odd" : "even", NULL);
	kiln_strlcpy(e->choices, "{\"even\",\"odd\"}", sizeof(e->choices));
}

static void t_digits(struct seed_ex *e, int i)
{
	int n = 2 + i % 5;
	char t[160], a[32], s[16];

	snprintf(t, sizeof(t), "Write any %d-digit number", n);
	snprintf(a, sizeof(a), "[1-9][0-9]{%d}", n - 1);
	snprintf(s, sizeof(s), "%d", 1 + i % 9);
	memset(s + 1, '0', (size_t)n - 1);
	s[n] = '\0';
	ex_text(e, t, "No leading zero, no sign, no spaces.", a, s);
}

static void t_capital(struct seed_ex *e, int i)
{
	char t[160];

	snprintf(t, sizeof(t), "What is the capital city of %s?", PICK(countries, i)[0]);
	ex_text(e, t, "One city name; case does not matter.", PICK(countries, i)[1], NULL);
}

static void t_average(struct seed_ex *e, int i)
{
	char t[160], b[400], a[32];
	int c = 1 + (i * 11) % 50;

	snprintf(t, sizeof(t), "Average of %d, %d and %d", num_a(i), num_b(i), c);
	snprintf(b, sizeof(b), "The arithmetic mean of %d, %d and %d, to two decimal places.",
	         num_a(i), num_b(i), c);
	snprintf(a, sizeof(a), "%.4f", (num_a(i) + num_b(i) + c) / 3.0);
	ex_text(e, t, b, a, NULL);
	kiln_strlcpy(e->tolerance, "0.01", sizeof(e->tolerance));
}

static void t_join(struct seed_ex *e, int i)
{
	const char *w1 = PICK(words, i), *w2 = PICK(words, i + 4);
	char t[160], a[64];

	snprintf(t, sizeof(t), "Join \"%s\" and \"%s\" with a space", w1, w2);
	snprintf(a, sizeof(a), "%s %s", w1, w2);
	ex_text(e, t, "The first word, one space, the second word.", a, NULL);
}

static void t_larger(struct seed_ex *e, int i)
{
	char t[160], a[24];

	snprintf(t, sizeof(t), "Which is larger: %d or %d?", num_a(i) * 3, num_b(i) * 3);
	snprintf(a, sizeof(a), "%d", (num_a(i) > num_b(i) ? num_a(i) : num_b(i)) * 3);
	ex_text(e, t, "Pick the larger number.", a, NULL);
	snprintf(e->choices, sizeof(e->choices), "{\"%d\",\"%d\"}", num_a(i) * 3, num_b(i) * 3);
}

static void t_word_regex(struct seed_ex *e, int i)
{
	const char *w = PICK(words, i + 2);
	char first = w[0], last = w[strlen(w) - 1], t[160], a[32];

	snprintf(t, sizeof(t), "A word that starts with \"%c\" and ends with \"%c\"", first, last);
	snprintf(a, sizeof(a), "%c[a-z]*%c", first, last);
	ex_text(e, t, "Lower-case letters a to z only.", a, w);
}

static void t_planet(struct seed_ex *e, int i)
{
	char t[160];
	int n = 1 + i % 8;

	snprintf(t, sizeof(t), "Which planet is number %d from the Sun?", n);
	ex_text(e, t, "Pick one planet.", planets[n - 1], NULL);
	kiln_strlcpy(e->choices,
	             "{\"Mercury\",\"Venus\",\"Earth\",\"Mars\",\"Jupiter\",\"Saturn\",\"Uranus\","
	             "\"Neptune\"}",
	             sizeof(e->choices));
}

static void t_sqrt(struct seed_ex *e, int i)
{
	char t[160], a[24];

	snprintf(t, sizeof(t), "Square root of %d", num_a(i) * num_a(i));
	snprintf(a, sizeof(a), "%d", num_a(i));
	ex_text(e, t, "A whole number.", a, NULL);
	kiln_strlcpy(e->tolerance, "0.001", sizeof(e->tolerance));
}

static void t_time(struct seed_ex *e, int i)
{
	int h = i % 23;
	char t[160], a[48], s[8];

	snprintf(t, sizeof(t), "Write a time between %02d:00 and %02d:59", h, h + 1);
	snprintf(a, sizeof(a), "(%02d|%02d):[0-5][0-9]", h, h + 1);
	snprintf(s, sizeof(s), "%02d:30", h);
	ex_text(e, t, "24-hour clock, HH:MM.", a, s);
}

static void t_length(struct seed_ex *e, int i)
{
	const char *w = PICK(words, i + 7);
	char t[160], a[24];

	snprintf(t, sizeof(t), "How many letters are in \"%s\"?", w);
	snprintf(a, sizeof(a), "%zu", strlen(w));
	ex_text(e, t, "Count them.", a, NULL);
	kiln_strlcpy(e->tolerance, "0", sizeof(e->tolerance));
}

static void t_prime(struct seed_ex *e, int i)
{
	char t[160];
	int n = num_a(i) + num_b(i);

	snprintf(t, sizeof(t), "True or false: %d is a prime number", n);
	ex_text(e, t, "Pick one.", is_prime(n) ? "true" : "false", NULL);
	kiln_strlcpy(e->choices, "{\"true\",\"false\"}", sizeof(e->choices));
}

static void t_sides(struct seed_ex *e, int i)
{
	char t[160];

	snprintf(t, sizeof(t), "How many sides does a %s have?", PICK(shapes, i)[0]);
	ex_text(e, t, "A whole number.", PICK(shapes, i)[1], NULL);
	kiln_strlcpy(e->tolerance, "0", sizeof(e->tolerance));
}

/* The first four cover every kind; categories and kinds interleave. */
static const struct seed_template {
	const char *category;
	const char *kind;
	void (*fill)(struct seed_ex *e, int i);
} templates[] = {
    {"math", "numeric", t_sum},       {"strings", "exact", t_reverse},
    {"logic", "choice", t_parity},    {"regex", "regex", t_digits},
    {"trivia", "exact", t_capital},   {"math", "numeric", t_average},
    {"strings", "exact", t_join},     {"logic", "choice", t_larger},
    {"regex", "regex", t_word_regex}, {"trivia", "choice", t_planet},
    {"math", "numeric", t_sqrt},      {"regex", "regex", t_time},
    {"strings", "numeric", t_length}, {"logic", "choice", t_prime},
    {"trivia", "numeric", t_sides},
};

/* Make exercise i (1-based) and check it with the grader: its rule is
 * valid and its sample answer is graded correct. Returns 0, or -1 after
 * printing why (a bug in a template). */
static int seed_make(int i, struct seed_ex *e)
{
	const struct seed_template *t = &templates[(size_t)(i - 1) % KILN_ARRAY_LEN(templates)];
	char why[256];
	int kind = kiln_answer_kind_parse(t->kind), g;

	memset(e, 0, sizeof(*e));
	e->category = t->category;
	e->kind = t->kind;
	t->fill(e, i);
	g = kiln_answer_grade(kind, e->answer, e->tolerance[0] ? atof(e->tolerance) : 0, e->sample,
	                      strlen(e->sample), why, sizeof(why));
	if (g != 1 || (kind == KILN_ANSWER_CHOICE) != (e->choices[0] != '\0') ||
	    (kind == KILN_ANSWER_NUMERIC) != (e->tolerance[0] != '\0')) {
		ctl_err("seed template %s/%s made a bad exercise %d: %s", t->category, t->kind, i,
		        g < 0 ? why : "its sample answer is not graded correct");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- database */

static PGresult *seed_exec(struct kiln_db *db, const char *name, const char *sql, int n,
                           const char *const *v)
{
	char err[512];
	PGresult *r = kiln_db_query(db, name, sql, n, v, 0, NULL, err, sizeof(err));

	if (r == NULL)
		ctl_err("%s", err);
	return r;
}

/* A statement whose row count is wanted. Returns it, or -1. */
static long seed_count(struct kiln_db *db, const char *name, const char *sql, int n,
                       const char *const *v)
{
	PGresult *r = seed_exec(db, name, sql, n, v);
	long count;

	if (r == NULL)
		return -1;
	count = atol(PQcmdTuples(r));
	PQclear(r);
	return count;
}

/* The author's id into id (decimal). Returns 0, or -1. */
static int seed_author(struct kiln_db *db, char *id, size_t idlen)
{
	PGresult *r;

	if (seed_count(db, NULL, sql_author, 0, NULL) < 0 ||
	    (r = seed_exec(db, NULL, sql_author_id, 0, NULL)) == NULL)
		return -1;
	kiln_strlcpy(id, PQgetvalue(r, 0, 0), idlen);
	PQclear(r);
	return 0;
}

/* Insert exercises 1..n. Returns how many were new, or -1. */
static long seed_exercises(struct kiln_db *db, const char *author, int n)
{
	struct seed_ex e;
	char slug[32], difficulty[8], points[8];
	const char *v[11] = {slug, NULL, NULL, difficulty, points, NULL,
	                     NULL, NULL, NULL, NULL,       author};
	long added = 0, c;
	int i, level;

	for (i = 1; i <= n; i++) {
		if (seed_make(i, &e) < 0)
			return -1;
		snprintf(slug, sizeof(slug), "demo-%04d", i);
		/* Shifted each round of templates, so each gets every level. */
		level = 1 + (i * 3 + (i - 1) / (int)KILN_ARRAY_LEN(templates)) % 5;
		snprintf(difficulty, sizeof(difficulty), "%d", level);
		snprintf(points, sizeof(points), "%d", 10 * level);
		v[1] = e.title;
		v[2] = e.category;
		v[5] = e.body;
		v[6] = e.kind;
		v[7] = e.answer;
		v[8] = e.tolerance[0] ? e.tolerance : NULL;
		v[9] = e.choices[0] ? e.choices : NULL;
		if ((c = seed_count(db, "seed_exercise", sql_exercise, 11, v)) < 0)
			return -1;
		added += c;
	}
	return added;
}

/* The seed in one transaction. Returns CTL_OK or CTL_FAIL. */
static int seed_store(struct kiln_db *db, int exercises, int users, long *added)
{
	char author[24], m[16];
	const char *v[1] = {m};
	PGresult *r;
	int ok;

	snprintf(m, sizeof(m), "%d", users);
	if ((r = seed_exec(db, NULL, "BEGIN", 0, NULL)) == NULL)
		return CTL_FAIL;
	PQclear(r);
	ok = seed_author(db, author, sizeof(author)) == 0 &&
	     (added[0] = seed_exercises(db, author, exercises)) >= 0 &&
	     (added[1] = users ? seed_count(db, NULL, sql_users, 1, v) : 0) >= 0 &&
	     (added[2] = users ? seed_count(db, NULL, sql_progress, 0, NULL) : 0) >= 0;
	r = seed_exec(db, NULL, ok ? "COMMIT" : "ROLLBACK", 0, NULL);
	ok = ok && r != NULL;
	PQclear(r);
	if (ok)
		printf("seed: author %s (seed-author@kiln.invalid); %ld new of %d exercises, "
		       "%ld new of %d users, %ld new progress rows\n",
		       author, added[0], exercises, added[1], users, added[2]);
	return ok ? CTL_OK : CTL_FAIL;
}

/* After the commit, best effort: a leaderboard already in Redis would not
 * show the new progress until kiln-worker's next rebuild. (Nothing cached
 * needs to go: only single exercises and progress are cached, and the
 * seed adds exercises and touches no existing user's progress.) */
static void seed_leaderboard(struct ctl *ctx, struct kiln_db *db)
{
	struct kiln_redis *redis = kiln_redis_new(&ctx->cfg.redis);
	char err[512];
	int n;

	if (redis == NULL)
		return;
	n = kiln_leaderboard_rebuild(db, redis, ctx->cfg.api.leaderboard_size, err, sizeof(err));
	if (n < 0)
		ctl_err("warning: the leaderboard was not rebuilt (%s); kiln-worker rebuilds it "
		        "every leaderboard_interval",
		        err);
	else
		printf("seed: leaderboard rebuilt with %d users\n", n);
	kiln_redis_free(redis);
}

/* ---------------------------------------------------------------- command */

int ctl_seed(struct ctl *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"exercises", required_argument, NULL, 'e'},
	    {"users", required_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	int64_t exercises = -1, users = 0;
	long added[3] = {0, 0, 0};
	struct kiln_db *db;
	int c, rc, bad = 0;

	while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		bad = (c != 'e' && c != 'u') ||
		      kiln_parse_int(optarg, 0, SEED_MAX, c == 'e' ? &exercises : &users) < 0;
	if (bad || optind != argc || exercises < 0)
		return ctl_usage(usage_seed);
	if (ctl_load_config(ctx) < 0)
		return CTL_FAIL;
	if ((db = kiln_db_new(&ctx->cfg.database)) == NULL) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	rc = seed_store(db, (int)exercises, (int)users, added);
	if (rc == CTL_OK && added[2] > 0)
		seed_leaderboard(ctx, db);
	kiln_db_free(db);
	return rc;
}
