/* libFuzzer: answer rules and grading over arbitrary bytes. Input: one byte
 * choosing the kind (low 2 bits) and a tolerance (next 3 bits), the rule up
 * to the first NUL (at most KILN_ANSWER_REGEX_MAX bytes: the limit of the
 * costliest kind), then the answer (at most KILN_ANSWER_MAX + 1 bytes, so
 * the overlong path is reached). Invariants: a grade is -1, 0 or 1; it is
 * -1 exactly when the rule check (or the tolerance) refuses; a valid
 * exact, choice or numeric rule is right about itself; exact is symmetric. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const double tolerances[8] = {0, 0.5, 1e-9, 1e300, -1, NAN, INFINITY, 1};

static int tolerance_ok(double t)
{
	return t >= 0 && isfinite(t);
}

/* A NUL-terminated copy of s, or NULL when it holds a NUL. */
static char *cstr(const char *s, size_t len)
{
	char *c;

	if (memchr(s, '\0', len) != NULL || (c = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(c, s, len);
	c[len] = '\0';
	return c;
}

static void check_self(int kind, const char *rule, double tol)
{
	char why[256];

	if (kind == KILN_ANSWER_REGEX || (kind == KILN_ANSWER_NUMERIC && !tolerance_ok(tol)))
		return;
	if (kiln_answer_grade(kind, rule, tol, rule, strlen(rule), why, sizeof(why)) != 1)
		abort();
}

/* exact(rule, answer) == exact(answer, rule) when both are valid rules. */
static void check_symmetric(const char *rule, const char *answer, size_t alen, int g)
{
	char why[256], *a = cstr(answer, alen);

	if (a != NULL && kiln_answer_rule_check(KILN_ANSWER_EXACT, a, why, sizeof(why)) == NULL &&
	    kiln_answer_grade(KILN_ANSWER_EXACT, a, 0, rule, strlen(rule), why, sizeof(why)) != g)
		abort();
	free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256], cwhy[256];
	const char *rule, *answer, *nul, *refused;
	size_t rlen, alen;
	int kind, g;
	double tol;

	if (size < 2)
		return 0;
	kind = data[0] & 3;
	tol = tolerances[(data[0] >> 2) & 7];
	rule = (const char *)data + 1;
	nul = memchr(rule, '\0', size - 1);
	if (nul == NULL)
		return 0;
	rlen = (size_t)(nul - rule);
	answer = nul + 1;
	alen = size - 1 - rlen - 1;
	if (rlen > KILN_ANSWER_REGEX_MAX || alen > KILN_ANSWER_MAX + 1)
		return 0;

	why[0] = '\0';
	g = kiln_answer_grade(kind, rule, tol, answer, alen, why, sizeof(why));
	refused = kiln_answer_rule_check(kind, rule, cwhy, sizeof(cwhy));
	if (g < -1 || g > 1)
		abort();
	if ((g == -1) != (refused != NULL || (kind == KILN_ANSWER_NUMERIC && !tolerance_ok(tol))))
		abort();
	if (g == -1 && (why[0] == '\0' || memchr(why, '\0', sizeof(why)) == NULL))
		abort();
	if (g == 1 && alen > KILN_ANSWER_MAX)
		abort();
	if (refused == NULL) {
		check_self(kind, rule, tol);
		if (kind == KILN_ANSWER_EXACT && alen <= KILN_ANSWER_MAX)
			check_symmetric(rule, answer, alen, g);
	}
	if (kiln_answer_kind_name(kind) == NULL ||
	    kiln_answer_kind_parse(kiln_answer_kind_name(kind)) != kind)
		abort();
	return 0;
}
