/* Unit tests for http: request init over a fake environment, body reading,
 * query parsing, response headers, problem+json and CGI serialization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/http.h"
#include "kiln/util.h"

/* A reader over a fixed string that hands out at most step bytes a call and
 * can fail after a given number of bytes. */
struct fake_body {
	const char *data;
	size_t len, pos, step;
	int fail; /* return -1 once pos reaches len */
};

static int fake_read(void *ctx, char *buf, int n)
{
	struct fake_body *f = ctx;
	size_t k = f->len - f->pos;

	if (f->pos == f->len && f->fail)
		return -1;
	if (k > (size_t)n)
		k = (size_t)n;
	if (f->step && k > f->step)
		k = f->step;
	memcpy(buf, f->data + f->pos, k);
	f->pos += k;
	return (int)k;
}

static int setup_req(void **state)
{
	struct kiln_req *req = calloc(1, sizeof(*req));

	*state = req;
	return req ? 0 : -1;
}

static int teardown_req(void **state)
{
	struct kiln_req *req = *state;

	kiln_req_free(req);
	free(req);
	return 0;
}

static void test_init_reads_the_environment(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET",
	               "DOCUMENT_URI=/api/v1/exercises",
	               "REQUEST_URI=/api/v1/exercises?page=2",
	               "QUERY_STRING=page=2",
	               "REMOTE_ADDR=192.0.2.1",
	               "CONTENT_TYPE=application/json",
	               "HTTP_X_REQUEST_ID=abc.DEF_123-x",
	               "HTTP_USER_AGENT=test/1",
	               "HTTP_X_A=B=C",
	               NULL};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 1024), 0);
	assert_string_equal(req->method, "GET");
	assert_string_equal(req->path, "/api/v1/exercises");
	assert_string_equal(req->query, "page=2");
	assert_string_equal(req->remote_addr, "192.0.2.1");
	assert_string_equal(req->content_type, "application/json");
	assert_int_equal(req->content_length, -1);
	assert_int_equal(req->head, 0);
	assert_string_equal(req->request_id, "abc.DEF_123-x");
	assert_string_equal(req->trace_id, "");
	assert_int_equal(req->route_index, -1);
	assert_string_equal(req->route, "unmatched");
	assert_int_equal(req->resp.status, 0);
	assert_string_equal(kiln_req_header(req, "user-agent"), "test/1");
	assert_string_equal(kiln_req_header(req, "X-Request-ID"), "abc.DEF_123-x");
	assert_string_equal(kiln_req_header(req, "Content-Type"), "application/json");
	assert_null(kiln_req_header(req, "Accept"));
	assert_string_equal(kiln_req_header(req, "X-A"), "B=C");
	assert_null(kiln_req_header(req, "X-A=B"));
	assert_string_equal(kiln_req_env(req, "REMOTE_ADDR"), "192.0.2.1");
	assert_null(kiln_req_env(req, "REMOTE"));
}

static void test_init_defaults_when_absent(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=HEAD", "PATH_INFO=/p", NULL};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 1024), 0);
	assert_string_equal(req->path, "/p");
	assert_string_equal(req->query, "");
	assert_string_equal(req->remote_addr, "");
	assert_string_equal(req->content_type, "");
	assert_int_equal(req->head, 1);
}

static void test_init_cuts_path_from_request_uri(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/a/b?x=1", NULL};
	char *env2[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/c", NULL};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_string_equal(req->path, "/a/b");
	assert_string_equal(kiln_req_env(req, "REQUEST_URI"), "/a/b?x=1");
	assert_int_equal(kiln_req_init(req, env2, NULL, NULL, 0), 0);
	assert_string_equal(req->path, "/c");
}

static void test_init_without_method_is_400(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"DOCUMENT_URI=/", NULL};
	char *env2[] = {"REQUEST_METHOD=", "DOCUMENT_URI=/", NULL};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 400);
	assert_int_equal(strlen(req->request_id), 32);
	assert_int_equal(kiln_req_init(req, env2, NULL, NULL, 0), 400);
}

static void test_malformed_request_id_is_replaced(void **state)
{
	static const char *const bad[] = {
	    "HTTP_X_REQUEST_ID=has space", "HTTP_X_REQUEST_ID=", "HTTP_X_REQUEST_ID=a\"b",
	    "HTTP_X_REQUEST_ID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "HTTP_OTHER=x"};
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", NULL, NULL};
	char first[KILN_REQUEST_ID_MAX + 1] = "";
	size_t i, k;

	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		env[1] = (char *)bad[i];
		assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
		assert_int_equal(strlen(req->request_id), 32);
		for (k = 0; k < 32; k++)
			assert_non_null(strchr("0123456789abcdef", req->request_id[k]));
		assert_string_not_equal(req->request_id, first);
		strcpy(first, req->request_id);
	}
	/* Exactly 64 characters is still well-formed. */
	env[1] =
	    "HTTP_X_REQUEST_ID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(strlen(req->request_id), 64);
}

static void test_traceparent_valid_and_invalid(void **state)
{
	static const char *const bad[] = {
	    "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",
	    "HTTP_TRACEPARENT=01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	    "HTTP_TRACEPARENT=00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
	    "HTTP_TRACEPARENT=00-00000000000000000000000000000000-b7ad6b7169203331-01",
	    "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
	    "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
	    "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
	    "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-"};
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET",
	               "HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	               NULL};
	size_t i;

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_string_equal(req->trace_id, "0af7651916cd43dd8448eb211c80319c");
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		env[1] = (char *)bad[i];
		assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
		assert_string_equal(req->trace_id, "");
	}
}

static void test_content_length_is_validated(void **state)
{
	static const struct {
		const char *cl;
		int rc;
		int64_t len;
	} cases[] = {
	    {"CONTENT_LENGTH=", 0, -1},
	    {"CONTENT_LENGTH=0", 0, 0},
	    {"CONTENT_LENGTH=100", 0, 100},
	    {"CONTENT_LENGTH=101", 413, 101},
	    {"CONTENT_LENGTH=9007199254740992", 413, 9007199254740992},
	    {"CONTENT_LENGTH=9007199254740993", 400, -1},
	    {"CONTENT_LENGTH=99999999999999999999999", 400, -1},
	    {"CONTENT_LENGTH=-1", 400, -1},
	    {"CONTENT_LENGTH=+5", 400, -1},
	    {"CONTENT_LENGTH= 5", 400, -1},
	    {"CONTENT_LENGTH=5x", 400, -1},
	};
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=POST", NULL, NULL};
	size_t i;

	for (i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		env[1] = (char *)cases[i].cl;
		assert_int_equal(kiln_req_init(req, env, NULL, NULL, 100), cases[i].rc);
		if (cases[i].rc != 400)
			assert_int_equal(req->content_length, cases[i].len);
	}
}

static int init_with_body(struct kiln_req *req, const char *cl, struct fake_body *f,
                          int64_t max_body)
{
	char *env[] = {"REQUEST_METHOD=POST", (char *)cl, NULL};

	return kiln_req_init(req, env, fake_read, f, max_body);
}

static void test_body_exact_length(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"hello world", 11, 0, 3, 0};

	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=11", &f, 11), 0);
	assert_int_equal(kiln_req_read_body(req), 0);
	assert_int_equal(req->body.len, 11);
	assert_string_equal(req->body.data, "hello world");
	assert_int_equal(kiln_req_read_body(req), 0);
	assert_int_equal(req->body.len, 11);
}

static void test_body_short_is_400(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"hello", 5, 0, 0, 0};

	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=10", &f, 100), 0);
	assert_int_equal(kiln_req_read_body(req), 400);
	assert_int_equal(kiln_req_read_body(req), 400);
}

static void test_body_read_error_is_500(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"abc", 3, 0, 0, 1};

	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=10", &f, 100), 0);
	assert_int_equal(kiln_req_read_body(req), 500);
}

static void test_body_unknown_length_over_limit_is_413(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"0123456789X", 11, 0, 4, 0};

	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=", &f, 10), 0);
	assert_int_equal(kiln_req_read_body(req), 413);
	assert_true(req->body.len <= 10);
	assert_int_equal(kiln_req_read_body(req), 413);
}

static void test_body_unknown_length_at_limit_is_ok(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"0123456789", 10, 0, 4, 0};

	assert_int_equal(init_with_body(req, "OTHER=1", &f, 10), 0);
	assert_int_equal(kiln_req_read_body(req), 0);
	assert_int_equal(req->body.len, 10);
	assert_string_equal(req->body.data, "0123456789");
}

static void test_body_buffer_is_reused(void **state)
{
	struct kiln_req *req = *state;
	struct fake_body f = {"0123456789", 10, 0, 0, 0};
	struct fake_body g = {"ab", 2, 0, 0, 0};
	char *data;

	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=10", &f, 10), 0);
	assert_int_equal(kiln_req_read_body(req), 0);
	data = req->body.data;
	assert_int_equal(init_with_body(req, "CONTENT_LENGTH=2", &g, 10), 0);
	assert_int_equal(req->body.len, 0);
	assert_int_equal(kiln_req_read_body(req), 0);
	assert_ptr_equal(req->body.data, data);
	assert_string_equal(req->body.data, "ab");
}

static void test_query_decodes(void **state)
{
	struct kiln_query q;

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(kiln_query_parse(&q, "a=1&b=hello+world&c=%41%2f%2F&&d&e=&f=x=y"), 0);
	assert_int_equal(q.n, 6);
	assert_string_equal(kiln_query_get(&q, "a"), "1");
	assert_string_equal(kiln_query_get(&q, "b"), "hello world");
	assert_string_equal(kiln_query_get(&q, "c"), "A//");
	assert_string_equal(kiln_query_get(&q, "d"), "");
	assert_string_equal(kiln_query_get(&q, "e"), "");
	assert_string_equal(kiln_query_get(&q, "f"), "x=y");
	assert_null(kiln_query_get(&q, "g"));
	assert_int_equal(kiln_query_parse(&q, "%C3%A9t%C3%A9=%E2%82%AC"), 0);
	assert_string_equal(kiln_query_get(&q, "\xc3\xa9t\xc3\xa9"), "\xe2\x82\xac");
	assert_int_equal(kiln_query_parse(&q, ""), 0);
	assert_int_equal(q.n, 0);
	kiln_query_free(&q);
}

static void test_query_duplicate_returns_first(void **state)
{
	struct kiln_query q;

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(kiln_query_parse(&q, "x=1&x=2"), 0);
	assert_int_equal(q.n, 2);
	assert_string_equal(kiln_query_get(&q, "x"), "1");
	kiln_query_free(&q);
}

static void test_query_rejects_bad_escapes(void **state)
{
	static const char *const bad[] = {"a=%G1", "a=%4",   "a=%",  "%zz=1",
	                                  "a=%00", "a%00=1", "a=%4g"};
	struct kiln_query q;
	size_t i;

	(void)state;
	memset(&q, 0, sizeof(q));
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		assert_int_equal(kiln_query_parse(&q, bad[i]), -1);
		assert_int_equal(q.n, 0);
	}
	kiln_query_free(&q);
}

static void test_query_limits(void **state)
{
	char qs[KILN_QUERY_MAX_LEN + 2];
	struct kiln_query q;
	size_t i, len = 0;

	(void)state;
	memset(&q, 0, sizeof(q));
	for (i = 0; i < KILN_QUERY_MAX_PARAMS; i++)
		len += (size_t)snprintf(qs + len, sizeof(qs) - len, "p%zu=%zu&", i, i);
	assert_int_equal(kiln_query_parse(&q, qs), 0);
	assert_int_equal(q.n, KILN_QUERY_MAX_PARAMS);
	snprintf(qs + len, sizeof(qs) - len, "one=more");
	assert_int_equal(kiln_query_parse(&q, qs), -1);

	memset(qs, 'a', KILN_QUERY_MAX_LEN);
	qs[KILN_QUERY_MAX_LEN] = '\0';
	assert_int_equal(kiln_query_parse(&q, qs), 0);
	assert_int_equal(strlen(kiln_query_get(&q, qs)), 0);
	qs[KILN_QUERY_MAX_LEN] = 'a';
	qs[KILN_QUERY_MAX_LEN + 1] = '\0';
	assert_int_equal(kiln_query_parse(&q, qs), -1);
	kiln_query_free(&q);
}

static void test_resp_header_refuses_crlf(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", NULL};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_header(req, "Cache-Control", "no-store"), 0);
	assert_int_equal(kiln_resp_header(req, "X-A", "a\r\nSet-Cookie: x=1"), -1);
	assert_int_equal(kiln_resp_header(req, "X-A", "a\nb"), -1);
	assert_int_equal(kiln_resp_header(req, "X-A\r\nX-B", "v"), -1);
	assert_int_equal(kiln_resp_header(req, "", "v"), -1);
	assert_int_equal(kiln_resp_header(req, "X A", "v"), -1);
	assert_int_equal(kiln_resp_header(req, "Content-Length", "5"), -1);
	assert_string_equal(req->resp.headers.data, "Cache-Control: no-store\r\n");
}

static void test_problem_json_has_every_member(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=POST", "HTTP_X_REQUEST_ID=rid-1", NULL};
	struct kiln_field_errors errs = {0};
	json_object *doc, *v, *e;

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	kiln_field_error_add(&errs, "title", "is required");
	kiln_field_error_add(&errs, "dif\"ficulty", "must be between 1 and 5");
	assert_int_equal(kiln_problem(req, 422, "bad \"input\"\n", &errs), 0);
	assert_int_equal(req->resp.status, 422);
	assert_string_equal(req->resp.content_type, "application/problem+json");
	doc = json_tokener_parse(req->resp.body.data);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "type", &v));
	assert_string_equal(json_object_get_string(v), "about:blank");
	assert_true(json_object_object_get_ex(doc, "title", &v));
	assert_string_equal(json_object_get_string(v), "Unprocessable Content");
	assert_true(json_object_object_get_ex(doc, "status", &v));
	assert_int_equal(json_object_get_int(v), 422);
	assert_true(json_object_object_get_ex(doc, "detail", &v));
	assert_string_equal(json_object_get_string(v), "bad \"input\"\n");
	assert_true(json_object_object_get_ex(doc, "request_id", &v));
	assert_string_equal(json_object_get_string(v), "rid-1");
	assert_true(json_object_object_get_ex(doc, "errors", &v));
	assert_int_equal(json_object_array_length(v), 2);
	e = json_object_array_get_idx(v, 1);
	assert_true(json_object_object_get_ex(e, "field", &v));
	assert_string_equal(json_object_get_string(v), "dif\"ficulty");
	assert_true(json_object_object_get_ex(e, "reason", &v));
	assert_string_equal(json_object_get_string(v), "must be between 1 and 5");
	json_object_put(doc);
}

static void test_problem_typed_omits_empty_members(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", NULL};
	struct kiln_field_errors none = {0};
	json_object *doc, *v;

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_problem_typed(req, 409, "https://kiln.example/conflict", "Slug taken",
	                                    NULL, &none),
	                 0);
	doc = json_tokener_parse(req->resp.body.data);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "type", &v));
	assert_string_equal(json_object_get_string(v), "https://kiln.example/conflict");
	assert_true(json_object_object_get_ex(doc, "title", &v));
	assert_string_equal(json_object_get_string(v), "Slug taken");
	assert_false(json_object_object_get_ex(doc, "detail", &v));
	assert_false(json_object_object_get_ex(doc, "errors", &v));
	assert_true(json_object_object_get_ex(doc, "request_id", &v));
	assert_string_equal(json_object_get_string(v), req->request_id);
	json_object_put(doc);
}

static void test_serialize_normal_response(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", "HTTP_X_REQUEST_ID=r1", NULL};
	struct kiln_buf out = {0};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_header(req, "ETag", "\"v1\""), 0);
	assert_int_equal(kiln_resp_json_text(req, 200, "{\"a\":1}", 7), 0);
	assert_int_equal(kiln_resp_serialize(req, &out), 0);
	assert_string_equal(out.data, "Status: 200 OK\r\n"
	                              "ETag: \"v1\"\r\n"
	                              "Content-Type: application/json\r\n"
	                              "Content-Length: 7\r\n"
	                              "X-Request-ID: r1\r\n"
	                              "\r\n"
	                              "{\"a\":1}");
	assert_int_equal(kiln_resp_body(req, 404, "text/plain", "no", 2), 0);
	assert_int_equal(kiln_resp_serialize(req, &out), 0);
	assert_non_null(strstr(out.data, "Status: 404 Not Found\r\n"));
	assert_non_null(strstr(out.data, "Content-Type: text/plain\r\nContent-Length: 2\r\n"));
	assert_string_equal(out.data + out.len - 6, "\r\n\r\nno");
	kiln_buf_free(&out);
}

static void test_serialize_head_keeps_length_drops_body(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=HEAD", "HTTP_X_REQUEST_ID=r2", NULL};
	struct kiln_buf out = {0};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_body(req, 200, "text/plain", "hello", 5), 0);
	assert_int_equal(kiln_resp_serialize(req, &out), 0);
	assert_string_equal(out.data, "Status: 200 OK\r\n"
	                              "Content-Type: text/plain\r\n"
	                              "Content-Length: 5\r\n"
	                              "X-Request-ID: r2\r\n"
	                              "\r\n");
	kiln_buf_free(&out);
}

static void test_serialize_status_zero_is_500_problem(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=GET", "HTTP_X_REQUEST_ID=r3", NULL};
	struct kiln_buf out = {0};
	const char *body;
	json_object *doc, *v;

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_header(req, "X-Partial", "1"), 0);
	assert_int_equal(kiln_resp_serialize(req, &out), 0);
	assert_int_equal(strncmp(out.data, "Status: 500 Internal Server Error\r\n", 35), 0);
	assert_non_null(strstr(out.data, "Content-Type: application/problem+json\r\n"));
	assert_null(strstr(out.data, "X-Partial"));
	body = strstr(out.data, "\r\n\r\n");
	assert_non_null(body);
	doc = json_tokener_parse(body + 4);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "status", &v));
	assert_int_equal(json_object_get_int(v), 500);
	assert_true(json_object_object_get_ex(doc, "request_id", &v));
	assert_string_equal(json_object_get_string(v), "r3");
	json_object_put(doc);
	kiln_buf_free(&out);
}

static void test_serialize_204_has_no_length(void **state)
{
	struct kiln_req *req = *state;
	char *env[] = {"REQUEST_METHOD=DELETE", "HTTP_X_REQUEST_ID=r4", NULL};
	struct kiln_buf out = {0};

	assert_int_equal(kiln_req_init(req, env, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_body(req, 204, NULL, NULL, 0), 0);
	assert_int_equal(kiln_resp_serialize(req, &out), 0);
	assert_string_equal(out.data, "Status: 204 No Content\r\nX-Request-ID: r4\r\n\r\n");
	kiln_buf_free(&out);
}

static void test_reason_phrases(void **state)
{
	(void)state;
	assert_string_equal(kiln_http_reason(404), "Not Found");
	assert_string_equal(kiln_http_reason(429), "Too Many Requests");
	assert_string_equal(kiln_http_reason(299), "Unknown");
}

#define REQ_TEST(f) cmocka_unit_test_setup_teardown(f, setup_req, teardown_req)

/* CORS: only listed origins (exact match, not prefix) get the headers;
 * a preflight gets methods, headers and max-age; Vary: Origin always. */
static void test_cors_allows_only_listed_origins(void **state)
{
	struct kiln_req *req = *state;
	const char *origins = "https://app.example  http://localhost:3000";
	char *get_ok[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/x",
	                  "HTTP_ORIGIN=https://app.example", NULL};
	char *get_bad[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/x",
	                   "HTTP_ORIGIN=https://app.example.evil", NULL};
	char *pre[] = {"REQUEST_METHOD=OPTIONS", "DOCUMENT_URI=/x",
	               "HTTP_ORIGIN=http://localhost:3000",
	               "HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST", NULL};
	char *none[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/x", NULL};

	assert_int_equal(kiln_req_init(req, get_ok, NULL, NULL, 0), 0);
	assert_int_equal(kiln_cors_apply(req, origins, NULL), 1);
	assert_non_null(
	    strstr(req->resp.headers.data, "Access-Control-Allow-Origin: https://app.example\r\n"));
	assert_non_null(strstr(req->resp.headers.data, "Vary: Origin\r\n"));
	assert_non_null(strstr(req->resp.headers.data, "Access-Control-Expose-Headers: ETag"));
	assert_null(strstr(req->resp.headers.data, "Access-Control-Allow-Methods"));

	assert_int_equal(kiln_req_init(req, get_bad, NULL, NULL, 0), 0);
	assert_int_equal(kiln_cors_apply(req, origins, NULL), 0);
	assert_null(strstr(req->resp.headers.data, "Access-Control-"));
	assert_non_null(strstr(req->resp.headers.data, "Vary: Origin\r\n"));

	assert_int_equal(kiln_req_init(req, pre, NULL, NULL, 0), 0);
	assert_int_equal(kiln_cors_apply(req, origins, "GET, HEAD, POST, OPTIONS"), 1);
	assert_non_null(strstr(req->resp.headers.data,
	                       "Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\n"));
	assert_non_null(strstr(req->resp.headers.data, "Idempotency-Key"));
	assert_non_null(strstr(req->resp.headers.data, "Access-Control-Max-Age: 600\r\n"));

	assert_int_equal(kiln_req_init(req, none, NULL, NULL, 0), 0);
	assert_int_equal(kiln_cors_apply(req, "", NULL), 0);
	assert_true(req->resp.headers.len == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    REQ_TEST(test_init_reads_the_environment),
	    REQ_TEST(test_init_defaults_when_absent),
	    REQ_TEST(test_init_cuts_path_from_request_uri),
	    REQ_TEST(test_init_without_method_is_400),
	    REQ_TEST(test_malformed_request_id_is_replaced),
	    REQ_TEST(test_traceparent_valid_and_invalid),
	    REQ_TEST(test_content_length_is_validated),
	    REQ_TEST(test_body_exact_length),
	    REQ_TEST(test_body_short_is_400),
	    REQ_TEST(test_body_read_error_is_500),
	    REQ_TEST(test_body_unknown_length_over_limit_is_413),
	    REQ_TEST(test_body_unknown_length_at_limit_is_ok),
	    REQ_TEST(test_body_buffer_is_reused),
	    cmocka_unit_test(test_query_decodes),
	    cmocka_unit_test(test_query_duplicate_returns_first),
	    cmocka_unit_test(test_query_rejects_bad_escapes),
	    cmocka_unit_test(test_query_limits),
	    REQ_TEST(test_resp_header_refuses_crlf),
	    REQ_TEST(test_problem_json_has_every_member),
	    REQ_TEST(test_problem_typed_omits_empty_members),
	    REQ_TEST(test_serialize_normal_response),
	    REQ_TEST(test_serialize_head_keeps_length_drops_body),
	    REQ_TEST(test_serialize_status_zero_is_500_problem),
	    REQ_TEST(test_serialize_204_has_no_length),
	    REQ_TEST(test_cors_allows_only_listed_origins),
	    cmocka_unit_test(test_reason_phrases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
