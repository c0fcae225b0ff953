/* authn: Bearer-token authentication for every program that serves signed-in
 * users. The JWT is verified in-process; then one prepared primary-key query
 * on the worker's open PostgreSQL connection checks that the user still
 * exists and is not locked, that the token's "sv" equals the user's current
 * session_version (bumped by logout-all, password change, admin actions),
 * and that the token's session ("sid") is still active (not logged out,
 * revoked or expired). Revocation therefore takes effect at once, on every
 * host, whatever state Redis is in. (A Redis cache of session versions was
 * tried and dropped: a bump made while Redis stalls leaves a stale entry
 * that re-admits revoked tokens when Redis resumes; see
 * docs/architecture.md.) */
#ifndef KILN_AUTHN_H
#define KILN_AUTHN_H

#include <stdint.h>

#include "kiln/http.h"
#include "kiln/jwt.h"

/* Authenticate req's "Authorization: Bearer" token. Returns 0 with *out
 * filled; otherwise writes the problem response into req (401 with
 * WWW-Authenticate, or 503 when PostgreSQL cannot be asked) and returns that
 * status. */
int kiln_authn_require(struct kiln_req *req, const struct kiln_jwt_keys *keys,
                       struct kiln_jwt_claims *out);

/* Is the session of claims c still valid (user present and unlocked, sv
 * current, session active)? Returns 1 yes, 0 no, -1 when PostgreSQL cannot
 * be asked. */
int kiln_authn_session_valid(const struct kiln_jwt_claims *c);

#endif
