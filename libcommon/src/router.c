/* router: ordered table of `METHOD /path/{param}` routes. Matching is a
 * linear scan with a segment-wise compare; tables are small (< 64 routes) and
 * a match allocates nothing. */
#include <stdio.h>
#include <string.h>

#include "kiln/router.h"

/* Match path against pattern, copying parameter values into m->store.
 * Returns 1 on a match, 0 otherwise (including when the values overflow
 * m->store or the pattern has more than KILN_ROUTE_MAX_PARAMS parameters). */
static int route_path_match(const char *pat, const char *path, struct kiln_match *m)
{
	const char *p = pat, *s = path, *close;
	size_t used = 0, seg;

	m->nparams = 0;
	while (*p) {
		if (*p != '{') {
			if (*p++ != *s++)
				return 0;
			continue;
		}
		close = strchr(p, '}');
		seg = strcspn(s, "/");
		if (close == NULL || seg == 0 || m->nparams == KILN_ROUTE_MAX_PARAMS ||
		    seg + 1 > sizeof(m->store) - used)
			return 0;
		memcpy(m->store + used, s, seg);
		m->store[used + seg] = '\0';
		m->params[m->nparams].name = p + 1;
		m->params[m->nparams].name_len = (size_t)(close - p - 1);
		m->params[m->nparams].value = m->store + used;
		m->nparams++;
		used += seg + 1;
		p = close + 1;
		s += seg;
	}
	return *s == '\0';
}

static int route_method_ok(const char *route_method, const char *method)
{
	if (strcmp(route_method, method) == 0)
		return 1;
	return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* Whether the comma-separated list allow already names method. */
static int allow_has(const char *allow, const char *method)
{
	size_t n = strlen(method);
	const char *p = allow;

	while (*p) {
		if (strncmp(p, method, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		p += 2;
	}
	return 0;
}

/* Append method to m->allow unless present. A method that does not fit is
 * left out rather than cut in half. */
static void allow_add(struct kiln_match *m, const char *method)
{
	size_t len = strlen(m->allow);
	int n;

	if (allow_has(m->allow, method))
		return;
	n = snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", method);
	if (n < 0 || (size_t)n >= sizeof(m->allow) - len)
		m->allow[len] = '\0';
}

/* Fill m->allow with the methods whose pattern matches path. Returns the
 * number of matching routes. */
static int route_collect_allow(const struct kiln_route *routes, size_t n, const char *path,
                               struct kiln_match *m)
{
	int found = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!route_path_match(routes[i].pattern, path, m))
			continue;
		found++;
		if (strcmp(routes[i].method, "OPTIONS") == 0)
			continue;
		allow_add(m, routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			allow_add(m, "HEAD");
	}
	if (found)
		allow_add(m, "OPTIONS");
	return found;
}

int kiln_router_match(const struct kiln_route *routes, size_t n, const char *method,
                      const char *path, struct kiln_match *m)
{
	size_t i;

	m->nparams = 0;
	m->allow[0] = '\0';
	if (method == NULL || path == NULL || path[0] != '/')
		return KILN_ROUTE_NOT_FOUND;
	for (i = 0; i < n; i++) {
		if (route_method_ok(routes[i].method, method) &&
		    route_path_match(routes[i].pattern, path, m))
			return (int)i;
	}
	if (route_collect_allow(routes, n, path, m) == 0) {
		m->nparams = 0;
		return KILN_ROUTE_NOT_FOUND;
	}
	m->nparams = 0;
	return KILN_ROUTE_METHOD_NOT_ALLOWED;
}

const char *kiln_match_param(const struct kiln_match *m, const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; i < m->nparams; i++) {
		if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
			return m->params[i].value;
	}
	return NULL;
}

static int route_name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return 0;
	for (i = 1; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* Why pattern is unusable, or NULL when it is fine. A parameter must be a
 * whole segment so that "one segment" stays the only rule a reader needs. */
static const char *route_pattern_problem(const char *pattern)
{
	const char *p, *close;
	int nparams = 0;

	if (pattern == NULL || pattern[0] != '/')
		return "pattern must start with '/'";
	for (p = pattern; *p; p++) {
		if (*p == '}')
			return "unbalanced '}'";
		if (*p != '{')
			continue;
		close = strchr(p, '}');
		if (close == NULL)
			return "unbalanced '{'";
		if (p[-1] != '/' || (close[1] != '/' && close[1] != '\0'))
			return "a parameter must be a whole segment";
		if (!route_name_ok(p + 1, (size_t)(close - p - 1)))
			return "parameter names must match [a-z_][a-z0-9_]*";
		if (++nparams > KILN_ROUTE_MAX_PARAMS)
			return "too many parameters";
		p = close;
	}
	return NULL;
}

static const char *route_method_problem(const char *method)
{
	const char *p;

	if (method == NULL || *method == '\0')
		return "method must not be empty";
	for (p = method; *p; p++) {
		if (*p < 'A' || *p > 'Z')
			return "method must be upper-case letters";
	}
	return NULL;
}

int kiln_router_check(const struct kiln_route *routes, size_t n, char *err, size_t errlen)
{
	const char *why;
	size_t i;

	for (i = 0; i < n; i++) {
		why = route_method_problem(routes[i].method);
		if (why == NULL)
			why = route_pattern_problem(routes[i].pattern);
		if (why == NULL)
			continue;
		if (err && errlen)
			snprintf(err, errlen, "route %zu \"%s %s\": %s", i,
			         routes[i].method ? routes[i].method : "(null)",
			         routes[i].pattern ? routes[i].pattern : "(null)", why);
		return -1;
	}
	return 0;
}
