/* answer: the answer rules of exercises, shared by kiln-api (an author's
 * rule is checked when the exercise is written) and kiln-worker (grading).
 * Pure functions: unit tests and a fuzz harness drive them directly.
 *
 *   exact    both sides trimmed, runs of ASCII whitespace collapsed to one
 *            space, compared ignoring ASCII case
 *   numeric  the given text is a finite decimal number (strtod, no hex, no
 *            inf/nan, surrounding whitespace allowed) within tolerance of
 *            the rule's number
 *   regex    POSIX extended (regcomp REG_EXTENDED | REG_NOSUB), anchored at
 *            both ends ("^(" rule ")$"); rule at most KILN_ANSWER_REGEX_MAX
 *            bytes; the given answer at most KILN_ANSWER_MAX bytes
 *   choice   trimmed, exactly equal to the rule (which is one of choices) */
#ifndef KILN_ANSWER_H
#define KILN_ANSWER_H

#include <stddef.h>

#define KILN_ANSWER_MAX       1000 /* bytes of a submitted answer */
#define KILN_ANSWER_RULE_MAX  500  /* bytes of an exercise's answer */
#define KILN_ANSWER_REGEX_MAX 200
#define KILN_ANSWER_CHOICES   10

enum kiln_answer_kind {
	KILN_ANSWER_EXACT,
	KILN_ANSWER_NUMERIC,
	KILN_ANSWER_REGEX,
	KILN_ANSWER_CHOICE,
};

/* "exact" → KILN_ANSWER_EXACT ... Returns the kind, or -1 when unknown. */
int kiln_answer_kind_parse(const char *s);
const char *kiln_answer_kind_name(int kind);

/* Is rule a valid rule of kind (numeric: a finite number; regex: at most
 * KILN_ANSWER_REGEX_MAX bytes and compiles; exact/choice: 1..RULE_MAX bytes
 * after trimming)? Choices are checked by the caller. Returns NULL when
 * valid, else the reason ("is not a number", "does not compile: ..."),
 * a static string or one written into why (whylen bytes). */
const char *kiln_answer_rule_check(int kind, const char *rule, char *why, size_t whylen);

/* Grade answer (len bytes, not necessarily NUL-terminated) against rule.
 * tolerance is used by numeric only. Returns 1 correct, 0 incorrect, -1
 * when the rule cannot be applied (invalid rule: why says so). An answer
 * longer than KILN_ANSWER_MAX is incorrect. */
int kiln_answer_grade(int kind, const char *rule, double tolerance, const char *answer, size_t len,
                      char *why, size_t whylen);

#endif
