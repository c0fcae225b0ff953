/* email: the one normalisation and validation of account emails, shared by
 * kiln-auth (register, login) and kilnctl (create-admin). */
#ifndef KILN_EMAIL_H
#define KILN_EMAIL_H

#include <stddef.h>

#define KILN_EMAIL_MAX 254

/* Normalise in (len bytes): trim surrounding white space, lowercase the
 * domain; then validate: at most 254 bytes, exactly one '@', local part of
 * 1..64 printable ASCII bytes without spaces or '@', domain of 2+ labels of
 * [A-Za-z0-9-] (1..63 bytes, not starting or ending with '-'). Writes the
 * normalised address to out (>= KILN_EMAIL_MAX + 1 bytes). Returns NULL, or
 * a short reason for problem+json errors[] ("must be a valid email address"). */
const char *kiln_email_normalize(const char *in, size_t len, char *out, size_t outlen);

#endif
