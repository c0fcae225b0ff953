/* GET /metrics: every program's scoreboard, their processes, the job queue.
 * Sources that fail are left out and counted (kiln_metrics_scrape_errors_total);
 * the answer is 200 whatever PostgreSQL or another program is doing. */
#include "kiln/http.h"
#include "kiln/log.h"
#include "kiln/server.h"
#include "metrics.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct kiln_buf body;            /* reused: no allocation per scrape once grown */
static struct kiln_stats_boards boards; /* mapped and unmapped per scrape */

static int unauthorized(struct kiln_req *req)
{
	kiln_resp_header(req, "WWW-Authenticate", "Bearer realm=\"kiln-metrics\"");
	return 401;
}

/* Render everything into body. Returns 0, or -1 when out of memory. */
static int scrape(const struct kiln_config *cfg)
{
	int rc, skipped;

	kiln_buf_reset(&body);
	/* First the job queue: a failure there is counted in our own
	 * scoreboard before it is read, so this scrape already shows it. */
	metrics_jobs_update(cfg);
	/* Each file left out (logged) is a scrape error; the rest still render. */
	for (skipped = kiln_stats_boards_open(&boards, cfg->server.run_dir); skipped != 0;
	     skipped -= skipped > 0 ? 1 : -1)
		metrics_count(C_SCRAPE_ERRORS);
	rc = kiln_stats_render(boards.sorted, boards.n, &body);
	if (rc == 0)
		rc = metrics_process_render(&boards, &body);
	kiln_stats_boards_close(&boards);
	if (rc == 0)
		rc = metrics_jobs_render(&body);
	return rc;
}

int metrics_get(struct kiln_req *req)
{
	if (!metrics_token_allows(req))
		return unauthorized(req);
	if (scrape(kiln_server_config()) < 0) {
		kiln_error("out of memory rendering metrics", "bytes=%zu", body.len);
		return 500;
	}
	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_body(req, 200, PROM_TYPE, body.data, body.len) == 0 ? 0 : 500;
}
