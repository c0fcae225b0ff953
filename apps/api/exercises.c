/* GET, POST /api/v1/exercises and GET, PATCH, DELETE /api/v1/exercises/{id}.
 *
 * The public representation of one exercise is served read-through from
 * memcached: the cached value (kind "exercise") is "<version>\n<json>", the
 * public JSON of a published exercise and the version its ETag needs, so a
 * hit, conditional or not, never touches PostgreSQL. Unpublished and unknown
 * exercises are never cached. A signed-in author or admin reads from the
 * primary, uncached, and its author and admins get the author
 * representation (with answer and tolerance). Every change commits, then
 * replaces the cached copy by a tombstone, then answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/db.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "api.h"
#include "validate.h"

#define CACHE_KIND "exercise"

/* The columns of one exercise: the public representation's, then the
 * author's answer and tolerance. */
#define EX_TIMES API_TS("created_at") ", " API_TS("updated_at")
#define EX_PUBLIC_COLS                                                                             \
	"id, slug, title, category, difficulty_level, points, body, answer_kind, "                 \
	"array_to_json(choices), published, created_by, " EX_TIMES ", version"
#define EX_COLS EX_PUBLIC_COLS ", answer, tolerance"

enum ex_col {
	COL_ID,
	COL_SLUG,
	COL_TITLE,
	COL_CATEGORY,
	COL_DIFFICULTY,
	COL_POINTS,
	COL_BODY,
	COL_KIND,
	COL_CHOICES,
	COL_PUBLISHED,
	COL_CREATED_BY,
	COL_CREATED_AT,
	COL_UPDATED_AT,
	COL_VERSION,
	COL_ANSWER,
	COL_TOLERANCE,
	COL_END
};

/* The public read never fetches the answer. */
static const char sql_get_public[] = "SELECT " EX_PUBLIC_COLS " FROM exercises WHERE id = $1";

static const char sql_get[] = "SELECT " EX_COLS " FROM exercises WHERE id = $1";

static const char sql_lock[] = "SELECT " EX_COLS " FROM exercises WHERE id = $1 FOR UPDATE";

/* $1..$11 the fields, $12 the author. */
static const char sql_insert[] =
    "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, "
    "answer, tolerance, choices, published, created_by) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING " EX_COLS;

/* $1..$11 the fields, $12 the id. */
static const char sql_update[] =
    "UPDATE exercises SET slug = $1, title = $2, category = $3, difficulty_level = $4, "
    "points = $5, body = $6, answer_kind = $7, answer = $8, tolerance = $9, choices = $10, "
    "published = $11, version = version + 1, updated_at = now() WHERE id = $12 "
    "RETURNING " EX_COLS;

static const char sql_unpublish[] =
    "UPDATE exercises SET published = false, version = version + 1, updated_at = now() "
    "WHERE id = $1";

/* The list: published exercises by id after the cursor ($1), limit + 1 rows
 * ($2) to tell whether a next page exists, then the filters that are set,
 * in this order. One fixed statement per filter set, so each is planned for
 * its own shape (the trigram index for q, the category index otherwise). */
#define LIST_COLS "id, slug, title, category, difficulty_level, points, " API_TS("updated_at")
#define LIST_SQL(filters)                                                                          \
	"SELECT " LIST_COLS " FROM exercises WHERE published AND id > $1" filters                  \
	" ORDER BY id LIMIT $2"
#define LIST_Q(n) " AND title ILIKE '%' || $" n " || '%'"

enum { LIST_CATEGORY = 1, LIST_DIFFICULTY = 2, LIST_Q = 4 };

static const struct list_stmt {
	const char *name, *sql;
} list_stmts[8] = {
    {"api_ex_list", LIST_SQL("")},
    {"api_ex_list_c", LIST_SQL(" AND category = $3")},
    {"api_ex_list_d", LIST_SQL(" AND difficulty_level = $3")},
    {"api_ex_list_cd", LIST_SQL(" AND category = $3 AND difficulty_level = $4")},
    {"api_ex_list_q", LIST_SQL(LIST_Q("3"))},
    {"api_ex_list_cq", LIST_SQL(" AND category = $3" LIST_Q("4"))},
    {"api_ex_list_dq", LIST_SQL(" AND difficulty_level = $3" LIST_Q("4"))},
    {"api_ex_list_cdq", LIST_SQL(" AND category = $3 AND difficulty_level = $4" LIST_Q("5"))},
};

/* How a column is written into JSON (SQL NULL is always null). */
enum col_format { J_RAW, J_STR, J_BOOL };

struct json_col {
	const char *prefix; /* the member name, with what comes before it */
	enum col_format type;
};

static const struct json_col ex_json[COL_END] = {
    [COL_ID] = {"{\"id\":", J_RAW},
    [COL_SLUG] = {",\"slug\":", J_STR},
    [COL_TITLE] = {",\"title\":", J_STR},
    [COL_CATEGORY] = {",\"category\":", J_STR},
    [COL_DIFFICULTY] = {",\"difficulty\":", J_RAW},
    [COL_POINTS] = {",\"points\":", J_RAW},
    [COL_BODY] = {",\"body\":", J_STR},
    [COL_KIND] = {",\"answer_kind\":", J_STR},
    [COL_CHOICES] = {",\"choices\":", J_RAW},
    [COL_PUBLISHED] = {",\"published\":", J_BOOL},
    [COL_CREATED_BY] = {",\"created_by\":", J_RAW},
    [COL_CREATED_AT] = {",\"created_at\":", J_STR},
    [COL_UPDATED_AT] = {",\"updated_at\":", J_STR},
    [COL_VERSION] = {",\"version\":", J_RAW},
    [COL_ANSWER] = {",\"answer\":", J_STR},
    [COL_TOLERANCE] = {",\"tolerance\":", J_RAW},
};

/* The columns of LIST_COLS. */
static const struct json_col list_json[] = {
    {"{\"id\":", J_RAW},         {",\"slug\":", J_STR},       {",\"title\":", J_STR},
    {",\"category\":", J_STR},   {",\"difficulty\":", J_RAW}, {",\"points\":", J_RAW},
    {",\"updated_at\":", J_STR},
};

/* The choices as a text[] literal for INSERT and UPDATE; kept between
 * requests so its memory is reused. */
static struct kiln_buf choices_sql;

/* Append row r as a JSON object of the first n columns described by cols. */
static void json_row(struct kiln_buf *b, PGresult *res, int r, const struct json_col *cols, int n)
{
	const char *v;
	int c;

	for (c = 0; c < n; c++) {
		kiln_buf_adds(b, cols[c].prefix);
		v = PQgetvalue(res, r, c);
		if (PQgetisnull(res, r, c))
			kiln_buf_adds(b, "null");
		else if (cols[c].type == J_BOOL)
			kiln_buf_adds(b, v[0] == 't' ? "true" : "false");
		else if (cols[c].type == J_RAW)
			kiln_buf_add(b, v, (size_t)PQgetlength(res, r, c));
		else
			kiln_pg_json_str(b, res, r, c);
	}
	kiln_buf_addc(b, '}');
}

/* The representation of the exercise in res into api.out; author adds
 * answer and tolerance. versioned puts "<version>\n" first (the cached
 * value). Returns the offset of the JSON in api.out. */
static size_t exercise_json(PGresult *res, int author, int versioned)
{
	size_t off;

	kiln_buf_reset(&api.out);
	if (versioned) {
		kiln_buf_add(&api.out, PQgetvalue(res, 0, COL_VERSION),
		             (size_t)PQgetlength(res, 0, COL_VERSION));
		kiln_buf_addc(&api.out, '\n');
	}
	off = api.out.len;
	json_row(&api.out, res, 0, ex_json, author ? COL_END : COL_ANSWER);
	return off;
}

/* "e<id>v<version>" with quotes, and "a" for the author representation. */
static void exercise_etag(char *out, size_t outlen, int64_t id, const char *version, int author)
{
	snprintf(out, outlen, "\"e%lldv%s%s\"", (long long)id, version, author ? "a" : "");
}

static void public_cache_control(struct kiln_req *req)
{
	int64_t max_age = kiln_server_config()->api.max_age_ms / 1000;
	char cc[48];

	if (max_age > 0)
		snprintf(cc, sizeof(cc), "public, max-age=%lld", (long long)max_age);
	else
		kiln_strlcpy(cc, "public, no-cache", sizeof(cc));
	kiln_resp_header(req, "Cache-Control", cc);
}

/* 200 with json, or 304 when If-None-Match names etag; both carry the ETag
 * and Cache-Control (public or the author's private one). Returns 0. */
static int exercise_send(struct kiln_req *req, const char *etag, int author, const char *json,
                         size_t len)
{
	const char *inm = kiln_req_header(req, "If-None-Match");

	kiln_resp_header(req, "ETag", etag);
	if (author)
		kiln_resp_header(req, "Cache-Control", "private, no-cache");
	else
		public_cache_control(req);
	/* The representation depends on the token: a shared cache must not
	 * give an author the public one it stored for someone else. */
	kiln_resp_header(req, "Vary", "Authorization");
	if (inm && api_validate_etag_match(inm, &etag, 1, 1))
		return kiln_resp_body(req, 304, "", "", 0);
	return kiln_resp_json_text(req, 200, json, len);
}

/* Answer from a cached "<version>\n<json>". Returns 0, or -1 when the value
 * is malformed (nothing written: the caller reads PostgreSQL). */
static int exercise_send_cached(struct kiln_req *req, int64_t id, const char *val, size_t len)
{
	const char *nl = memchr(val, '\n', len < 12 ? len : 12);
	char version[12], etag[64];
	size_t n, i;

	if (nl == NULL || nl == val || (size_t)(nl + 1 - val) >= len)
		return -1;
	n = (size_t)(nl - val);
	for (i = 0; i < n; i++) {
		if (val[i] < '0' || val[i] > '9')
			return -1;
	}
	memcpy(version, val, n);
	version[n] = '\0';
	exercise_etag(etag, sizeof(etag), id, version, 0);
	return exercise_send(req, etag, 0, nl + 1, len - n - 1);
}

/* Read-through: memcached, else the replica (the primary when it fails),
 * then fill the cache with a published exercise. Returns 0. */
static int exercise_get_public(struct kiln_req *req, int64_t id, const char *idtext)
{
	const char *p[1] = {idtext};
	int caching = api.cache.mc != NULL && api.cache.ttl_s > 0, rc;
	char *val = NULL, etag[64];
	size_t len, off;
	PGresult *res;

	if (caching) {
		rc = kiln_cache_get(&api.cache, CACHE_KIND, id, &val, &len);
		if (rc == 0) {
			rc = exercise_send_cached(req, id, val, len);
			free(val);
			api_count(rc == 0 ? C_CACHE_HITS : C_CACHE_ERRORS);
			if (rc == 0)
				return 0;
		} else {
			api_count(rc < 0 ? C_CACHE_ERRORS : C_CACHE_MISSES);
		}
	}
	if ((res = api_read_sql(req, "api_ex_get_public", sql_get_public, 1, p)) == NULL)
		return 0;
	if (PQntuples(res) != 1 || PQgetvalue(res, 0, COL_PUBLISHED)[0] != 't') {
		PQclear(res);
		return kiln_problem(req, 404, "no such exercise", NULL);
	}
	off = exercise_json(res, 0, 1);
	exercise_etag(etag, sizeof(etag), id, PQgetvalue(res, 0, COL_VERSION), 0);
	PQclear(res);
	if (caching && kiln_cache_fill(&api.cache, CACHE_KIND, id, api.out.data, api.out.len) < 0)
		api_count(C_CACHE_ERRORS);
	return exercise_send(req, etag, 0, api.out.data + off, api.out.len - off);
}

/* May c see the author representation of the exercise in res? */
static int exercise_mine(PGresult *res, const struct kiln_jwt_claims *c)
{
	return strcmp(c->role, "admin") == 0 || kiln_pg_int(res, 0, COL_CREATED_BY) == c->sub;
}

/* A signed-in author or admin: the primary, uncached. Its author and admins
 * get the author representation, other authors the public one (404 while
 * unpublished). Returns 0. */
static int exercise_get_author(struct kiln_req *req, int64_t id, const char *idtext,
                               const struct kiln_jwt_claims *c)
{
	const char *p[1] = {idtext};
	char etag[64];
	size_t off;
	PGresult *res;
	int mine;

	if ((res = api_sql(req, "api_ex_get", sql_get, 1, p)) == NULL)
		return 0;
	mine = PQntuples(res) == 1 && exercise_mine(res, c);
	if (PQntuples(res) != 1 || (!mine && PQgetvalue(res, 0, COL_PUBLISHED)[0] != 't')) {
		PQclear(res);
		return kiln_problem(req, 404, "no such exercise", NULL);
	}
	off = exercise_json(res, mine, 0);
	exercise_etag(etag, sizeof(etag), id, PQgetvalue(res, 0, COL_VERSION), mine);
	PQclear(res);
	return exercise_send(req, etag, mine, api.out.data + off, api.out.len - off);
}

int api_exercise_get(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	char idtext[24];
	int64_t id;
	int authed;

	if (kiln_req_id_param(req, "id", &id) < 0 || (authed = api_auth_optional(req, &c)) < 0)
		return 0;
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	/* Only the roles that can write exercises can be an exercise's author:
	 * everyone else reads the cached public representation. */
	if (authed && api_is_author(&c))
		return exercise_get_author(req, id, idtext, &c);
	return exercise_get_public(req, id, idtext);
}

/* One row of the list. */
static void exercise_list_row(struct kiln_buf *b, PGresult *res, int r)
{
	json_row(b, res, r, list_json, (int)KILN_ARRAY_LEN(list_json));
}

int api_exercises_list(struct kiln_req *req)
{
	const struct kiln_query *q = kiln_req_query(req);
	struct kiln_field_errors errs = {0};
	struct api_list_filter f;
	char after[24], lim[24];
	const char *p[5] = {after, lim};
	int64_t limit, last = 0;
	int mask = 0, n = 2;
	PGresult *res;

	if (q == NULL)
		return 0;
	api_validate_list(q, &f, &errs);
	if (api_page_params(req, q, f.scope, &limit, &last, &errs) < 0)
		return 0;
	snprintf(after, sizeof(after), "%lld", (long long)last);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	if (f.category) {
		mask |= LIST_CATEGORY;
		p[n++] = f.category;
	}
	if (f.difficulty) {
		mask |= LIST_DIFFICULTY;
		p[n++] = f.difficulty_text;
	}
	if (f.q) {
		mask |= LIST_Q;
		p[n++] = f.q_like;
	}
	res = api_read_sql(req, list_stmts[mask].name, list_stmts[mask].sql, n, p);
	if (res == NULL)
		return 0;
	api_page_json(res, limit, f.scope, exercise_list_row);
	PQclear(res);
	public_cache_control(req);
	return api_send(req, 200);
}

/* The start of every write: maintenance mode (503), a valid token (401),
 * the author or admin role (403). Returns 0, or -1 after writing the
 * response. */
static int exercise_write_begin(struct kiln_req *req, struct kiln_jwt_claims *c)
{
	if (api_writable(req) < 0 || api_auth(req, c) < 0)
		return -1;
	if (api_is_author(c))
		return 0;
	kiln_problem(req, 403, "writing exercises needs the author or admin role", NULL);
	return -1;
}

/* The statement parameters of ex: $1..$11 of sql_insert and sql_update. */
struct ex_params {
	const char *v[12];
	char difficulty[24], points[24], tolerance[32];
};

static void exercise_params(struct ex_params *p, const struct api_exercise *ex)
{
	snprintf(p->difficulty, sizeof(p->difficulty), "%lld", (long long)ex->difficulty);
	snprintf(p->points, sizeof(p->points), "%lld", (long long)ex->points);
	snprintf(p->tolerance, sizeof(p->tolerance), "%.17g", ex->tolerance);
	kiln_buf_reset(&choices_sql);
	if (ex->nchoices > 0)
		api_validate_choices_sql(ex, &choices_sql);
	p->v[0] = ex->slug;
	p->v[1] = ex->title;
	p->v[2] = ex->category;
	p->v[3] = p->difficulty;
	p->v[4] = p->points;
	p->v[5] = ex->body;
	p->v[6] = kiln_answer_kind_name(ex->kind);
	p->v[7] = ex->answer;
	p->v[8] = ex->has_tolerance ? p->tolerance : NULL;
	p->v[9] = ex->nchoices > 0 ? choices_sql.data : NULL;
	p->v[10] = ex->published ? "true" : "false";
}

/* INSERT or UPDATE of an exercise on the primary. Returns the row, or NULL
 * after writing 409 (the slug is taken: unique violation, SQLSTATE 23505),
 * 500 or 503. */
static PGresult *exercise_store(struct kiln_req *req, const char *name, const char *sql,
                                const struct ex_params *p)
{
	struct kiln_field_errors errs = {0};
	char err[256];
	int failed = 0;
	PGresult *res =
	    kiln_db_query(kiln_server_db(), name, sql, 12, p->v, 0, &failed, err, sizeof(err));

	if (res != NULL)
		return res;
	if (failed == KILN_DB_CONFLICT) {
		kiln_field_error_add(&errs, "slug", "is already taken");
		kiln_problem(req, 409, "an exercise with this slug exists", &errs);
		return NULL;
	}
	kiln_error("statement failed", "statement=%s error=%s", name, err);
	if (failed == KILN_DB_UNAVAILABLE)
		kiln_req_unavailable(req);
	else
		kiln_problem(req, 500, NULL, NULL);
	return NULL;
}

/* The author representation of the row in res as the response (status),
 * with its ETag. Returns 0. */
static int exercise_send_author(struct kiln_req *req, PGresult *res, int status)
{
	char etag[64];

	exercise_json(res, 1, 0);
	exercise_etag(etag, sizeof(etag), kiln_pg_int(res, 0, COL_ID),
	              PQgetvalue(res, 0, COL_VERSION), 1);
	kiln_resp_header(req, "ETag", etag);
	kiln_resp_header(req, "Cache-Control", "private, no-cache");
	return api_send(req, status);
}

int api_exercise_create(struct kiln_req *req)
{
	struct kiln_jwt_claims c;
	struct kiln_input in;
	struct api_exercise ex;
	struct ex_params p;
	char author[24], location[64];
	PGresult *res;

	if (exercise_write_begin(req, &c) < 0 ||
	    kiln_input_begin(req, &in, api_validate_fields) < 0)
		return 0;
	api_validate_init(&ex);
	api_validate_exercise(in.obj, &ex, 0, &in.errs);
	if (kiln_input_check(req, &in) == 0) {
		exercise_params(&p, &ex);
		snprintf(author, sizeof(author), "%lld", (long long)c.sub);
		p.v[11] = author;
		res = exercise_store(req, "api_ex_insert", sql_insert, &p);
		if (res != NULL) {
			snprintf(location, sizeof(location), "/api/v1/exercises/%s",
			         PQgetvalue(res, 0, COL_ID));
			kiln_resp_header(req, "Location", location);
			kiln_info("exercise created", "exercise_id=%s user_id=%s",
			          PQgetvalue(res, 0, COL_ID), author);
			exercise_send_author(req, res, 201);
			PQclear(res);
		}
	}
	kiln_input_free(&in);
	return 0;
}

/* Inside a transaction: lock the exercise for a change by c. Returns the
 * row, or NULL after writing 404 (unknown, or unpublished and not c's),
 * 403 (not c's), 412 (if_match, when given, names another version) or
 * 503. */
static PGresult *exercise_lock(struct kiln_req *req, const char *idtext,
                               const struct kiln_jwt_claims *c, const char *if_match)
{
	const char *p[1] = {idtext}, *tags[2];
	char mine_tag[64], public_tag[64];
	PGresult *res = api_sql(req, "api_ex_lock", sql_lock, 1, p);
	const char *version;
	int64_t id;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		kiln_problem(req, 404, "no such exercise", NULL);
	} else if (!exercise_mine(res, c)) {
		if (PQgetvalue(res, 0, COL_PUBLISHED)[0] == 't')
			kiln_problem(req, 403, "only its author or an admin may change it", NULL);
		else
			kiln_problem(req, 404, "no such exercise", NULL);
	} else {
		id = kiln_pg_int(res, 0, COL_ID);
		version = PQgetvalue(res, 0, COL_VERSION);
		exercise_etag(mine_tag, sizeof(mine_tag), id, version, 1);
		exercise_etag(public_tag, sizeof(public_tag), id, version, 0);
		tags[0] = mine_tag;
		tags[1] = public_tag;
		if (if_match == NULL || api_validate_etag_match(if_match, tags, 2, 0))
			return res;
		kiln_problem(req, 412, "the exercise has changed: If-Match names another version",
		             NULL);
	}
	PQclear(res);
	return NULL;
}

/* After a committed change: tombstone the cached copy, before answering. */
static void exercise_invalidate(int64_t id)
{
	if (kiln_cache_invalidate(&api.cache, CACHE_KIND, id) == 0)
		return;
	api_count(C_CACHE_ERRORS);
	kiln_warn("cache invalidation failed; the cached copy expires with its ttl",
	          "exercise_id=%lld", (long long)id);
}

/* The stored row of res as an api_exercise to lay a PATCH over; choices
 * are parsed into *arr (json_object_put it). Returns 0, or -1 when the row
 * cannot be read back (a server error). */
static int exercise_from_row(PGresult *res, struct api_exercise *ex, json_object **arr)
{
	char err[64];

	api_validate_init(ex);
	ex->slug = PQgetvalue(res, 0, COL_SLUG);
	ex->title = PQgetvalue(res, 0, COL_TITLE);
	ex->category = PQgetvalue(res, 0, COL_CATEGORY);
	ex->difficulty = kiln_pg_int(res, 0, COL_DIFFICULTY);
	ex->points = kiln_pg_int(res, 0, COL_POINTS);
	ex->body = PQgetvalue(res, 0, COL_BODY);
	ex->kind = kiln_answer_kind_parse(PQgetvalue(res, 0, COL_KIND));
	ex->answer = PQgetvalue(res, 0, COL_ANSWER);
	ex->has_tolerance = !PQgetisnull(res, 0, COL_TOLERANCE);
	ex->tolerance = ex->has_tolerance ? strtod(PQgetvalue(res, 0, COL_TOLERANCE), NULL) : 0;
	ex->published = PQgetvalue(res, 0, COL_PUBLISHED)[0] == 't';
	*arr = NULL;
	if (PQgetisnull(res, 0, COL_CHOICES))
		return ex->kind < 0 ? -1 : 0;
	*arr = kiln_json_parse(PQgetvalue(res, 0, COL_CHOICES),
	                       (size_t)PQgetlength(res, 0, COL_CHOICES), 2, err, sizeof(err));
	return ex->kind < 0 || *arr == NULL || api_validate_choices(*arr, ex) != NULL ? -1 : 0;
}

/* Inside a transaction: lock, merge the body over the row, validate, store.
 * Returns the updated row, or NULL after writing the response. */
static PGresult *exercise_patch(struct kiln_req *req, const char *idtext,
                                const struct kiln_jwt_claims *c, const char *if_match,
                                struct kiln_input *in)
{
	struct api_exercise ex;
	struct ex_params p;
	json_object *arr = NULL;
	PGresult *row, *res = NULL;

	if ((row = exercise_lock(req, idtext, c, if_match)) == NULL)
		return NULL;
	if (exercise_from_row(row, &ex, &arr) < 0) {
		kiln_error("stored exercise unreadable", "exercise_id=%s", idtext);
		kiln_problem(req, 500, NULL, NULL);
		goto out;
	}
	api_validate_exercise(in->obj, &ex, 1, &in->errs);
	if (kiln_input_check(req, in) < 0)
		goto out;
	exercise_params(&p, &ex);
	p.v[11] = idtext;
	res = exercise_store(req, "api_ex_update", sql_update, &p);
out:
	if (arr)
		json_object_put(arr);
	PQclear(row);
	return res;
}

int api_exercise_update(struct kiln_req *req)
{
	struct kiln_db *db = kiln_server_db();
	struct kiln_jwt_claims c;
	struct kiln_input in;
	const char *if_match;
	char idtext[24];
	int64_t id;
	PGresult *res;

	if (kiln_req_id_param(req, "id", &id) < 0 || exercise_write_begin(req, &c) < 0)
		return 0;
	if ((if_match = kiln_req_header(req, "If-Match")) == NULL)
		return kiln_problem(req, 428, "send If-Match with the exercise's ETag", NULL);
	if (kiln_input_begin(req, &in, api_validate_fields) < 0)
		return 0;
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	if (kiln_req_begin(req, db) == 0) {
		res = exercise_patch(req, idtext, &c, if_match, &in);
		if (res == NULL) {
			kiln_req_rollback(db);
		} else {
			if (kiln_req_commit(req, db) == 0) {
				exercise_invalidate(id);
				kiln_info("exercise changed", "exercise_id=%s user_id=%lld", idtext,
				          (long long)c.sub);
				exercise_send_author(req, res, 200);
			}
			PQclear(res);
		}
	}
	kiln_input_free(&in);
	return 0;
}

int api_exercise_delete(struct kiln_req *req)
{
	struct kiln_db *db = kiln_server_db();
	struct kiln_jwt_claims c;
	char idtext[24];
	const char *p[1] = {idtext};
	int64_t id;
	PGresult *res;
	int published;

	if (kiln_req_id_param(req, "id", &id) < 0 || exercise_write_begin(req, &c) < 0)
		return 0;
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	if (kiln_req_begin(req, db) < 0)
		return 0;
	res = exercise_lock(req, idtext, &c, kiln_req_header(req, "If-Match"));
	if (res == NULL) {
		kiln_req_rollback(db);
		return 0;
	}
	published = PQgetvalue(res, 0, COL_PUBLISHED)[0] == 't';
	PQclear(res);
	/* Already unpublished: nothing changes, and the answer is the same. */
	if (published) {
		if ((res = api_sql(req, "api_ex_unpublish", sql_unpublish, 1, p)) == NULL) {
			kiln_req_rollback(db);
			return 0;
		}
		PQclear(res);
	}
	if (kiln_req_commit(req, db) < 0)
		return 0;
	exercise_invalidate(id);
	kiln_info("exercise unpublished", "exercise_id=%s user_id=%lld", idtext, (long long)c.sub);
	return kiln_resp_body(req, 204, "", "", 0);
}
