/* http: the request view over a FastCGI (CGI/1.1) environment, query and body
 * parsing with limits, the response builder and problem+json errors. The
 * parsing functions are pure so unit tests and fuzzers drive them directly. */
#ifndef KILN_HTTP_H
#define KILN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/buf.h"
#include "kiln/json.h"
#include "kiln/router.h"

#define KILN_REQUEST_ID_MAX   64
#define KILN_QUERY_MAX_PARAMS 32
#define KILN_QUERY_MAX_LEN    4096

/* Reads up to n bytes of body; returns bytes read, 0 at end, -1 on error. */
typedef int (*kiln_body_read_fn)(void *ctx, char *buf, int n);

struct kiln_resp {
	int status;              /* 0 until set */
	struct kiln_buf headers; /* "Name: value\r\n" lines, without Status/Content-* */
	struct kiln_buf body;
	char content_type[96];
};

struct kiln_query_param {
	const char *name;  /* decoded, NUL-terminated */
	const char *value; /* decoded, NUL-terminated ("" for "a" or "a=") */
};

struct kiln_query {
	int n;
	struct kiln_query_param p[KILN_QUERY_MAX_PARAMS];
	struct kiln_buf store;
};

struct kiln_req {
	char **envp; /* the FastCGI parameters, "NAME=value" */
	const char *method;
	const char *path;  /* decoded path without query (DOCUMENT_URI, else PATH_INFO) */
	const char *query; /* raw QUERY_STRING, "" when none */
	const char *remote_addr;
	const char *content_type; /* "" when none */
	int64_t content_length;   /* -1 when absent */
	int64_t max_body;
	int head; /* HEAD: send headers only */
	char request_id[KILN_REQUEST_ID_MAX + 1];
	char trace_id[33]; /* W3C trace-id, "" when no valid traceparent */

	/* routing */
	int route_index;   /* -1 when none matched */
	const char *route; /* matched pattern, or "unmatched" */
	struct kiln_match match;

	/* body, read on demand */
	kiln_body_read_fn read;
	void *read_ctx;
	int body_read; /* 0 not yet, 1 read, else the error status it returned */
	struct kiln_buf body;

	struct kiln_resp resp;
	int64_t start_ns;
	struct kiln_field_errors *errors; /* optional, for problem+json errors[] */
	struct kiln_buf path_buf;         /* owns path when it had to be cut from REQUEST_URI */
};

/* Prepare req for a new request from envp (buffers are kept from the last
 * request to avoid per-request allocation). Sets request_id from a
 * well-formed X-Request-ID ([A-Za-z0-9._-]{1,64}) or a fresh random one, and
 * trace_id from a valid W3C traceparent. Returns 0, or the HTTP status to
 * answer at once: 400 for a malformed Content-Length, 413 when it exceeds
 * max_body (decided before any byte of the body is read). */
int kiln_req_init(struct kiln_req *req, char **envp, kiln_body_read_fn read, void *read_ctx,
                  int64_t max_body);

/* Release the buffers of req (at worker exit). */
void kiln_req_free(struct kiln_req *req);

/* A FastCGI parameter by exact name ("REQUEST_METHOD"), or NULL. */
const char *kiln_req_env(const struct kiln_req *req, const char *name);

/* A request header by HTTP name ("X-Request-ID" → HTTP_X_REQUEST_ID), or NULL. */
const char *kiln_req_header(const struct kiln_req *req, const char *name);

/* Matched route parameter by name, or NULL. */
const char *kiln_req_param(const struct kiln_req *req, const char *name);

/* Read the whole body into req->body (at most max_body bytes, even when
 * Content-Length lied). Returns 0, 413 when larger than max_body, 400 when
 * it ends before Content-Length bytes, 500 on a read error. */
int kiln_req_read_body(struct kiln_req *req);

/* Parse a query string (application/x-www-form-urlencoded): '+' is a space,
 * %XX decoded. Returns 0, or -1 when longer than KILN_QUERY_MAX_LEN, with
 * more than KILN_QUERY_MAX_PARAMS pairs, a bad %-escape, or a decoded NUL. */
int kiln_query_parse(struct kiln_query *q, const char *qs);
void kiln_query_free(struct kiln_query *q);

/* First value of name, or NULL. */
const char *kiln_query_get(const struct kiln_query *q, const char *name);

/* Reason phrase for a status code ("Not Found"); "Unknown" when unlisted. */
const char *kiln_http_reason(int status);

/* Response building. Each returns 0, or -1 (out of memory, or CR/LF/NUL in a
 * header name or value, which is refused). */
int kiln_resp_header(struct kiln_req *req, const char *name, const char *value);
int kiln_resp_body(struct kiln_req *req, int status, const char *content_type, const void *body,
                   size_t len);
int kiln_resp_json_text(struct kiln_req *req, int status, const char *json, size_t len);

/* CORS. origins is a space-separated list of allowed origins ("" = CORS
 * off). Adds "Vary: Origin" whenever origins is set; when the request's
 * Origin is listed, Access-Control-Allow-Origin (that origin) and either,
 * for a preflight (OPTIONS with Access-Control-Request-Method),
 * Allow-Methods (allow, the route's methods), Allow-Headers and Max-Age, or
 * Expose-Headers. Returns 1 when the origin was allowed, else 0. */
int kiln_cors_apply(struct kiln_req *req, const char *origins, const char *allow);

/* problem+json (RFC 9457): {type,title,status,detail,request_id[,errors]}.
 * errors (may be NULL) becomes errors[] of {field, reason}. type is
 * "about:blank" unless given. Returns 0, or -1 when out of memory. */
int kiln_problem(struct kiln_req *req, int status, const char *detail,
                 const struct kiln_field_errors *errors);
int kiln_problem_typed(struct kiln_req *req, int status, const char *type, const char *title,
                       const char *detail, const struct kiln_field_errors *errors);

/* Serialize the response as a CGI response ("Status: ...\r\n", headers,
 * Content-Type, Content-Length, X-Request-ID, blank line, body unless HEAD).
 * A response with status 0 becomes 500. Returns 0, or -1 when out of memory. */
int kiln_resp_serialize(const struct kiln_req *req, struct kiln_buf *out);

#endif
