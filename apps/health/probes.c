/* The probe handlers and the health+json rendering. */
#include <stdio.h>
#include <string.h>

#include "kiln/buf.h"
#include "kiln/http.h"
#include "kiln/server.h"
#include "kiln/util.h"
#include "health.h"

#define HEALTH_TYPE "application/health+json"

static struct kiln_buf body;

static void add_check_json(struct kiln_buf *b, const struct health_check *c)
{
	char ts[40];

	kiln_buf_adds(b, "\"");
	kiln_buf_add_json_str(b, c->key, strlen(c->key));
	kiln_buf_printf(b,
	                "\":[{\"componentType\":\"%s\",\"observedValue\":%.3f,"
	                "\"observedUnit\":\"%s\",\"status\":\"%s\",\"time\":\"%s\"",
	                c->component_type, c->observed_value, c->observed_unit,
	                health_status_name(c->status), kiln_rfc3339(c->time_ms, ts, sizeof(ts)));
	if (c->output[0]) {
		kiln_buf_adds(b, ",\"output\":\"");
		kiln_buf_add_json_str(b, c->output, strlen(c->output));
		kiln_buf_adds(b, "\"");
	}
	kiln_buf_adds(b, "}]");
}

/* First failing (or warning) component, for the top-level output. */
static const struct health_check *worst(const struct health_report *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->checks[i].status == r->status)
			return &r->checks[i];
	return NULL;
}

static int send_report(struct kiln_req *req, const struct health_report *r, int with_uptime)
{
	const struct health_check *w = r->status != HEALTH_PASS ? worst(r) : NULL;
	char ts[40];
	int i;

	kiln_buf_reset(&body);
	kiln_buf_printf(&body,
	                "{\"status\":\"%s\",\"version\":\"%s\",\"releaseId\":\"%s\","
	                "\"serviceId\":\"kiln\",\"description\":\"kiln readiness\"",
	                health_status_name(r->status), KILN_VERSION, KILN_COMMIT);
	if (w) {
		kiln_buf_adds(&body, ",\"output\":\"");
		kiln_buf_add_json_str(&body, w->key, strcspn(w->key, ":"));
		kiln_buf_adds(&body, w->status == HEALTH_FAIL ? " is down: " : " degraded: ");
		kiln_buf_add_json_str(&body, w->output, strlen(w->output));
		kiln_buf_adds(&body, "\"");
	}
	kiln_buf_adds(&body, ",\"checks\":{");
	for (i = 0; i < r->n; i++) {
		if (i)
			kiln_buf_addc(&body, ',');
		add_check_json(&body, &r->checks[i]);
	}
	if (with_uptime)
		kiln_buf_printf(&body,
		                ",\"uptime\":[{\"componentType\":\"system\",\"observedValue\":%.3f,"
		                "\"observedUnit\":\"s\",\"status\":\"pass\",\"time\":\"%s\"}]",
		                kiln_server_uptime(), kiln_rfc3339(kiln_wall_ms(), ts, sizeof(ts)));
	kiln_buf_adds(&body, "}}");
	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_body(req, r->status == HEALTH_FAIL ? 503 : 200, HEALTH_TYPE, body.data,
	                      body.len);
}

/* Liveness never touches a dependency: it proves the worker answers. */
int health_live(struct kiln_req *req)
{
	static const char live[] = "{\"status\":\"pass\",\"version\":\"" KILN_VERSION "\"}";

	kiln_resp_header(req, "Cache-Control", "no-store");
	return kiln_resp_body(req, 200, HEALTH_TYPE, live, sizeof(live) - 1);
}

int health_ready(struct kiln_req *req)
{
	struct health_report r;

	health_get(&r);
	return send_report(req, &r, 0);
}

/* Startup passes once readiness has passed once since the program started. */
int health_startup(struct kiln_req *req)
{
	struct health_report r;
	static const char ok[] = "{\"status\":\"pass\",\"description\":\"kiln started\"}";

	if (health_started()) {
		kiln_resp_header(req, "Cache-Control", "no-store");
		return kiln_resp_body(req, 200, HEALTH_TYPE, ok, sizeof(ok) - 1);
	}
	health_get(&r);
	return send_report(req, &r, 0);
}

int health_full(struct kiln_req *req)
{
	struct health_report r;

	health_get(&r);
	return send_report(req, &r, 1);
}
