/* page: keyset pages of a JSON list, as kiln-api and kiln-admin serve them:
 * "limit" 1..KILN_PAGE_LIMIT_MAX (default KILN_PAGE_LIMIT_DEFAULT), a signed
 * "cursor" (kiln/cursor.h) bound to the list's filters (its "scope"), and
 * the body {"items":[...],"next_cursor":"..."|null}. */
#ifndef KILN_PAGE_H
#define KILN_PAGE_H

#include <stdint.h>
#include <libpq-fe.h>

#include "kiln/buf.h"
#include "kiln/cursor.h"
#include "kiln/http.h"

#define KILN_PAGE_LIMIT_DEFAULT 20
#define KILN_PAGE_LIMIT_MAX     100

/* The paging parameters of a keyset list, once its filters were read (their
 * errors in errs, scope built from them): "limit" and "cursor", whose key
 * (signed with key) replaces *after (left as is without a cursor; not read
 * when the filters had errors, as the scope is then meaningless). Returns
 * 0, or -1 after writing 422 with every field error (e.g. "cursor": "is
 * invalid or belongs to another query"). */
int kiln_page_params(struct kiln_req *req, const struct kiln_cursor_key *key,
                     const struct kiln_query *q, const char *scope, int64_t *limit, int64_t *after,
                     struct kiln_field_errors *errs);

/* Append ,"next_cursor":"..." (or null when last is set, or the cursor
 * cannot be made) to b. */
void kiln_page_next_cursor(struct kiln_buf *b, const struct kiln_cursor_key *key, const char *scope,
                           const int64_t *keys, int n, int last);

/* Write one list item: row r of res as JSON into b. */
typedef void (*kiln_page_row_fn)(struct kiln_buf *b, PGresult *res, int r);

/* Replace out by {"items":[row(each row)...],"next_cursor":...} from res,
 * queried with LIMIT limit + 1 (at most limit rows shown; one more means a
 * next page), the cursor keyed on column 0 (the id) of the last row shown. */
void kiln_page_json(struct kiln_buf *out, const struct kiln_cursor_key *key, PGresult *res,
                    int64_t limit, const char *scope, kiln_page_row_fn row);

#endif
