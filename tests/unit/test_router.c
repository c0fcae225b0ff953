/* Unit tests for the router: matching, parameters, 404/405 and table checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/router.h"
#include "kiln/util.h"

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
    {"GET", "/api/v1/users/{user_id}/submissions/{sub_id}", handler},
    {"POST", "/auth/login", handler},
    {"GET", "/dir/", handler},
};
#define NROUTES KILN_ARRAY_LEN(routes)

static int match(const char *method, const char *path, struct kiln_match *m)
{
	return kiln_router_match(routes, NROUTES, method, path, m);
}

static void test_literal_path_matches_its_route(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/api/v1/exercises", &m), 1);
	assert_int_equal(m.nparams, 0);
	assert_int_equal(match("POST", "/api/v1/exercises", &m), 2);
	assert_int_equal(match("POST", "/auth/login", &m), 7);
}

static void test_root_matches_only_root(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/", &m), 0);
	assert_int_equal(match("GET", "", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "//", &m), KILN_ROUTE_NOT_FOUND);
}

static void test_param_is_extracted(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/api/v1/exercises/42", &m), 3);
	assert_int_equal(m.nparams, 1);
	assert_string_equal(kiln_match_param(&m, "id"), "42");
	assert_null(kiln_match_param(&m, "i"));
	assert_null(kiln_match_param(&m, "idx"));
}

static void test_multiple_params_are_extracted(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/api/v1/users/7/submissions/abc-9", &m), 6);
	assert_int_equal(m.nparams, 2);
	assert_string_equal(kiln_match_param(&m, "user_id"), "7");
	assert_string_equal(kiln_match_param(&m, "sub_id"), "abc-9");
}

static void test_unknown_path_is_404(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/nope", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "/api/v1/exercises/1/extra", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "/API/v1/exercises", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "api/v1/exercises", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", NULL, &m), KILN_ROUTE_NOT_FOUND);
	assert_string_equal(m.allow, "");
}

static void test_wrong_method_is_405_with_allow(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("PATCH", "/api/v1/exercises/5", &m), KILN_ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD, PUT, DELETE, OPTIONS");
	assert_int_equal(m.nparams, 0);
	assert_int_equal(match("GET", "/auth/login", &m), KILN_ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST, OPTIONS");
	assert_int_equal(match("OPTIONS", "/api/v1/exercises", &m), KILN_ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD, POST, OPTIONS");
}

static void test_allow_has_no_duplicates(void **state)
{
	static const struct kiln_route dup[] = {
	    {"GET", "/a/{x}", handler},   {"GET", "/a/b", handler},    {"HEAD", "/a/b", handler},
	    {"OPTIONS", "/a/b", handler}, {"POST", "/a/{y}", handler},
	};
	struct kiln_match m;

	(void)state;
	assert_int_equal(kiln_router_match(dup, KILN_ARRAY_LEN(dup), "PUT", "/a/b", &m),
	                 KILN_ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD, POST, OPTIONS");
}

static void test_head_matches_get_route(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("HEAD", "/api/v1/exercises/9", &m), 3);
	assert_string_equal(kiln_match_param(&m, "id"), "9");
	assert_int_equal(match("HEAD", "/auth/login", &m), KILN_ROUTE_METHOD_NOT_ALLOWED);
}

static void test_method_is_case_sensitive(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("get", "/", &m), KILN_ROUTE_METHOD_NOT_ALLOWED);
}

static void test_trailing_slash_is_significant(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/api/v1/exercises/", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "/api/v1/exercises/7/", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "/dir/", &m), 8);
	assert_int_equal(match("GET", "/dir", &m), KILN_ROUTE_NOT_FOUND);
}

static void test_empty_segment_does_not_match_param(void **state)
{
	struct kiln_match m;

	(void)state;
	assert_int_equal(match("GET", "/api/v1/users//submissions/1", &m), KILN_ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", "/api/v1/users/1/submissions/", &m), KILN_ROUTE_NOT_FOUND);
}

static void test_param_store_overflow_is_not_found(void **state)
{
	static const struct kiln_route two[] = {{"GET", "/x/{a}/{b}", handler}};
	char path[2 * KILN_ROUTE_PARAM_STORE];
	struct kiln_match m;
	size_t half = KILN_ROUTE_PARAM_STORE / 2;

	(void)state;
	/* Two values of half the store each need two NULs more than it holds. */
	memcpy(path, "/x/", 3);
	memset(path + 3, 'a', half);
	path[3 + half] = '/';
	memset(path + 4 + half, 'b', half);
	path[4 + 2 * half] = '\0';
	assert_int_equal(kiln_router_match(two, 1, "GET", path, &m), KILN_ROUTE_NOT_FOUND);
	/* One byte less in each leaves exactly room for both NULs. */
	path[3 + half - 1] = '/';
	memmove(path + 3 + half, path + 4 + half, half);
	path[3 + 2 * half - 1] = '\0';
	assert_int_equal(kiln_router_match(two, 1, "GET", path, &m), 0);
	assert_int_equal(strlen(kiln_match_param(&m, "a")), half - 1);
	assert_int_equal(strlen(kiln_match_param(&m, "b")), half - 1);
}

static void test_check_accepts_good_table(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(kiln_router_check(routes, NROUTES, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void test_check_rejects_bad_patterns(void **state)
{
	static const char *const bad[] = {
	    "api/x", "/x/{id",   "/x/id}",   "/x/{Id}",  "/x/{1d}",
	    "/x/{}", "/x/a{id}", "/x/{id}b", "/x/{a-b}", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
	};
	struct kiln_route r[2] = {{"GET", "/ok", handler}, {"GET", NULL, handler}};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		r[1].pattern = bad[i];
		err[0] = '\0';
		assert_int_equal(kiln_router_check(r, 2, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i]));
	}
	r[1].pattern = "/ok/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}";
	assert_int_equal(kiln_router_check(r, 2, err, sizeof(err)), 0);
}

static void test_check_rejects_bad_method(void **state)
{
	struct kiln_route r[1] = {{"get", "/ok", handler}};
	char err[256];

	(void)state;
	assert_int_equal(kiln_router_check(r, 1, err, sizeof(err)), -1);
	r[0].method = "";
	assert_int_equal(kiln_router_check(r, 1, err, sizeof(err)), -1);
	assert_int_equal(kiln_router_check(r, 1, NULL, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_path_matches_its_route),
	    cmocka_unit_test(test_root_matches_only_root),
	    cmocka_unit_test(test_param_is_extracted),
	    cmocka_unit_test(test_multiple_params_are_extracted),
	    cmocka_unit_test(test_unknown_path_is_404),
	    cmocka_unit_test(test_wrong_method_is_405_with_allow),
	    cmocka_unit_test(test_allow_has_no_duplicates),
	    cmocka_unit_test(test_head_matches_get_route),
	    cmocka_unit_test(test_method_is_case_sensitive),
	    cmocka_unit_test(test_trailing_slash_is_significant),
	    cmocka_unit_test(test_empty_segment_does_not_match_param),
	    cmocka_unit_test(test_param_store_overflow_is_not_found),
	    cmocka_unit_test(test_check_accepts_good_table),
	    cmocka_unit_test(test_check_rejects_bad_patterns),
	    cmocka_unit_test(test_check_rejects_bad_method),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
