/* test_netaddr.c - endpoint parsing and the error sentences people see. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/netaddr.h"

static void parses_ipv4_ipv6_and_names(void **state)
{
	struct net_endpoint ep;
	char err[256];

	(void)state;
	assert_int_equal(netaddr_parse("127.0.0.1:8080", &ep, err, sizeof(err)), 0);
	assert_string_equal(ep.text, "127.0.0.1:8080");
	assert_int_equal(ep.netns_fd, -1);
	assert_int_equal(netaddr_parse("[::1]:9", &ep, err, sizeof(err)), 0);
	assert_string_equal(ep.text, "[::1]:9");
	assert_int_equal(netaddr_parse("localhost:80", &ep, err, sizeof(err)), 0);
}

static void bad_addresses_explain_themselves(void **state)
{
	struct net_endpoint ep;
	char err[256];

	(void)state;
	assert_int_equal(netaddr_parse("127.0.0.1", &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing port"));
	assert_int_equal(netaddr_parse("127.0.0.1:0", &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1 to 65535"));
	assert_int_equal(netaddr_parse("127.0.0.1:70000", &ep, err, sizeof(err)), -EINVAL);
	assert_int_equal(netaddr_parse("127.0.0.1:80x", &ep, err, sizeof(err)), -EINVAL);
	assert_int_equal(netaddr_parse(":80", &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing host"));
	assert_int_equal(netaddr_parse("::1:80", &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "brackets"));
	assert_int_equal(netaddr_parse("no-such-host.invalid:80", &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cannot resolve"));
}

static void port_in_use_names_the_fix(void **state)
{
	struct net_endpoint ep;
	char err[512];
	int a, b;

	(void)state;
	/* Bind an ephemeral port, then ask for the same one again. */
	assert_int_equal(netaddr_parse("127.0.0.1:1", &ep, err, sizeof(err)), 0);
	((struct sockaddr_in *)&ep.ss)->sin_port = 0;
	a = netaddr_listen(&ep, 8, 0, err, sizeof(err));
	assert_true(a >= 0);
	socklen_t len = ep.len;
	getsockname(a, (struct sockaddr *)&ep.ss, &len);
	netaddr_format((struct sockaddr *)&ep.ss, len, ep.text, sizeof(ep.text));
	b = netaddr_listen(&ep, 8, 0, err, sizeof(err));
	assert_int_equal(b, -EADDRINUSE);
	assert_non_null(strstr(err, "already in use"));
	assert_non_null(strstr(err, "ss -ltnp"));
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_ipv4_ipv6_and_names),
		cmocka_unit_test(bad_addresses_explain_themselves),
		cmocka_unit_test(port_in_use_names_the_fix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
