/* The TCP peer allow-list: [server] allow_from and FCGI_WEB_SERVER_ADDRS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "kiln/server.h"

static int peer4(const struct kiln_allow *a, const char *ip)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};

	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return kiln_server_allow_ok(a, (struct sockaddr *)&sin, sizeof(sin));
}

static int peer6(const struct kiln_allow *a, const char *ip)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};

	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return kiln_server_allow_ok(a, (struct sockaddr *)&sin6, sizeof(sin6));
}

static void empty_list_allows_everyone(void **state)
{
	struct kiln_allow a = {0};
	char err[128];

	(void)state;
	assert_int_equal(kiln_server_allow_add(&a, "  , \t", err, sizeof(err)), 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(peer4(&a, "203.0.113.9"), 1);
	assert_int_equal(peer6(&a, "2001:db8::9"), 1);
}

static void listed_addresses_only(void **state)
{
	struct kiln_allow a = {0};
	char err[128];

	(void)state;
	assert_int_equal(
	    kiln_server_allow_add(&a, "10.77.0.1, 2001:db8::1\t10.77.0.2", err, sizeof(err)), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(peer4(&a, "10.77.0.1"), 1);
	assert_int_equal(peer4(&a, "10.77.0.2"), 1);
	assert_int_equal(peer4(&a, "10.77.0.3"), 0);
	assert_int_equal(peer4(&a, "127.0.0.1"), 0);
	assert_int_equal(peer6(&a, "2001:db8::1"), 1);
	assert_int_equal(peer6(&a, "2001:db8::2"), 0);
	/* An IPv4 peer on a dual-stack socket arrives IPv4-mapped. */
	assert_int_equal(peer6(&a, "::ffff:10.77.0.1"), 1);
	assert_int_equal(peer6(&a, "::ffff:10.77.0.9"), 0);
}

static void unix_peers_are_guarded_by_the_file_mode(void **state)
{
	struct kiln_allow a = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char err[128];

	(void)state;
	assert_int_equal(kiln_server_allow_add(&a, "10.77.0.1", err, sizeof(err)), 0);
	assert_int_equal(kiln_server_allow_ok(&a, (struct sockaddr *)&sun, sizeof(sun)), 1);
}

static void bad_items_are_refused_by_name(void **state)
{
	static const char *const bad[] = {"10.77.0",    "10.77.0.256",  "host.example",
	                                  "10.0.0.0/8", "2001:db8:::1", "1.2.3.4x"};
	struct kiln_allow a;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0, sizeof(a));
		err[0] = '\0';
		assert_int_equal(kiln_server_allow_add(&a, bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is not an IPv4 or IPv6 address"));
		assert_non_null(strstr(err, bad[i]));
	}
}

static void at_most_the_maximum(void **state)
{
	struct kiln_allow a = {0};
	char err[128], ip[32];
	int i;

	(void)state;
	for (i = 0; i < KILN_ALLOW_MAX; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250 + 1);
		assert_int_equal(kiln_server_allow_add(&a, ip, err, sizeof(err)), 0);
	}
	assert_int_equal(kiln_server_allow_add(&a, "10.9.9.9", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than"));
	assert_int_equal(a.n, KILN_ALLOW_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_list_allows_everyone),
	    cmocka_unit_test(listed_addresses_only),
	    cmocka_unit_test(unix_peers_are_guarded_by_the_file_mode),
	    cmocka_unit_test(bad_items_are_refused_by_name),
	    cmocka_unit_test(at_most_the_maximum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
