/* kiln-metrics: GET /metrics in the Prometheus text format (0.0.4) for every
 * kiln program on this host. */
#include "kiln/server.h"
#include "kiln/util.h"
#include "metrics.h"

static const struct kiln_route routes[] = {
    {"GET", "/metrics", metrics_get},
};

const char *const metrics_counter_names[] = {"metrics_scrape_errors", NULL};

void metrics_count(enum metrics_counter c)
{
	struct kiln_stats_slot *s = kiln_server_slot();

	if (s)
		kiln_stats_count(s, (int)c, 1);
}

static int worker_init(const struct kiln_config *cfg)
{
	metrics_token_init(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "metrics",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	    .counter_names = metrics_counter_names,
	    .check_config = metrics_token_check,
	    .worker_init = worker_init,
	};

	return kiln_server_main(&app, argc, argv);
}
