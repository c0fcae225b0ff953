/* http: the request view over a CGI/1.1 environment, body and query parsing
 * with limits, the response builder, problem+json and CGI serialization. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "kiln/http.h"
#include "kiln/util.h"

/* Largest Content-Length taken seriously: beyond it the value is junk. */
#define HTTP_CONTENT_LENGTH_MAX (INT64_C(1) << 53)
#define HTTP_READ_CHUNK         16384
#define HTTP_HEADER_NAME_MAX    128

/* A zeroed kiln_buf has data == NULL; give it the empty string once, and
 * otherwise keep its allocation so a warm worker allocates nothing. */
static void http_buf_ready(struct kiln_buf *b)
{
	if (b->data == NULL)
		kiln_buf_init(b);
	else
		kiln_buf_reset(b);
}

static int http_is_hex_lower(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static int http_hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int http_all_zero(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '0')
			return 0;
	}
	return 1;
}

static int http_request_id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++) {
		char c = id[i];
		if (i == KILN_REQUEST_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return i > 0;
}

/* A fresh id: 16 random bytes as hex. When the CSPRNG fails (it should not)
 * an id unique to this process and moment still beats failing the request. */
static void http_new_request_id(char *out)
{
	static unsigned int counter;
	unsigned char r[16];
	size_t i;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		snprintf(out, KILN_REQUEST_ID_MAX + 1, "%016llx%08x%08x",
		         (unsigned long long)kiln_wall_ms(), (unsigned int)getpid(), ++counter);
		return;
	}
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* W3C traceparent, version 00: "00-<trace-id 32>-<parent-id 16>-<flags 2>". */
static void http_set_trace_id(struct kiln_req *req, const char *tp)
{
	req->trace_id[0] = '\0';
	if (tp == NULL || strlen(tp) != 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' ||
	    tp[52] != '-')
		return;
	if (!http_is_hex_lower(tp + 3, 32) || !http_is_hex_lower(tp + 36, 16) ||
	    http_hex_val(tp[53]) < 0 || http_hex_val(tp[54]) < 0)
		return;
	if (http_all_zero(tp + 3, 32) || http_all_zero(tp + 36, 16))
		return;
	memcpy(req->trace_id, tp + 3, 32);
	req->trace_id[32] = '\0';
}

/* DOCUMENT_URI, else PATH_INFO, else REQUEST_URI without its query. Returns
 * 0, or -1 when out of memory. */
static int http_set_path(struct kiln_req *req)
{
	const char *p = kiln_req_env(req, "DOCUMENT_URI");
	const char *q;

	if (p == NULL || *p == '\0')
		p = kiln_req_env(req, "PATH_INFO");
	if (p == NULL || *p == '\0') {
		p = kiln_req_env(req, "REQUEST_URI");
		if (p != NULL && (q = strchr(p, '?')) != NULL) {
			if (kiln_buf_add(&req->path_buf, p, (size_t)(q - p)) < 0)
				return -1;
			p = req->path_buf.data;
		}
	}
	req->path = p ? p : "";
	return 0;
}

static const char *http_env_or_empty(const struct kiln_req *req, const char *name)
{
	const char *v = kiln_req_env(req, name);

	return v ? v : "";
}

/* Content-Length: absent or empty is -1; otherwise digits only, at most
 * 2^53. Returns 0, 400 when malformed, 413 when over max_body. */
static int http_set_content_length(struct kiln_req *req)
{
	const char *cl = kiln_req_env(req, "CONTENT_LENGTH");
	const char *p;

	req->content_length = -1;
	if (cl == NULL || *cl == '\0')
		return 0;
	for (p = cl; *p; p++) {
		if (*p < '0' || *p > '9')
			return 400;
	}
	if (kiln_parse_int(cl, 0, HTTP_CONTENT_LENGTH_MAX, &req->content_length) < 0)
		return 400;
	if (req->content_length > req->max_body)
		return 413;
	return 0;
}

static void http_resp_reset(struct kiln_resp *resp)
{
	resp->status = 0;
	http_buf_ready(&resp->headers);
	http_buf_ready(&resp->body);
	resp->content_type[0] = '\0';
}

int kiln_req_init(struct kiln_req *req, char **envp, kiln_body_read_fn read, void *read_ctx,
                  int64_t max_body)
{
	const char *id;

	req->start_ns = kiln_now_ns();
	req->envp = envp;
	req->read = read;
	req->read_ctx = read_ctx;
	req->max_body = max_body < 0 ? 0 : max_body;
	req->body_read = 0;
	http_buf_ready(&req->body);
	http_buf_ready(&req->path_buf);
	http_resp_reset(&req->resp);
	req->route_index = -1;
	req->route = "unmatched";
	req->match.nparams = 0;
	req->match.allow[0] = '\0';
	req->errors = NULL;

	id = kiln_req_env(req, "HTTP_X_REQUEST_ID");
	if (id != NULL && http_request_id_ok(id))
		kiln_strlcpy(req->request_id, id, sizeof(req->request_id));
	else
		http_new_request_id(req->request_id);
	http_set_trace_id(req, kiln_req_env(req, "HTTP_TRACEPARENT"));

	req->method = http_env_or_empty(req, "REQUEST_METHOD");
	req->head = strcmp(req->method, "HEAD") == 0;
	req->query = http_env_or_empty(req, "QUERY_STRING");
	req->remote_addr = http_env_or_empty(req, "REMOTE_ADDR");
	req->content_type = http_env_or_empty(req, "CONTENT_TYPE");
	if (http_set_path(req) < 0)
		return 500;
	if (req->method[0] == '\0')
		return 400;
	return http_set_content_length(req);
}

void kiln_req_free(struct kiln_req *req)
{
	kiln_buf_free(&req->body);
	kiln_buf_free(&req->path_buf);
	kiln_buf_free(&req->resp.headers);
	kiln_buf_free(&req->resp.body);
}

const char *kiln_req_env(const struct kiln_req *req, const char *name)
{
	size_t n = strlen(name);
	char **e;

	if (req->envp == NULL)
		return NULL;
	for (e = req->envp; *e; e++) {
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

const char *kiln_req_header(const struct kiln_req *req, const char *name)
{
	char env[5 + HTTP_HEADER_NAME_MAX + 1];
	size_t n = strlen(name), i;

	/* '=' would let the lookup end inside another parameter's value. */
	if (n == 0 || n > HTTP_HEADER_NAME_MAX || strchr(name, '=') != NULL)
		return NULL;
	if (strcasecmp(name, "Content-Type") == 0)
		return kiln_req_env(req, "CONTENT_TYPE");
	if (strcasecmp(name, "Content-Length") == 0)
		return kiln_req_env(req, "CONTENT_LENGTH");
	memcpy(env, "HTTP_", 5);
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c == '-')
			c = '_';
		env[5 + i] = c;
	}
	env[5 + n] = '\0';
	return kiln_req_env(req, env);
}

const char *kiln_req_param(const struct kiln_req *req, const char *name)
{
	return kiln_match_param(&req->match, name);
}

/* Read exactly want bytes into req->body. Returns 0, 400 when the stream
 * ends early, 500 on a read error. */
static int http_read_known(struct kiln_req *req, size_t want)
{
	struct kiln_buf *b = &req->body;
	size_t chunk;
	int n;

	if (kiln_buf_grow(b, want) < 0)
		return 500;
	while (b->len < want) {
		chunk = want - b->len < HTTP_READ_CHUNK ? want - b->len : HTTP_READ_CHUNK;
		n = req->read ? req->read(req->read_ctx, b->data + b->len, (int)chunk) : 0;
		if (n < 0 || (size_t)n > chunk)
			return 500;
		if (n == 0)
			return 400;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
	return 0;
}

/* Read until the end of the stream, holding at most max_body bytes: once
 * the limit is reached, one probe byte tells whether more was coming.
 * Returns 0, 413 when larger than max_body, 500 on a read error. */
static int http_read_unknown(struct kiln_req *req)
{
	struct kiln_buf *b = &req->body;
	size_t max = (size_t)req->max_body, chunk;
	char probe;
	int n;

	if (req->read == NULL)
		return 0;
	for (;;) {
		if (b->len == max) {
			n = req->read(req->read_ctx, &probe, 1);
			return n < 0 ? 500 : n > 0 ? 413 : 0;
		}
		chunk = max - b->len < HTTP_READ_CHUNK ? max - b->len : HTTP_READ_CHUNK;
		if (kiln_buf_grow(b, chunk) < 0)
			return 500;
		n = req->read(req->read_ctx, b->data + b->len, (int)chunk);
		if (n < 0 || (size_t)n > chunk)
			return 500;
		if (n == 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

int kiln_req_read_body(struct kiln_req *req)
{
	int rc;

	if (req->body_read)
		return req->body_read == 1 ? 0 : req->body_read;
	http_buf_ready(&req->body);
	if (req->content_length > req->max_body)
		rc = 413;
	else if (req->content_length >= 0)
		rc = http_read_known(req, (size_t)req->content_length);
	else
		rc = http_read_unknown(req);
	req->body_read = rc ? rc : 1;
	return rc;
}

/* Decode one form-urlencoded component [s, s+n) into w, NUL-terminated.
 * Returns the bytes written before the NUL, or -1 on a bad escape or a
 * decoded NUL. */
static int http_form_decode(const char *s, size_t n, char *w)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (n - i < 3)
				return -1;
			hi = http_hex_val(s[i + 1]);
			lo = http_hex_val(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		w[o++] = c;
	}
	w[o] = '\0';
	return (int)o;
}

/* Decode one "name[=value]" pair into the store at *w. Returns 0 or -1. */
static int http_query_pair(struct kiln_query *q, const char *s, size_t n, char **w)
{
	const char *eq = memchr(s, '=', n);
	size_t name_len = eq ? (size_t)(eq - s) : n;
	int k;

	k = http_form_decode(s, name_len, *w);
	if (k < 0)
		return -1;
	q->p[q->n].name = *w;
	*w += k + 1;
	k = eq ? http_form_decode(eq + 1, n - name_len - 1, *w) : http_form_decode("", 0, *w);
	if (k < 0)
		return -1;
	q->p[q->n].value = *w;
	*w += k + 1;
	q->n++;
	return 0;
}

int kiln_query_parse(struct kiln_query *q, const char *qs)
{
	size_t len, n;
	const char *s, *amp;
	char *w;

	q->n = 0;
	http_buf_ready(&q->store);
	if (qs == NULL)
		return 0;
	len = strnlen(qs, KILN_QUERY_MAX_LEN + 1);
	if (len > KILN_QUERY_MAX_LEN)
		return -1;
	/* Decoding never lengthens text and each pair adds two NULs, so one
	 * reservation up front means the store never moves under the pointers. */
	if (kiln_buf_grow(&q->store, len + 2 * KILN_QUERY_MAX_PARAMS + 1) < 0)
		return -1;
	w = q->store.data;
	for (s = qs; *s; s += n + (amp != NULL)) {
		amp = strchr(s, '&');
		n = amp ? (size_t)(amp - s) : strlen(s);
		if (n == 0)
			continue;
		if (q->n == KILN_QUERY_MAX_PARAMS || http_query_pair(q, s, n, &w) < 0) {
			q->n = 0;
			return -1;
		}
	}
	q->store.len = (size_t)(w - q->store.data);
	return 0;
}

void kiln_query_free(struct kiln_query *q)
{
	kiln_buf_free(&q->store);
	q->n = 0;
}

const char *kiln_query_get(const struct kiln_query *q, const char *name)
{
	int i;

	for (i = 0; i < q->n; i++) {
		if (strcmp(q->p[i].name, name) == 0)
			return q->p[i].value;
	}
	return NULL;
}

const char *kiln_http_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {301, "Moved Permanently"},
	    {302, "Found"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {406, "Not Acceptable"},
	    {409, "Conflict"},
	    {410, "Gone"},
	    {412, "Precondition Failed"},
	    {413, "Content Too Large"},
	    {415, "Unsupported Media Type"},
	    {422, "Unprocessable Content"},
	    {428, "Precondition Required"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(reasons); i++) {
		if (reasons[i].status == status)
			return reasons[i].reason;
	}
	return "Unknown";
}

/* RFC 9110 token characters, the only ones a field name may use. */
static int http_token_ok(const char *s)
{
	const char *p;

	if (*s == '\0')
		return 0;
	for (p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p)))
			return 0;
	}
	return 1;
}

/* Control characters other than HTAB would split or corrupt the header. */
static int http_field_value_ok(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	}
	return 1;
}

/* Headers kiln_resp_serialize writes itself; a second copy would conflict. */
static int http_header_reserved(const char *name)
{
	static const char *const reserved[] = {"Status", "Content-Type", "Content-Length",
	                                       "X-Request-ID"};
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(reserved); i++) {
		if (strcasecmp(name, reserved[i]) == 0)
			return 1;
	}
	return 0;
}

int kiln_resp_header(struct kiln_req *req, const char *name, const char *value)
{
	struct kiln_buf *h = &req->resp.headers;
	size_t mark = h->len;

	if (name == NULL || value == NULL || !http_token_ok(name) || http_header_reserved(name) ||
	    !http_field_value_ok(value))
		return -1;
	if (kiln_buf_adds(h, name) < 0 || kiln_buf_add(h, ": ", 2) < 0 ||
	    kiln_buf_adds(h, value) < 0 || kiln_buf_add(h, "\r\n", 2) < 0) {
		h->len = mark;
		if (h->cap)
			h->data[mark] = '\0';
		return -1;
	}
	return 0;
}

/* Is origin one of the space-separated entries of list? */
static int cors_listed(const char *list, const char *origin)
{
	size_t n = strlen(origin), len;
	const char *p = list;

	while (*p) {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == n && len > 0 && memcmp(p, origin, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

int kiln_cors_apply(struct kiln_req *req, const char *origins, const char *allow)
{
	const char *origin, *method;

	if (origins == NULL || origins[0] == '\0')
		return 0;
	kiln_resp_header(req, "Vary", "Origin");
	origin = kiln_req_header(req, "Origin");
	if (origin == NULL || !cors_listed(origins, origin))
		return 0;
	if (kiln_resp_header(req, "Access-Control-Allow-Origin", origin) < 0)
		return 0;
	method = kiln_req_header(req, "Access-Control-Request-Method");
	if (strcmp(req->method, "OPTIONS") == 0 && method != NULL) {
		kiln_resp_header(req, "Access-Control-Allow-Methods",
		                 allow && allow[0] ? allow : "GET");
		kiln_resp_header(req, "Access-Control-Allow-Headers",
		                 "Authorization, Content-Type, If-Match, If-None-Match, "
		                 "Idempotency-Key, X-Request-ID");
		kiln_resp_header(req, "Access-Control-Max-Age", "600");
	} else {
		kiln_resp_header(req, "Access-Control-Expose-Headers",
		                 "ETag, Location, Retry-After, X-Request-ID");
	}
	return 1;
}

int kiln_resp_body(struct kiln_req *req, int status, const char *content_type, const void *body,
                   size_t len)
{
	struct kiln_resp *r = &req->resp;

	if (content_type == NULL)
		content_type = "";
	if (strlen(content_type) >= sizeof(r->content_type) || !http_field_value_ok(content_type))
		return -1;
	r->status = status;
	kiln_strlcpy(r->content_type, content_type, sizeof(r->content_type));
	http_buf_ready(&r->body);
	return kiln_buf_add(&r->body, body, len);
}

int kiln_resp_json_text(struct kiln_req *req, int status, const char *json, size_t len)
{
	return kiln_resp_body(req, status, "application/json", json, len);
}

/* Append ,"name":"value" (or without the comma when first). */
static int http_json_member(struct kiln_buf *b, const char *name, const char *value, int first)
{
	int rc = 0;

	rc |= kiln_buf_adds(b, first ? "\"" : ",\"");
	rc |= kiln_buf_adds(b, name);
	rc |= kiln_buf_adds(b, "\":\"");
	rc |= kiln_buf_add_json_str(b, value, strlen(value));
	rc |= kiln_buf_addc(b, '"');
	return rc;
}

static int http_problem_errors(struct kiln_buf *b, const struct kiln_field_errors *errors)
{
	int rc = 0, i;

	rc |= kiln_buf_adds(b, ",\"errors\":[");
	for (i = 0; i < errors->n && i < KILN_JSON_MAX_ERRORS; i++) {
		rc |= kiln_buf_adds(b, i ? ",{" : "{");
		rc |= http_json_member(b, "field", errors->e[i].field, 1);
		rc |= http_json_member(b, "reason", errors->e[i].reason, 0);
		rc |= kiln_buf_addc(b, '}');
	}
	rc |= kiln_buf_addc(b, ']');
	return rc;
}

/* Write the problem+json document into b. Returns 0, or -1 when out of memory. */
static int http_problem_build(struct kiln_buf *b, int status, const char *type, const char *title,
                              const char *detail, const struct kiln_field_errors *errors,
                              const char *request_id)
{
	int rc = 0;

	rc |= kiln_buf_addc(b, '{');
	rc |= http_json_member(b, "type", type ? type : "about:blank", 1);
	rc |= http_json_member(b, "title", title ? title : kiln_http_reason(status), 0);
	rc |= kiln_buf_printf(b, ",\"status\":%d", status);
	if (detail)
		rc |= http_json_member(b, "detail", detail, 0);
	rc |= http_json_member(b, "request_id", request_id, 0);
	if (errors && errors->n > 0)
		rc |= http_problem_errors(b, errors);
	rc |= kiln_buf_addc(b, '}');
	return rc ? -1 : 0;
}

int kiln_problem_typed(struct kiln_req *req, int status, const char *type, const char *title,
                       const char *detail, const struct kiln_field_errors *errors)
{
	struct kiln_resp *r = &req->resp;

	if (errors == NULL)
		errors = req->errors;
	r->status = status;
	kiln_strlcpy(r->content_type, "application/problem+json", sizeof(r->content_type));
	http_buf_ready(&r->body);
	return http_problem_build(&r->body, status, type, title, detail, errors, req->request_id);
}

int kiln_problem(struct kiln_req *req, int status, const char *detail,
                 const struct kiln_field_errors *errors)
{
	return kiln_problem_typed(req, status, NULL, NULL, detail, errors);
}

/* 1xx, 204 and 304 responses carry neither a body nor a Content-Length. */
static int http_status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static int http_serialize(const struct kiln_req *req, int status, const struct kiln_buf *headers,
                          const char *content_type, const struct kiln_buf *body,
                          struct kiln_buf *out)
{
	int has_body = http_status_has_body(status);
	int rc = 0;

	rc |= kiln_buf_printf(out, "Status: %d %s\r\n", status, kiln_http_reason(status));
	if (headers->len)
		rc |= kiln_buf_add(out, headers->data, headers->len);
	if (content_type[0])
		rc |= kiln_buf_printf(out, "Content-Type: %s\r\n", content_type);
	if (has_body)
		rc |= kiln_buf_printf(out, "Content-Length: %zu\r\n", body->len);
	rc |= kiln_buf_printf(out, "X-Request-ID: %s\r\n\r\n", req->request_id);
	if (has_body && !req->head && body->len)
		rc |= kiln_buf_add(out, body->data, body->len);
	return rc ? -1 : 0;
}

int kiln_resp_serialize(const struct kiln_req *req, struct kiln_buf *out)
{
	const struct kiln_resp *r = &req->resp;
	struct kiln_buf none, problem;
	int rc;

	http_buf_ready(out);
	if (r->status >= 100 && r->status <= 599)
		return http_serialize(req, r->status, &r->headers, r->content_type, &r->body, out);
	/* A handler that never answered is a server bug: say so, drop the rest. */
	kiln_buf_init(&none);
	kiln_buf_init(&problem);
	rc = http_problem_build(&problem, 500, NULL, NULL, "the handler produced no response", NULL,
	                        req->request_id);
	if (rc == 0)
		rc = http_serialize(req, 500, &none, "application/problem+json", &problem, out);
	kiln_buf_free(&problem);
	return rc;
}
