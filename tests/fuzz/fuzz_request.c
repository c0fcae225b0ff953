/* libFuzzer harness for the request path: kiln_req_init over a fuzzed
 * environment, kiln_req_read_body from a fuzzed body, a response built from
 * the input and kiln_resp_serialize.
 *
 * Input: byte 0 = max_body, byte 1 = read step (0: as much as asked), byte 2 =
 * status seed, then "NAME=value\n" lines up to an empty line, then the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENV 64

struct reader {
	const uint8_t *p;
	size_t len, pos, step;
};

static int fuzz_read(void *ctx, char *buf, int n)
{
	struct reader *r = ctx;
	size_t k = r->len - r->pos;

	if (k > (size_t)n)
		k = (size_t)n;
	if (r->step && k > r->step)
		k = r->step;
	memcpy(buf, r->p + r->pos, k);
	r->pos += k;
	return (int)k;
}

/* Split "NAME=value\n" lines into envp; returns the offset of the body. */
static size_t parse_env(const uint8_t *d, size_t size, size_t off, char **envp)
{
	size_t n = 0;
	const uint8_t *nl;

	while (off < size && (nl = memchr(d + off, '\n', size - off)) != NULL) {
		size_t len = (size_t)(nl - (d + off));
		if (len == 0)
			return off + 1;
		if (n < MAX_ENV - 1)
			envp[n++] = strndup((const char *)d + off, len);
		off += len + 1;
	}
	return off;
}

static int request_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= KILN_REQUEST_ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The header block must be CRLF lines only, so no input can add a header. */
static void check_serialized(const struct kiln_buf *out)
{
	const char *end = strstr(out->data, "\r\n\r\n");
	const char *p;

	if (strncmp(out->data, "Status: ", 8) != 0 || end == NULL)
		abort();
	for (p = out->data; p < end; p++) {
		if ((*p == '\n' && (p == out->data || p[-1] != '\r')) ||
		    (*p == '\r' && p[1] != '\n'))
			abort();
	}
}

static void respond(struct kiln_req *req, int init_rc, int status_seed)
{
	static struct kiln_query q;
	static const int statuses[] = {0, 200, 201, 204, 304, 404, 422, 999};
	static struct kiln_buf out;
	const char *v;

	if (init_rc == 0 && kiln_query_parse(&q, req->query) == 0 && q.n > 0) {
		v = q.p[0].value;
		if (kiln_resp_header(req, q.p[0].name, v) == 0 && strpbrk(v, "\r\n"))
			abort();
	}
	if (init_rc != 0)
		kiln_problem(req, init_rc, req->body.data, NULL);
	else
		kiln_resp_body(req, statuses[status_seed % 8], "text/plain", req->body.data,
		               req->body.len);
	if (kiln_resp_serialize(req, &out) != 0)
		abort();
	check_serialized(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kiln_req req; /* reused, as a worker reuses it */
	char *envp[MAX_ENV] = {0};
	struct reader r = {0};
	size_t off, i;
	int rc, brc;

	if (size < 3)
		return 0;
	off = parse_env(data, size, 3, envp);
	r.p = data + off;
	r.len = size - off;
	r.step = data[1];
	rc = kiln_req_init(&req, envp, fuzz_read, &r, data[0]);
	if (!request_id_ok(req.request_id) || (rc != 0 && rc != 400 && rc != 413))
		abort();
	if (rc == 0) {
		brc = kiln_req_read_body(&req);
		if (kiln_req_read_body(&req) != brc || req.body.len > (size_t)req.max_body)
			abort();
		if (brc == 0 && req.content_length >= 0 &&
		    req.body.len != (size_t)req.content_length)
			abort();
		kiln_req_header(&req, "X-Request-ID");
		kiln_req_header(&req, "content-length");
	}
	respond(&req, rc, data[2]);
	for (i = 0; envp[i]; i++)
		free(envp[i]);
	return 0;
}
