/* libFuzzer harness: arbitrary bytes through the INI parser, for every
 * error path and for the [server.<app>] overlay of one program. */
#include <stddef.h>
#include <stdint.h>

#include "kiln/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_config cfg;
	char err[256];

	kiln_config_parse(&cfg, "fuzz.conf", (const char *)data, size, "health", err, sizeof(err));
	return 0;
}
