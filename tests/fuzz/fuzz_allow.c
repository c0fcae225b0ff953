/* libFuzzer harness for kiln_server_allow_add ([server] allow_from,
 * FCGI_WEB_SERVER_ADDRS) and kiln_server_allow_ok. The input is the list
 * text. Every accepted list must hold at most KILN_ALLOW_MAX addresses,
 * each of which must then be allowed (as an IPv6 peer; an IPv4-mapped one
 * also as the IPv4 peer it stands for); a refused list must say why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "kiln/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_allow a;
	char *list, err[128];
	size_t i;

	if (size > 4096)
		return 0;
	list = malloc(size + 1);
	if (list == NULL)
		return 0;
	memcpy(list, data, size);
	list[size] = '\0';
	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	if (kiln_server_allow_add(&a, list, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
	} else {
		if (a.n > KILN_ALLOW_MAX)
			abort();
		for (i = 0; i < a.n; i++) {
			struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
			struct sockaddr_in s4 = {.sin_family = AF_INET};

			memcpy(&s6.sin6_addr, a.addr[i], 16);
			if (!kiln_server_allow_ok(&a, (struct sockaddr *)&s6, sizeof(s6)))
				abort();
			if (memcmp(a.addr[i], v4mapped, sizeof(v4mapped)) == 0) {
				memcpy(&s4.sin_addr, a.addr[i] + 12, 4);
				if (!kiln_server_allow_ok(&a, (struct sockaddr *)&s4, sizeof(s4)))
					abort();
			}
		}
	}
	free(list);
	return 0;
}
