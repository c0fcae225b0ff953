/* answer: the answer rules of exercises (see kiln/answer.h). Nothing here
 * allocates on the heap except regcomp, and nothing keeps state: a rule is
 * checked, or compiled and applied, on every call.
 *
 * An author's regex runs in the worker on every submission, so its cost is
 * bounded before regcomp sees it. glibc's matcher is exponential with
 * back-references; an interval (or '+') copies its operand, so
 * (a{0,100}){0,100} is 10,000 states and regcomp alone had not finished
 * after 10 s; runs of quantifiers ("a??????...") and deeply nested
 * repeated groups take seconds to compile. So back-references and
 * quantified quantifiers are refused, groups nest at most REGEX_DEPTH_MAX
 * deep, and the rule's size with every copy expanded must stay within
 * REGEX_STATES_MAX. tests/fuzz/fuzz_answer.c found the cost of '+', of
 * glibc's "{,n}" and of quantifier runs. */
#include <float.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/answer.h"

/* The most states a rule may compile to (estimated): a 1,000-byte answer
 * then takes under 100 ms against the worst rule we know, (a{0,20}){0,19},
 * and well under 1 ms against realistic ones. */
#define REGEX_STATES_MAX 400

/* Longer numbers are not numbers a person types. */
#define NUMBER_MAX 100

static const char *const kind_names[] = {
    [KILN_ANSWER_EXACT] = "exact",
    [KILN_ANSWER_NUMERIC] = "numeric",
    [KILN_ANSWER_REGEX] = "regex",
    [KILN_ANSWER_CHOICE] = "choice",
};

#define STR_(x) #x
#define STR(x)  STR_(x)

#define KIND_COUNT ((int)(sizeof(kind_names) / sizeof(kind_names[0])))

int kiln_answer_kind_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < KIND_COUNT; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

/* Returns the name, or NULL when kind is not a kind. */
const char *kiln_answer_kind_name(int kind)
{
	return kind >= 0 && kind < KIND_COUNT ? kind_names[kind] : NULL;
}

/* ---------------------------------------------------------------- text */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Narrow [*s, *s + *len) to its text without surrounding ASCII whitespace. */
static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Walks trimmed text as exact compares it: a run of whitespace reads as one
 * space, letters read lower-case. */
struct norm {
	const char *p, *end;
};

static void norm_init(struct norm *n, const char *s, size_t len)
{
	trim(&s, &len);
	n->p = s;
	n->end = s + len;
}

/* The next character, or -1 at the end. Trimming guarantees that a run of
 * whitespace is followed by something else before the end. */
static int norm_next(struct norm *n)
{
	if (n->p == n->end)
		return -1;
	if (is_space(*n->p)) {
		while (is_space(*n->p))
			n->p++;
		return ' ';
	}
	return (unsigned char)ascii_lower(*n->p++);
}

static int exact_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	struct norm x, y;
	int c;

	norm_init(&x, a, alen);
	norm_init(&y, b, blen);
	do {
		c = norm_next(&x);
		if (c != norm_next(&y))
			return 0;
	} while (c != -1);
	return 1;
}

/* ---------------------------------------------------------------- numbers */

/* Parse len bytes as a finite decimal number (at most NUMBER_MAX bytes),
 * surrounding whitespace allowed. Only digits, signs, '.', 'e' and 'E' may
 * appear, which keeps strtod from reading hex, inf, nan or anything
 * locale-specific. Returns 0, or -1. */
static int parse_number(const char *s, size_t len, double *out)
{
	char buf[NUMBER_MAX + 1], *end;
	size_t i;

	trim(&s, &len);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (i = 0; i < len; i++)
		if (!strchr("0123456789+-.eE", s[i]) || s[i] == '\0')
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*out = strtod(buf, &end);
	if (end != buf + len || !isfinite(*out))
		return -1;
	/* ERANGE with a finite result is an underflow: the number is tiny,
	 * and what strtod returned is as close to it as a double gets. */
	return 0;
}

/* |given - want| <= tolerance, with a few units in the last place of slack:
 * neither side is exactly the decimal that was written, and 3.15 must be
 * within 0.01 of 3.14. */
static int numeric_within(double given, double want, double tolerance)
{
	double diff = fabs(given - want);
	double scale = fmax(fmax(fabs(given), fabs(want)), tolerance);

	return diff <= tolerance + 4 * DBL_EPSILON * scale;
}

/* ---------------------------------------------------------------- regex */

/* Skip the bracket expression starting at s[i] == '[' (POSIX: a ']' right
 * after "[" or "[^" is literal; [:class:], [.coll.] and [=equiv=] may hold
 * a ']'). Returns the index after its ']', or len when it never closes
 * (regcomp reports that). */
static size_t bracket_end(const char *s, size_t len, size_t i)
{
	char close;

	i++;
	if (i < len && s[i] == '^')
		i++;
	if (i < len && s[i] == ']')
		i++;
	while (i < len && s[i] != ']') {
		if (s[i] == '[' && i + 1 < len && strchr(":.=", s[i + 1])) {
			close = s[i + 1];
			for (i += 2; i + 1 < len && !(s[i] == close && s[i + 1] == ']'); i++)
				;
			i += 2;
			continue;
		}
		i++;
	}
	return i < len ? i + 1 : len;
}

/* A run of digits at s[*j] as a number (saturating at 1,000,000), or -1
 * when there is none. */
static long interval_number(const char *s, size_t len, size_t *j)
{
	long v = -1;

	while (*j < len && s[*j] >= '0' && s[*j] <= '9') {
		v = (v < 0 ? 0 : v) * 10 + (s[(*j)++] - '0');
		if (v > 1000000)
			v = 1000000;
	}
	return v;
}

/* Parse an interval at s[i] == '{' as glibc does: "{m}", "{m,}", "{m,n}"
 * and "{,n}". Returns the index after it with *count set to the most
 * copies of its operand it makes (m + 1 for "{m,}": the copies and a
 * starred one), or 0 when it is not one (regcomp then refuses the rule). */
static size_t interval_end(const char *s, size_t len, size_t i, long *count)
{
	size_t j = i + 1;
	long m, n;

	m = interval_number(s, len, &j);
	n = m;
	if (j < len && s[j] == ',') {
		j++;
		n = interval_number(s, len, &j);
		if (n < 0)
			n = m + 1;
	}
	if (j >= len || s[j] != '}' || (m < 0 && n < 0))
		return 0;
	*count = n > m ? n : m;
	if (*count < 1)
		*count = 1;
	return j + 1;
}

/* Groups nest at most this deep: glibc's compile time grows steeply with
 * nested repetitions ("((((a)*)*)*)*" 66 deep takes most of a second). */
#define REGEX_DEPTH_MAX 10

static const char too_costly[] = "is too costly to match (it repeats too much)";

/* What regex_scan knows at each open group: the states so far, and those
 * of the last atom (what a following quantifier repeats). */
struct regex_scan {
	long cur[REGEX_DEPTH_MAX + 1], last[REGEX_DEPTH_MAX + 1];
	int rep[REGEX_DEPTH_MAX + 1]; /* the group so far contains a quantifier */
	int d;
	int quantified; /* the previous token was a quantifier */
	int last_rep;   /* the last atom is a group that contains a quantifier */
};

/* A quantifier making count copies of the last atom (1 for '*' and '?',
 * which add a node; 2 for '+', which glibc compiles as xx*). POSIX leaves
 * "a**" and "a+?" undefined, and glibc takes exponential time on long
 * runs of them, so a quantifier after a quantifier is refused. */
static const char *regex_quantify(struct regex_scan *sc, long count, int unbounded)
{
	long *cur = &sc->cur[sc->d], *last = &sc->last[sc->d];

	if (sc->quantified)
		return "repeats a repetition (like a** or a+?), which POSIX leaves undefined";
	/* Unbounded repetition of a group that repeats inside ("(a+)*",
	 * "((a{0}){0,100}){0,}", found by fuzz_answer: all memory) makes
	 * glibc's matcher track exponentially many state sets. Bounded ones
	 * ("([0-9]{1,3}\.){3}") are costed as copies above. */
	if (sc->last_rep && unbounded)
		return "repeats a group that itself repeats (like (a+)*), which can take "
		       "exponential "
		       "time";
	sc->quantified = 1;
	sc->rep[sc->d] = 1;
	*cur += *last * (count - 1) + 1;
	*last = *last * count + 1;
	return NULL;
}

/* An atom of n states (a character, a bracket expression, a group). */
static void regex_atom(struct regex_scan *sc, long n)
{
	sc->quantified = 0;
	sc->last_rep = 0;
	sc->last[sc->d] = n;
	sc->cur[sc->d] += n;
}

static const char *regex_open(struct regex_scan *sc)
{
	if (sc->d == REGEX_DEPTH_MAX)
		return "nests groups more than " STR(REGEX_DEPTH_MAX) " deep";
	sc->d++;
	sc->cur[sc->d] = sc->last[sc->d] = 0;
	sc->rep[sc->d] = 0;
	sc->quantified = 0;
	return NULL;
}

/* A closed group is an atom of its contents plus one. */
static const char *regex_close(struct regex_scan *sc)
{
	if (sc->d == 0)
		return "has an unmatched )";
	sc->d--;
	regex_atom(sc, sc->cur[sc->d + 1] + 1);
	sc->last_rep = sc->rep[sc->d + 1];
	sc->rep[sc->d] |= sc->rep[sc->d + 1];
	return NULL;
}

/* Read the rule as regcomp will: count its groups into *groups, check that
 * its parentheses balance (POSIX reads an unmatched ')' as a literal, so
 * "a)|(.*" inside "^(" ")$" would close the anchoring group early and
 * match anything), refuse back-references, and estimate its states: every
 * atom one, a group its contents plus one, a quantifier its operand times
 * its copies. Returns NULL when the rule may be compiled, else the reason. */
static const char *regex_scan(const char *s, size_t len, size_t *groups)
{
	struct regex_scan sc = {.d = 0};
	const char *reason = NULL;
	size_t i = 0, next;
	long count;

	*groups = 0;
	while (i < len) {
		switch (s[i++]) {
		case '(':
			reason = regex_open(&sc);
			(*groups)++;
			break;
		case ')':
			reason = regex_close(&sc);
			break;
		case '|':
			regex_atom(&sc, 1);
			sc.last[sc.d] = 0;
			break;
		case '*':
			reason = regex_quantify(&sc, 1, 1);
			break;
		case '?':
			reason = regex_quantify(&sc, 1, 0);
			break;
		case '+':
			reason = regex_quantify(&sc, 2, 1);
			break;
		case '{':
			next = interval_end(s, len, i - 1, &count);
			if (next > 0) {
				reason = regex_quantify(&sc, count, s[next - 2] == ',');
				i = next;
			} else {
				regex_atom(&sc, 1);
			}
			break;
		case '[':
			regex_atom(&sc, 1);
			i = bracket_end(s, len, i - 1);
			break;
		case '\\':
			if (i < len && s[i] >= '1' && s[i] <= '9')
				return "uses a back-reference, which is not supported";
			regex_atom(&sc, 1);
			i += i < len;
			break;
		default:
			regex_atom(&sc, 1);
			break;
		}
		if (reason != NULL)
			return reason;
		if (sc.cur[sc.d] > REGEX_STATES_MAX || sc.last[sc.d] > REGEX_STATES_MAX)
			return too_costly;
	}
	return sc.d > 0 ? "has an unmatched (" : NULL;
}

/* Check and compile a regex rule, anchored. Returns NULL with *re compiled
 * (regfree it), else the reason (static, or written into why). */
static const char *regex_compile(const char *rule, regex_t *re, char *why, size_t whylen)
{
	char pattern[KILN_ANSWER_REGEX_MAX + 8], msg[160];
	size_t len = strlen(rule);
	const char *reason;
	size_t groups;
	int rc;

	if (len == 0)
		return "is empty";
	if (len > KILN_ANSWER_REGEX_MAX)
		return "is longer than " STR(KILN_ANSWER_REGEX_MAX) " bytes";
	if ((reason = regex_scan(rule, len, &groups)) != NULL)
		return reason;
	/* Anchored, so "a|b" must not match "ab". */
	snprintf(pattern, sizeof(pattern), "^(%s)$", rule);
	rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc == 0) {
		/* regcomp saw the groups regex_scan saw, plus ours: the two
		 * read the parentheses alike, so the anchors hold. */
		if (re->re_nsub == groups + 1)
			return NULL;
		regfree(re);
		return "does not compile: unbalanced parentheses";
	}
	regerror(rc, NULL, msg, sizeof(msg));
	if (why == NULL || whylen == 0)
		return "does not compile";
	snprintf(why, whylen, "does not compile: %s", msg);
	return why;
}

/* 1 when the answer matches, else 0. An answer holding a NUL byte cannot
 * be text the rule was written for. */
static int regex_match(const regex_t *re, const char *answer, size_t len)
{
	char buf[KILN_ANSWER_MAX + 1];

	if (len > KILN_ANSWER_MAX || memchr(answer, '\0', len) != NULL)
		return 0;
	memcpy(buf, answer, len);
	buf[len] = '\0';
	return regexec(re, buf, 0, NULL, 0) == 0;
}

/* ---------------------------------------------------------------- rules */

const char *kiln_answer_rule_check(int kind, const char *rule, char *why, size_t whylen)
{
	const char *reason, *s = rule;
	size_t len;
	double v;
	regex_t re;

	if (rule == NULL)
		return "is missing";
	len = strlen(rule);
	switch (kind) {
	case KILN_ANSWER_EXACT:
	case KILN_ANSWER_CHOICE:
		trim(&s, &len);
		if (len == 0)
			return "is empty";
		return len > KILN_ANSWER_RULE_MAX
		           ? "is longer than " STR(KILN_ANSWER_RULE_MAX) " bytes"
		           : NULL;
	case KILN_ANSWER_NUMERIC:
		return parse_number(rule, len, &v) < 0 ? "is not a number" : NULL;
	case KILN_ANSWER_REGEX:
		reason = regex_compile(rule, &re, why, whylen);
		if (reason == NULL)
			regfree(&re);
		return reason;
	default:
		return "is not an answer kind";
	}
}

/* Copy a reason into why (when it is not already there). Returns -1. */
static int cannot_apply(const char *reason, char *why, size_t whylen)
{
	if (why != NULL && whylen > 0 && reason != why)
		snprintf(why, whylen, "%s", reason);
	return -1;
}

int kiln_answer_grade(int kind, const char *rule, double tolerance, const char *answer, size_t len,
                      char *why, size_t whylen)
{
	const char *reason, *r = rule;
	size_t rlen;
	double want, given;
	regex_t re;
	int ok;

	if (answer == NULL) {
		answer = "";
		len = 0;
	}
	if (kind == KILN_ANSWER_REGEX) {
		if ((reason = regex_compile(rule, &re, why, whylen)) != NULL)
			return cannot_apply(reason, why, whylen);
		ok = regex_match(&re, answer, len);
		regfree(&re);
		return ok;
	}
	if ((reason = kiln_answer_rule_check(kind, rule, why, whylen)) != NULL)
		return cannot_apply(reason, why, whylen);
	if (kind == KILN_ANSWER_NUMERIC && !(tolerance >= 0 && isfinite(tolerance)))
		return cannot_apply("tolerance is not a finite number >= 0", why, whylen);
	if (len > KILN_ANSWER_MAX)
		return 0;
	rlen = strlen(rule);
	switch (kind) {
	case KILN_ANSWER_EXACT:
		return exact_equal(answer, len, rule, rlen);
	case KILN_ANSWER_NUMERIC:
		if (parse_number(rule, rlen, &want) < 0 || parse_number(answer, len, &given) < 0)
			return 0;
		return numeric_within(given, want, tolerance);
	default: /* KILN_ANSWER_CHOICE */
		trim(&answer, &len);
		trim(&r, &rlen);
		return len == rlen && memcmp(answer, r, len) == 0;
	}
}
