/* kiln-api: exercises, submissions, progress, leaderboard, notifications. */
#include "kiln/server.h"
#include "kiln/util.h"
#include "api.h"

static const struct kiln_route routes[] = {
    {"GET", "/api/v1/exercises", api_exercises_list},
    {"POST", "/api/v1/exercises", api_exercise_create},
    {"GET", "/api/v1/exercises/{id}", api_exercise_get},
    {"PATCH", "/api/v1/exercises/{id}", api_exercise_update},
    {"DELETE", "/api/v1/exercises/{id}", api_exercise_delete},
    {"POST", "/api/v1/exercises/{id}/submissions", api_submission_create},
    {"GET", "/api/v1/submissions/{id}", api_submission_get},
    {"GET", "/api/v1/me/submissions", api_my_submissions},
    {"GET", "/api/v1/me/progress", api_my_progress},
    {"GET", "/api/v1/me/notifications", api_my_notifications},
    {"POST", "/api/v1/me/notifications/{id}/read", api_notification_read},
    {"GET", "/api/v1/leaderboard", api_leaderboard},
};

static int check_config(const struct kiln_config *cfg, char *err, size_t errlen)
{
	struct kiln_jwt_keys keys;

	return kiln_jwt_keys_from_config(&keys, &cfg->auth, err, errlen);
}

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "api",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	    .counter_names = api_counter_names,
	    .check_config = check_config,
	    .worker_init = api_worker_init,
	    .after_handler = api_after_handler,
	};

	return kiln_server_main(&app, argc, argv);
}
