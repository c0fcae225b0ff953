/* router: a table of `METHOD /path/{param}` routes matched in order.
 * A {param} matches one non-empty path segment. HEAD matches GET routes. */
#ifndef KILN_ROUTER_H
#define KILN_ROUTER_H

#include <stddef.h>

struct kiln_req;
typedef int (*kiln_handler_fn)(struct kiln_req *req);

struct kiln_route {
	const char *method;  /* "GET", "POST", ... */
	const char *pattern; /* "/api/v1/exercises/{id}" */
	kiln_handler_fn handler;
};

#define KILN_ROUTE_MAX_PARAMS  8
#define KILN_ROUTE_PARAM_STORE 512

struct kiln_route_param {
	const char *name; /* points into the pattern, not NUL-terminated */
	size_t name_len;
	const char *value; /* NUL-terminated, inside kiln_match.store */
};

struct kiln_match {
	int nparams;
	struct kiln_route_param params[KILN_ROUTE_MAX_PARAMS];
	char store[KILN_ROUTE_PARAM_STORE];
	char allow[128]; /* on 405: "GET, HEAD, POST" */
};

#define KILN_ROUTE_NOT_FOUND          (-1)
#define KILN_ROUTE_METHOD_NOT_ALLOWED (-2)

/* Check a route table at startup: patterns start with '/', braces balance,
 * parameter names are [a-z_][a-z0-9_]*, at most KILN_ROUTE_MAX_PARAMS each.
 * Returns 0, or -1 with the offending pattern in err. */
int kiln_router_check(const struct kiln_route *routes, size_t n, char *err, size_t errlen);

/* Match method + path (no query string). Returns the index of the first
 * matching route with m->params filled; KILN_ROUTE_NOT_FOUND when no
 * pattern matches the path; KILN_ROUTE_METHOD_NOT_ALLOWED when a pattern
 * matches but not for this method (m->allow lists the methods that do,
 * including HEAD where GET is allowed, and OPTIONS). */
int kiln_router_match(const struct kiln_route *routes, size_t n, const char *method,
                      const char *path, struct kiln_match *m);

/* Value of a matched parameter by name, or NULL. */
const char *kiln_match_param(const struct kiln_match *m, const char *name);

#endif
