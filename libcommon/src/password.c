/* password: Argon2id PHC strings and the policy for new passwords.
 *
 * PHC strings are parsed strictly by kiln before libargon2 sees them: the
 * parameters inside decide how much memory and time verification costs, so
 * a corrupted or planted row must not make a worker allocate gigabytes. The
 * bounds are the config table's bounds for [auth] argon2_*. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <argon2.h>
#include <crack.h>
#include <openssl/rand.h>

#include "kiln/password.h"
#include "kiln/util.h"

#define PASSWORD_SALT_LEN  16
#define PASSWORD_HASH_LEN  32
#define PASSWORD_MAX_M_KIB (1024 * 1024) /* auth.argon2_memory <= 1G */
#define PASSWORD_MAX_T     100
#define PASSWORD_MAX_P     16
#define PASSWORD_PREFIX    "$argon2id$"

/* The part of a PHC string kiln looks at. */
struct password_phc {
	int64_t m, t, p;
};

void kiln_password_params_from_config(struct kiln_password_params *p,
                                      const struct kiln_cfg_auth *cfg)
{
	int64_t m = cfg->argon2_memory / 1024;

	p->m_kib = (uint32_t)(m < 1 ? 1 : m > PASSWORD_MAX_M_KIB ? PASSWORD_MAX_M_KIB : m);
	p->t = (uint32_t)(cfg->argon2_iterations < 1 ? 1 : cfg->argon2_iterations);
	p->p = (uint32_t)(cfg->argon2_parallelism < 1 ? 1 : cfg->argon2_parallelism);
}

int kiln_password_hash(const struct kiln_password_params *p, const char *pw, size_t len, char *out,
                       size_t outlen)
{
	unsigned char salt[PASSWORD_SALT_LEN];
	size_t need;

	if (len > UINT32_MAX || (pw == NULL && len > 0))
		return -1;
	need = argon2_encodedlen(p->t, p->m_kib, p->p, PASSWORD_SALT_LEN, PASSWORD_HASH_LEN,
	                         Argon2_id);
	if (need > outlen || RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	if (argon2id_hash_encoded(p->t, p->m_kib, p->p, pw, len, salt, sizeof(salt),
	                          PASSWORD_HASH_LEN, out, outlen) != ARGON2_OK)
		return -1;
	return 0;
}

/* "<key><digits><end>" at s: digits without sign or leading zero, within
 * [min, max]. Returns the position after end, or NULL. */
static const char *password_phc_number(const char *s, const char *key, char end, int64_t min,
                                       int64_t max, int64_t *out)
{
	char digits[12];
	size_t klen = strlen(key), n = 0;

	if (strncmp(s, key, klen) != 0)
		return NULL;
	s += klen;
	while (s[n] >= '0' && s[n] <= '9' && n < sizeof(digits) - 1) {
		digits[n] = s[n];
		n++;
	}
	if (n == 0 || s[n] != end || (digits[0] == '0' && n > 1))
		return NULL;
	digits[n] = '\0';
	if (kiln_parse_int(digits, min, max, out) < 0)
		return NULL;
	return s + n + 1;
}

/* Length of the run of standard base64 characters (libargon2's alphabet,
 * unpadded) at s. */
static size_t password_b64_run(const char *s)
{
	size_t n = 0;

	while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
	       (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '/')
		n++;
	return n;
}

/* "$argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>" with bounded parameters, a salt
 * of 8..64 bytes and a hash of 16..64 bytes. Returns 0, or -1. */
static int password_parse(const char *phc, struct password_phc *ph)
{
	const char *s;
	int64_t v;
	size_t n;

	if (phc == NULL || strnlen(phc, KILN_PHC_MAX + 1) > KILN_PHC_MAX ||
	    strncmp(phc, PASSWORD_PREFIX, strlen(PASSWORD_PREFIX)) != 0)
		return -1;
	s = phc + strlen(PASSWORD_PREFIX);
	if ((s = password_phc_number(s, "v=", '$', 19, 19, &v)) == NULL ||
	    (s = password_phc_number(s, "m=", ',', 1, PASSWORD_MAX_M_KIB, &ph->m)) == NULL ||
	    (s = password_phc_number(s, "t=", ',', 1, PASSWORD_MAX_T, &ph->t)) == NULL ||
	    (s = password_phc_number(s, "p=", '$', 1, PASSWORD_MAX_P, &ph->p)) == NULL)
		return -1;
	/* libargon2 refuses fewer than 8 KiB per lane itself; checking here
	 * keeps the answer "malformed" rather than depending on its code. */
	if (ph->m < 8 * ph->p)
		return -1;
	n = password_b64_run(s);
	if (n < 11 || n > 86 || s[n] != '$')
		return -1;
	s += n + 1;
	n = password_b64_run(s);
	if (n < 22 || n > 86 || s[n] != '\0')
		return -1;
	return 0;
}

int kiln_password_verify(const char *phc, const char *pw, size_t len)
{
	struct password_phc ph;
	int rc;

	if (password_parse(phc, &ph) < 0 || len > UINT32_MAX || (pw == NULL && len > 0))
		return -1;
	rc = argon2id_verify(phc, pw, len);
	if (rc == ARGON2_OK)
		return 1;
	return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
}

int kiln_password_needs_rehash(const char *phc, const struct kiln_password_params *p)
{
	struct password_phc ph;

	if (password_parse(phc, &ph) < 0)
		return -1;
	return ph.m != (int64_t)p->m_kib || ph.t != (int64_t)p->t || ph.p != (int64_t)p->p;
}

/* Does the cracklib dictionary exist? Checked first because PWOpen prints
 * to stderr when it is missing, and a missing dictionary must surface as a
 * policy answer, not as every password passing or failing silently. */
static int password_dict_present(const char *dict)
{
	char pwd[512], pwdgz[512], pwi[512];

	if (snprintf(pwd, sizeof(pwd), "%s.pwd", dict) >= (int)sizeof(pwd) ||
	    snprintf(pwdgz, sizeof(pwdgz), "%s.pwd.gz", dict) >= (int)sizeof(pwdgz) ||
	    snprintf(pwi, sizeof(pwi), "%s.pwi", dict) >= (int)sizeof(pwi))
		return 0;
	return (access(pwd, R_OK) == 0 || access(pwdgz, R_OK) == 0) && access(pwi, R_OK) == 0;
}

/* Are a and b (lowercase) neighbours, either way round, in one of the
 * sequences, or the same character? */
static int password_neighbours(unsigned char a, unsigned char b)
{
	static const char *const seqs[] = {
	    "abcdefghijklmnopqrstuvwxyz",
	    "01234567890",
	    "qwertyuiopasdfghjklzxcvbnm",
	    "qwertzuiopasdfghjklyxcvbnm",
	    "azertyuiopqsdfghjklmwxcvbn",
	    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
	    "!@#$%^&*()_+",
	};
	const char *p;
	size_t i;

	if (a == b)
		return 1;
	if (a >= 0x80 || b >= 0x80 || a == '\0' || b == '\0')
		return 0;
	for (i = 0; i < KILN_ARRAY_LEN(seqs); i++) {
		for (p = strchr(seqs[i], a); p != NULL; p = strchr(p + 1, a)) {
			if (p[1] == (char)b || (p > seqs[i] && p[-1] == (char)b))
				return 1;
		}
	}
	return 0;
}

/* A keyboard or alphabet walk ("qwertyuiopas", "abcdef123456"): at least
 * three quarters of adjacent pairs are neighbours. cracklib only catches
 * runs of consecutive code points, so walks across keyboard rows pass it. */
static int password_is_walk(const char *pw, size_t len)
{
	size_t i, seq = 0;
	unsigned char a, b;

	for (i = 0; i + 1 < len; i++) {
		a = (unsigned char)pw[i];
		b = (unsigned char)pw[i + 1];
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char)(b - 'A' + 'a');
		seq += (size_t)password_neighbours(a, b);
	}
	return len > 1 && seq * 4 >= (len - 1) * 3;
}

/* The password without leading and trailing ASCII digits, punctuation and
 * spaces, when that leaves 6..len-1 bytes ("password1234" -> "password").
 * cracklib strips at most three such characters at either end, so a word
 * with four digits appended is not recognised as the word. Returns the
 * stem's length (copied NUL-terminated into stem), or 0. */
static size_t password_stem(const char *pw, size_t len, char *stem, size_t stemlen)
{
	size_t b = 0, e = len;

	while (b < e && (unsigned char)pw[b] < 0x80 &&
	       !((pw[b] | 0x20) >= 'a' && (pw[b] | 0x20) <= 'z'))
		b++;
	while (e > b && (unsigned char)pw[e - 1] < 0x80 &&
	       !((pw[e - 1] | 0x20) >= 'a' && (pw[e - 1] | 0x20) <= 'z'))
		e--;
	if (e - b < 6 || e - b == len || e - b >= stemlen)
		return 0;
	memcpy(stem, pw + b, e - b);
	stem[e - b] = '\0';
	return e - b;
}

/* The common-password checks on a NUL-terminated copy. cracklib truncates
 * its input to 255 bytes (TRUNCSTRINGSIZE) before any processing, so a
 * 1024-byte password is safe to pass and only its first 255 bytes count.
 * FascistCheckUser is used with the user "kiln" instead of FascistCheck:
 * FascistCheck compares against the worker's own passwd entry and rejects
 * every password when the service uid has none (containers), while the
 * service name is exactly the context word NIST 800-63B asks to refuse. */
static const char *password_common(const char *pw, size_t len)
{
	static char reason[192];
	const char *dict = GetDefaultCracklibDict(), *why;
	char stem[KILN_PASSWORD_MAX + 1];

	if (!password_dict_present(dict))
		return "cannot be checked: the common-password dictionary is missing";
	if (password_is_walk(pw, len))
		return "is too common: it is a keyboard or alphabet sequence";
	why = FascistCheckUser(pw, dict, "kiln", NULL);
	if (why == NULL && password_stem(pw, len, stem, sizeof(stem)) > 0)
		why = FascistCheckUser(stem, dict, "kiln", NULL);
	explicit_bzero(stem, sizeof(stem));
	if (why == NULL)
		return NULL;
	if (snprintf(reason, sizeof(reason), "is too common: %s", why) < 0)
		return "is too common";
	return reason;
}

/* The returned reason is a constant or a static buffer valid until the next
 * call (workers are single-threaded; cracklib itself is not reentrant). */
const char *kiln_password_policy(const char *pw, size_t len, int common_check)
{
	char copy[KILN_PASSWORD_MAX + 1];
	const char *why;
	size_t i, k;

	if (len < KILN_PASSWORD_MIN)
		return "must be at least 12 bytes";
	if (len > KILN_PASSWORD_MAX)
		return "must be at most 1024 bytes";
	for (i = 0; i < len; i += k) {
		k = kiln_utf8_len((const unsigned char *)pw + i, len - i);
		if (k == 0 || pw[i] == '\0')
			return "must be valid UTF-8 without NUL characters";
	}
	if (!common_check)
		return NULL;
	memcpy(copy, pw, len);
	copy[len] = '\0';
	why = password_common(copy, len);
	explicit_bzero(copy, sizeof(copy));
	return why;
}
