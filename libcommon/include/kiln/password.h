/* password: Argon2id (libargon2) in PHC string format, re-hash detection,
 * and the policy for new passwords (NIST 800-63B: length and a common-
 * password check, no composition rules). */
#ifndef KILN_PASSWORD_H
#define KILN_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/config.h"

#define KILN_PASSWORD_MIN 12
#define KILN_PASSWORD_MAX 1024
#define KILN_PHC_MAX      160

struct kiln_password_params {
	uint32_t m_kib; /* memory in KiB */
	uint32_t t;     /* iterations */
	uint32_t p;     /* lanes */
};

/* Parameters from [auth] argon2_memory/iterations/parallelism. */
void kiln_password_params_from_config(struct kiln_password_params *p,
                                      const struct kiln_cfg_auth *cfg);

/* Hash pw (len bytes) with a fresh 16-byte salt into a PHC string
 * "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (32-byte hash) in out.
 * Returns 0, or -1 (out too small, out of memory, argon2 error). */
int kiln_password_hash(const struct kiln_password_params *p, const char *pw, size_t len, char *out,
                       size_t outlen);

/* Verify pw against a PHC string in constant time. Returns 1 on a match, 0
 * on a mismatch, -1 when phc is malformed or not argon2id. */
int kiln_password_verify(const char *phc, const char *pw, size_t len);

/* Does phc use parameters other than p (so it should be re-hashed after a
 * successful login)? Returns 1 or 0, or -1 when phc is malformed. */
int kiln_password_needs_rehash(const char *phc, const struct kiln_password_params *p);

/* Policy for a new password: 12..1024 bytes, valid UTF-8 without NUL, and,
 * when common_check is set, not rejected by cracklib's FascistCheck.
 * Returns NULL when acceptable, else a short reason for problem+json
 * errors[] ("must be at least 12 bytes", "is too common: <cracklib's reason>"). */
const char *kiln_password_policy(const char *pw, size_t len, int common_check);

#endif
