/* kiln-testapp: a test-only program on the libcommon server, built for the
 * e2e suites and never installed. Its routes let the tests hold a worker
 * busy, see which configuration a worker runs with, and send bodies. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "kiln/http.h"
#include "kiln/server.h"
#include "kiln/util.h"

/* GET /test/sleep?ms=N: hold the worker N ms (0..600000). */
static int test_sleep(struct kiln_req *req)
{
	struct kiln_query q = {0};
	const char *v;
	int64_t ms = 0;
	char body[64];
	int n;

	if (kiln_query_parse(&q, req->query) < 0)
		return 400;
	v = kiln_query_get(&q, "ms");
	if (v && kiln_parse_int(v, 0, 600000, &ms) < 0) {
		kiln_query_free(&q);
		return 400;
	}
	kiln_query_free(&q);
	int64_t until = kiln_now_ms() + ms;
	while (kiln_now_ms() < until)
		usleep(10000);
	n = snprintf(body, sizeof(body), "{\"slept_ms\":%lld}", (long long)ms);
	return kiln_resp_json_text(req, 200, body, (size_t)n);
}

/* GET /test/info: the worker's pid and a few configuration values. */
static int test_info(struct kiln_req *req)
{
	const struct kiln_config *cfg = kiln_server_config();
	char body[256];
	int n;

	n = snprintf(
	    body, sizeof(body),
	    "{\"pid\":%d,\"max_body\":%lld,\"request_timeout_ms\":%lld,\"log_level\":\"%s\"}",
	    (int)getpid(), (long long)cfg->server.max_body,
	    (long long)cfg->server.request_timeout_ms, cfg->log.level);
	return kiln_resp_json_text(req, 200, body, (size_t)n);
}

/* POST /test/echo: read the body (max_body applies) and report its size. */
static int test_echo(struct kiln_req *req)
{
	char body[64];
	int rc = kiln_req_read_body(req), n;

	if (rc != 0)
		return rc;
	n = snprintf(body, sizeof(body), "{\"bytes\":%zu}", req->body.len);
	return kiln_resp_json_text(req, 200, body, (size_t)n);
}

static const struct kiln_route routes[] = {
    {"GET", "/test/sleep", test_sleep},
    {"GET", "/test/info", test_info},
    {"POST", "/test/echo", test_echo},
};

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "testapp",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	};

	return kiln_server_main(&app, argc, argv);
}
