# shellcheck shell=bash disable=SC2154,SC2034 # status_code/body/headers come from http; tokens go to the tests
# Helpers for tests/e2e/api.bats and replica.bats (kiln-api through nginx):
# accounts of every role, exercise bodies, JSON requests with a token,
# grading waits, the stack's Redis and memcached, and the scoreboard
# counters of a program. Load after helpers.bash and auth-helpers.bash.

# ---------------------------------------------------------------- names

# fresh_name [prefix]: a slug-form name no other test uses ("t12-a-83712").
fresh_name() {
	echo "${1:-t}${BATS_TEST_NUMBER:-0}-$RANDOM$RANDOM"
}

# ---------------------------------------------------------------- accounts

# make_account VAR ROLE [DISPLAY_NAME]: a fresh account of ROLE (user,
# author, admin), logged in. Appends VAR_TOKEN, VAR_ID and VAR_EMAIL to
# $BATS_FILE_TMPDIR/accounts.env (read back by load_accounts).
make_account() {
	local var=$1 role=$2 name=${3:-"$1 Tester"} email pw
	email=$(new_email "$var")
	email=${email,,}
	pw=$(new_password)
	if [ "$role" = admin ]; then
		printf '%s\n' "$pw" | "$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" create-admin \
			--email "$email" --name "$name" >/dev/null || return 1
		USER_ID=$(psql_kiln "SELECT id FROM users WHERE email = '$email'")
	else
		register_user "$email" "$pw" "$name" || return 1
		[ "$role" = user ] || psql_kiln "UPDATE users SET role = '$role' WHERE id = $USER_ID"
	fi
	login "$email" "$pw" || return 1
	{
		printf '%s_TOKEN=%q\n' "$var" "$ACCESS"
		printf '%s_ID=%q\n' "$var" "$USER_ID"
		printf '%s_EMAIL=%q\n' "$var" "$email"
		printf '%s_PASSWORD=%q\n' "$var" "$pw"
	} >>"$BATS_FILE_TMPDIR/accounts.env"
}

load_accounts() {
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/accounts.env"
}

# fresh_user VAR [DISPLAY_NAME]: a new plain user for one test; sets
# VAR_TOKEN and VAR_ID in the caller.
fresh_user() {
	make_account "$1" user "${2:-"$1 Tester"}" || return 1
	load_accounts
}

# ---------------------------------------------------------------- requests

# api METHOD PATH TOKEN [JSON] [curl args...]: a request with a Bearer
# token (TOKEN "-" for none) and, when JSON is given and not "-", a JSON body.
api() {
	local method=$1 path=$2 token=$3 data=${4:--}
	shift 3
	(($# == 0)) || shift
	local -a args=()
	[ "$token" = - ] || args+=(-H "Authorization: Bearer $token")
	if [ "$data" != - ]; then
		local f
		f=$(mktemp)
		printf '%s' "$data" >"$f"
		http "$method" "$path" "${args[@]}" -H 'Content-Type: application/json' \
			--data-binary @"$f" "$@"
		rm -f "$f"
	else
		http "$method" "$path" "${args[@]}" "$@"
	fi
}

# expect STATUS: $status_code is STATUS, else show the response.
expect() {
	[ "$status_code" = "$1" ] && return 0
	printf 'expected HTTP %s, got %s\n%s\n%s\n' "$1" "$status_code" "$headers" "$body" >&2
	return 1
}

# problem STATUS [FIELD]: the response is an RFC 9457 problem+json of
# STATUS with type, title and request_id, and errors[] names FIELD when
# given (assert_problem + assert_field_error in one jq run).
problem() {
	expect "$1" || return 1
	local h=${headers,,}
	if [[ $h != *$'\n'"content-type: application/problem+json"* ]]; then
		printf 'not problem+json:\n%s\n%s\n' "$headers" "$body" >&2
		return 1
	fi
	printf '%s' "$body" | jq -e --argjson s "$1" --arg f "${2:-}" '
		.status == $s and (.type | type == "string" and length > 0)
		and (.title | type == "string" and length > 0)
		and (.request_id | type == "string" and length > 0)
		and ($f == "" or any(.errors[]?; .field == $f))' >/dev/null || {
		echo "not a $1 problem${2:+ naming $2}: $body" >&2
		return 1
	}
}

# jsonc FILTER: jq -c of $body.
jsonc() {
	printf '%s' "$body" | jq -c "$1"
}

# keys: the sorted top-level keys of $body, comma-separated.
keys() {
	json '[keys[]] | sort | join(",")'
}

# ---------------------------------------------------------------- exercises

EX_PUBLIC_KEYS=answer_kind,body,category,choices,created_at,created_by,difficulty,id,points,published,slug,title,updated_at,version
EX_ITEM_KEYS=category,difficulty,id,points,slug,title,updated_at
SUB_KEYS=answer,exercise_id,feedback,graded_at,id,score,status,submitted_at,user_id

# ex_body KIND [JQ_FILTER]: a valid create body of answer_kind KIND (exact,
# numeric, regex, choice) with a fresh slug, passed through JQ_FILTER.
#   exact   "Hello  World"        numeric 3.14 ± 0.01
#   regex   "[0-9]+ apples"       choice  "blue" of red/blue/green
ex_body() {
	local kind=$1 filter=${2:-.}
	jq -cn --arg slug "$(fresh_name ex)" --arg kind "$kind" '
		{slug: $slug, title: ("Exercise " + $slug), category: "general", difficulty: 2,
		 points: 10, body: "Line one\n\tLine two", answer_kind: $kind}
		+ if $kind == "exact" then {answer: "Hello  World"}
		  elif $kind == "numeric" then {answer: "3.14", tolerance: 0.01}
		  elif $kind == "regex" then {answer: "[0-9]+ apples"}
		  else {answer: "blue", choices: ["red", "blue", "green"]} end' | jq -c "$filter"
}

# create_ex TOKEN BODY: POST /api/v1/exercises, 201 or fail; sets EX_ID,
# EX_ETAG.
create_ex() {
	api POST /api/v1/exercises "$1" "$2"
	expect 201 || return 1
	EX_ID=$(json .id)
	EX_ETAG=$(hdr etag)
}

# ---------------------------------------------------------------- submissions

# submit TOKEN EXERCISE_ID ANSWER [curl args...]: POST a submission (no
# assertion); SUB_ID is the id in the response, if any.
submit() {
	local token=$1 ex=$2 answer=$3
	shift 3
	api POST "/api/v1/exercises/$ex/submissions" "$token" \
		"$(jq -cn --arg a "$answer" '{answer: $a}')" "$@"
	SUB_ID=$(printf '%s' "$body" | jq -r '.id // empty' 2>/dev/null || true)
}

now_ms() {
	echo $((${EPOCHREALTIME/./} / 1000))
}

# wait_graded TOKEN SUBMISSION_ID [MS]: poll GET /api/v1/submissions/{id}
# every 50 ms until its status is no longer "queued" (at most MS, default
# 2000, after the call). Leaves the last response in $body; sets GRADE_MS.
wait_graded() {
	local token=$1 id=$2 ms=${3:-2000} t0
	t0=$(now_ms)
	while :; do
		api GET "/api/v1/submissions/$id" "$token"
		GRADE_MS=$(($(now_ms) - t0))
		if [ "$status_code" = 200 ] && [ "$(json .status)" != queued ]; then
			return 0
		fi
		if [ "$GRADE_MS" -ge "$ms" ]; then
			echo "submission $id not graded after $GRADE_MS ms: HTTP $status_code $body" >&2
			return 1
		fi
		sleep 0.05
	done
}

# no_grading_pending: every grade_submission job has finished.
no_grading_pending() {
	[ "$(psql_kiln "SELECT count(*) FROM jobs WHERE kind = 'grade_submission'
		AND state NOT IN ('completed', 'discarded', 'cancelled')")" = 0 ]
}

# ---------------------------------------------------------------- paging

# page_all PATH_WITH_QUERY [TOKEN]: follow next_cursor from PATH to the last
# page; prints every item id, one a line. Fails on any non-200 page.
page_all() {
	local path=$1 token=${2:--} cursor='' sep='?' n=0
	[[ $path == *\?* ]] && sep='&'
	while :; do
		if [ -n "$cursor" ]; then
			api GET "$path${sep}cursor=$cursor" "$token"
		else
			api GET "$path" "$token"
		fi
		expect 200 >&2 || return 1
		json '.items[].id'
		cursor=$(json '.next_cursor // empty')
		[ -n "$cursor" ] || return 0
		n=$((n + 1))
		[ "$n" -lt 1000 ] || return 1
	done
}

# ---------------------------------------------------------------- services

rcli() {
	redis-cli -s "$STACK/sock/redis.sock" "$@"
}

# counter NAME [APP]: the sum over every slot of app counter NAME in
# DIR/run/APP.stats, read with the layout of libcommon/include/kiln/stats.h
# (a small reader compiled once per file). Fails when the scoreboard has no
# counter of that name.
counter() {
	local bin=$BATS_FILE_TMPDIR/stats-counter
	if [ ! -x "$bin" ]; then
		cc -std=c11 -O1 -I"$REPO/libcommon/include" -x c -o "$bin" - <<'C' || return 1
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kiln/stats.h"

int main(int argc, char **argv)
{
	struct stat sb;
	const struct kiln_stats_header *h;
	const struct kiln_stats_slot *slots;
	unsigned long long sum = 0;
	uint32_t i, c;
	int fd = argc == 3 ? open(argv[1], O_RDONLY) : -1;

	if (fd < 0 || fstat(fd, &sb) < 0 || (size_t)sb.st_size < sizeof(*h))
		return 2;
	h = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED || memcmp(h->magic, KILN_STATS_MAGIC, 8) != 0 ||
	    sizeof(*h) + (size_t)h->nslots * sizeof(*slots) > (size_t)sb.st_size)
		return 2;
	slots = (const struct kiln_stats_slot *)(h + 1);
	for (c = 0; c < h->ncounters && c < KILN_STATS_MAX_COUNTERS; c++)
		if (strncmp(h->counter_name[c], argv[2], sizeof(h->counter_name[c])) == 0)
			break;
	if (c == h->ncounters || c == KILN_STATS_MAX_COUNTERS) {
		fprintf(stderr, "no counter %s in %s\n", argv[2], argv[1]);
		return 1;
	}
	for (i = 0; i < h->nslots; i++)
		sum += __atomic_load_n(&slots[i].counters[c], __ATOMIC_RELAXED);
	printf("%llu\n", sum);
	return 0;
}
C
	fi
	"$bin" "$STACK/run/${2:-api}.stats" "$1"
}
