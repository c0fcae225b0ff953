/* page: keyset-page parameters and bodies (see kiln/page.h). */
#include <stdio.h>

#include "kiln/page.h"
#include "kiln/util.h"

int kiln_page_params(struct kiln_req *req, const struct kiln_cursor_key *key,
                     const struct kiln_query *q, const char *scope, int64_t *limit, int64_t *after,
                     struct kiln_field_errors *errs)
{
	const char *v = kiln_query_get(q, "limit"), *cursor = kiln_query_get(q, "cursor");
	int filters_ok = errs->n == 0;

	*limit = KILN_PAGE_LIMIT_DEFAULT;
	if (v != NULL && kiln_parse_int(v, 1, KILN_PAGE_LIMIT_MAX, limit) < 0)
		kiln_field_error_add(errs, "limit", "must be an integer from 1 to 100");
	if (filters_ok && cursor != NULL && kiln_cursor_decode(key, scope, cursor, after, 1) < 0)
		kiln_field_error_add(errs, "cursor", "is invalid or belongs to another query");
	if (errs->n == 0)
		return 0;
	kiln_problem(req, 422, "the query has invalid parameters", errs);
	return -1;
}

void kiln_page_next_cursor(struct kiln_buf *b, const struct kiln_cursor_key *key, const char *scope,
                           const int64_t *keys, int n, int last)
{
	char text[KILN_CURSOR_TEXT_MAX];

	if (last || kiln_cursor_encode(key, scope, keys, n, text, sizeof(text)) < 0) {
		kiln_buf_adds(b, ",\"next_cursor\":null");
		return;
	}
	kiln_buf_printf(b, ",\"next_cursor\":\"%s\"", text);
}

void kiln_page_json(struct kiln_buf *out, const struct kiln_cursor_key *key, PGresult *res,
                    int64_t limit, const char *scope, kiln_page_row_fn row)
{
	int n = PQntuples(res), shown = n > limit ? (int)limit : n, r;
	int64_t last = 0;

	kiln_buf_reset(out);
	kiln_buf_adds(out, "{\"items\":[");
	for (r = 0; r < shown; r++) {
		if (r)
			kiln_buf_addc(out, ',');
		row(out, res, r);
	}
	kiln_buf_addc(out, ']');
	if (shown > 0 && !PQgetisnull(res, shown - 1, 0) &&
	    kiln_parse_int(PQgetvalue(res, shown - 1, 0), INT64_MIN, INT64_MAX, &last) < 0)
		last = 0;
	kiln_page_next_cursor(out, key, scope, &last, 1, n <= limit);
	kiln_buf_addc(out, '}');
}
