/* libFuzzer harness for kiln_router_match: a fixed table, a fuzzed method
 * (bytes before the first '\n') and path (the rest). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/router.h"
#include "kiln/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int handler(struct kiln_req *req)
{
	(void)req;
	return 0;
}

static const struct kiln_route routes[] = {
    {"GET", "/", handler},
    {"GET", "/api/v1/exercises", handler},
    {"POST", "/api/v1/exercises", handler},
    {"GET", "/api/v1/exercises/{id}", handler},
    {"PUT", "/api/v1/exercises/{id}", handler},
    {"DELETE", "/api/v1/exercises/{id}", handler},
    {"GET", "/api/v1/users/{user}/submissions/{id}", handler},
    {"OPTIONS", "/api/v1/users/{user}", handler},
    {"POST", "/auth/login", handler},
    {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", handler},
    {"GET", "/dir/", handler},
};

static void check_match(int rc, const char *method, const struct kiln_match *m)
{
	int i;

	if (rc >= 0) {
		if ((size_t)rc >= KILN_ARRAY_LEN(routes))
			abort();
		if (strcmp(routes[rc].method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 && strcmp(routes[rc].method, "GET") == 0))
			abort();
		for (i = 0; i < m->nparams; i++) {
			const char *v = m->params[i].value;
			if (*v == '\0' || strchr(v, '/') || v < m->store ||
			    v + strlen(v) >= m->store + sizeof(m->store))
				abort();
		}
		return;
	}
	if (rc == KILN_ROUTE_METHOD_NOT_ALLOWED) {
		size_t n = strlen(m->allow);
		if (n < 7 || strcmp(m->allow + n - 7, "OPTIONS") != 0)
			abort();
		return;
	}
	if (rc != KILN_ROUTE_NOT_FOUND || m->allow[0] != '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t mlen = nl ? (size_t)(nl - data) : 0;
	char *method, *path;
	struct kiln_match m;
	char err[256];
	int rc;

	if (!checked && kiln_router_check(routes, KILN_ARRAY_LEN(routes), err, sizeof(err)) < 0)
		abort();
	checked = 1;
	method = strndup((const char *)data, mlen);
	path = strndup((const char *)data + mlen + (nl != NULL), size - mlen - (nl != NULL));
	if (method == NULL || path == NULL)
		goto out;
	rc = kiln_router_match(routes, KILN_ARRAY_LEN(routes), method, path, &m);
	check_match(rc, method, &m);
out:
	free(method);
	free(path);
	return 0;
}
