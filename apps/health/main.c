/* kiln-health: liveness, readiness and startup probes in
 * application/health+json (draft-inadarei-api-health-check). */
#include "kiln/server.h"
#include "kiln/util.h"
#include "health.h"

static const struct kiln_route routes[] = {
    {"GET", "/health/live", health_live},
    {"GET", "/health/ready", health_ready},
    {"GET", "/health/startup", health_startup},
    {"GET", "/health", health_full},
};

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "health",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	    .shared_size = health_shared_size,
	};

	return kiln_server_main(&app, argc, argv);
}
