/* kiln-auth: accounts, sign-in, access and refresh tokens, sessions. */
#include <malloc.h>
#include <stdio.h>

#include "kiln/server.h"
#include "kiln/util.h"
#include "auth.h"

static const struct kiln_route routes[] = {
    {"POST", "/auth/register", auth_register},
    {"POST", "/auth/login", auth_login},
    {"POST", "/auth/refresh", auth_refresh},
    {"POST", "/auth/logout", auth_logout},
    {"POST", "/auth/logout-all", auth_logout_all},
    {"GET", "/auth/me", auth_me},
    {"POST", "/auth/password", auth_password},
    {"GET", "/auth/sessions", auth_sessions},
    {"DELETE", "/auth/sessions/{id}", auth_session_delete},
    {"GET", "/auth/verify", auth_verify},
};

static int check_config(const struct kiln_config *cfg, char *err, size_t errlen)
{
	struct kiln_jwt_keys keys;

	return kiln_jwt_keys_from_config(&keys, &cfg->auth, err, errlen);
}

static int worker_init(const struct kiln_config *cfg)
{
	char err[256];
	static const char dummy[] = "kiln dummy password for unknown accounts";

	if (kiln_jwt_keys_from_config(&auth.keys, &cfg->auth, err, sizeof(err)) < 0)
		return -1;
	/* Argon2id takes argon2_memory (19 MiB) per hash from malloc. glibc's
	 * dynamic threshold would move such blocks onto the heap after the
	 * first free and keep them resident (~26 MB per worker measured); a
	 * fixed threshold keeps them mmapped and returned on every free. */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	kiln_password_params_from_config(&auth.pw, &cfg->auth);
	return kiln_password_hash(&auth.pw, dummy, sizeof(dummy) - 1, auth.dummy_hash,
	                          sizeof(auth.dummy_hash));
}

int main(int argc, char **argv)
{
	struct kiln_app app = {
	    .name = "auth",
	    .routes = routes,
	    .nroutes = KILN_ARRAY_LEN(routes),
	    .counter_names = auth_counter_names,
	    .check_config = check_config,
	    .worker_init = worker_init,
	};

	return kiln_server_main(&app, argc, argv);
}
