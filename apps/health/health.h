/* kiln-health internals: dependency checks shared across workers. */
#ifndef KILN_HEALTH_H
#define KILN_HEALTH_H

#include <stdint.h>

enum health_status { HEALTH_PASS = 0, HEALTH_WARN = 1, HEALTH_FAIL = 2 };

#define HEALTH_MAX_CHECKS 4

struct health_check {
	char key[32];            /* "postgresql:responseTime" */
	char component_type[16]; /* "datastore", "system" */
	int status;
	double observed_value;
	char observed_unit[8];
	int64_t time_ms;  /* wall clock of the measurement */
	char output[192]; /* why it is not pass; "" otherwise */
};

struct health_report {
	int status;
	int n;
	struct health_check checks[HEALTH_MAX_CHECKS];
};

/* Bytes of shared memory the cache needs (struct kiln_app.shared_size). */
extern const unsigned long health_shared_size;

/* Fill r with results at most cfg.health.cache_ms old, running the checks in
 * this worker only when no other worker is already doing so. */
void health_get(struct health_report *r);

/* Has readiness passed at least once since the program started? */
int health_started(void);

const char *health_status_name(int status);

struct kiln_req;

/* Route handlers (probes.c). */
int health_live(struct kiln_req *req);
int health_ready(struct kiln_req *req);
int health_startup(struct kiln_req *req);
int health_full(struct kiln_req *req);

#endif
