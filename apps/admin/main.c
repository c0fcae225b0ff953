/* kiln-admin: the admin API (docs/admin.md): users, jobs, cache,
 * maintenance, the audit log and live stats. */
#include "kiln/server.h"
#include "kiln/util.h"
#include "admin.h"

static const struct kiln_route routes[] = {
    {"GET", "/admin/api/users", admin_users_list},
    {"GET", "/admin/api/users/{id}", admin_user_get},
    {"POST", "/admin/api/users/{id}/lock", admin_user_lock},
    {"POST", "/admin/api/users/{id}/unlock", admin_user_unlock},
    {"PUT", "/admin/api/users/{id}/role", admin_user_role},
    {"POST", "/admin/api/users/{id}/revoke-sessions", admin_user_revoke_sessions},
    {"GET", "/admin/api/jobs/stats", admin_jobs_stats},
    {"GET", "/admin/api/jobs", admin_jobs_list},
    {"GET", "/admin/api/jobs/{id}", admin_job_get},
    {"POST", "/admin/api/jobs/{id}/retry", admin_job_retry},
    {"POST", "/admin/api/jobs/{id}/discard", admin_job_discard},
    {"POST", "/admin/api/cache/flush", admin_cache_flush},
    {"GET", "/admin/api/maintenance", admin_maintenance_get},
    {"PUT", "/admin/api/maintenance", admin_maintenance_put},
    {"GET", "/admin/api/audit", admin_audit_list},
    {"GET", "/admin/api/stats", admin_stats},
};

static int check_config(const struct kiln_config *cfg, char *err, size_t errlen)
{
	struct kiln_jwt_keys keys;

	return kiln_jwt_keys_from_config(&keys, &cfg->auth, err, errlen);
}

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "admin",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	    .counter_names = admin_counter_names,
	    .check_config = check_config,
	    .worker_init = admin_worker_init,
	};

	return kiln_server_main(&app, argc, argv);
}
