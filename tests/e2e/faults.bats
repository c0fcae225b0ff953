#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, *_TOKEN, EX_ID: set by the helpers
# Faults under load (issue 9, docs/reliability.md "Faults under load"):
# workers killed with SIGKILL under wrk load, PostgreSQL, Redis and
# memcached stopped while requests keep coming, kiln-worker's executors
# killed mid-job, slowloris clients and a 10 MB body, and kills during
# submissions. Each test counts what its load saw and asserts on the counts;
# the figures go to the TAP output as "# ..." lines (docs/reliability.md
# quotes them).
#
# The stack: kiln-api with 4 workers, kiln-auth with 2, kiln-worker with 2
# executors, behind nginx (relaxed limits: every 429 here is kiln-auth's).
# A stopped service is started again in teardown whatever happens, and the
# background load of a failed test is stopped by its pid.

bats_require_minimum_version 1.5.0

API_WORKERS=4
AUTH_WORKERS=2
# kiln-auth's per-address limit (GCRA): 60 a minute, bursts of 5.
IP_RATE=60
IP_PERIOD_MS=60000
IP_BURST=5

setup_file() {
	load helpers
	load auth-helpers
	load api-helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[server.api]
	workers = $API_WORKERS

	[server.auth]
	workers = $AUTH_WORKERS

	[server.worker]
	workers = 2
	request_timeout = 20s

	[auth]
	ip_rate = $IP_RATE
	ip_period = $((IP_PERIOD_MS / 1000))s
	ip_burst = $IP_BURST
	argon2_memory = 8M
	argon2_iterations = 1

	[worker]
	poll_interval = 200ms
	heartbeat = 300ms
	rescue_after = 2s
	lease_ttl = 3s
	job_timeout = 15s
	test_kinds = on
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	: >"$BATS_FILE_TMPDIR/accounts.env"
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up api auth worker
	make_account AUTHOR author "Arthur Author"
	make_account ALICE user "Alice Learner"
	load_accounts
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	echo "EX_ID=$EX_ID" >>"$BATS_FILE_TMPDIR/accounts.env"
}

teardown_file() {
	load helpers
	stack_attach
	stack_down
}

setup() {
	load helpers
	load auth-helpers
	load api-helpers
	load faults-helpers
	stack_attach
	load_accounts
}

teardown() {
	bg_stop_all
	if [ -e "$BATS_FILE_TMPDIR/services-stopped" ]; then
		stack start postgres redis memcached >/dev/null 2>&1 || true
		rm -f "$BATS_FILE_TMPDIR/services-stopped"
	fi
}

# say TEXT: a figure for the TAP output (and docs/reliability.md).
say() {
	echo "# $*" >&3
}

ctl() {
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" "$@"
}

# stop_service NAME: stop a stack service; teardown starts it again.
stop_service() {
	touch "$BATS_FILE_TMPDIR/services-stopped"
	stack stop "$1" >/dev/null
}

# start_service NAME
start_service() {
	stack start "$1" >/dev/null
	rm -f "$BATS_FILE_TMPDIR/services-stopped"
}

# died_by_sigkill APP PID: APP's master logged the death of worker PID by
# signal 9.
died_by_sigkill() {
	grep -q "\"msg\":\"worker died\",\"pid\":$2,.*\"signal\":9" "$STACK/log/$1.log"
}

# wrk_ok NAME KILLS: the wrk run NAME saw no transport error or timeout, and
# at most KILLS non-2xx responses, every one a 502 (nginx's answer for a
# request whose worker died under it).
wrk_ok() {
	local j
	j=$(cat "$BATS_TEST_TMPDIR/$1.json")
	[ "$(jq .errors <<<"$j")" = 0 ] || {
		echo "$1: transport errors: $j" >&2
		return 1
	}
	[ "$(jq .non2xx <<<"$j")" -le "$2" ] || {
		echo "$1: more failures than kills ($2): $j" >&2
		return 1
	}
	[[ "$(jq -r .statuses <<<"$j" | tr ',' '\n' | grep -v '^$' | grep -cv '^502:')" == 0 ]] || {
		echo "$1: a failure other than 502: $j" >&2
		return 1
	}
}

@test "kill -9 of random api and auth workers under wrk load: at most the killed workers' in-flight requests fail (502); the masters respawn them" {
	api_master=$(master_pid api)
	auth_master=$(master_pid auth)
	wrk_load api 5 8 "/api/v1/exercises/$EX_ID" &
	bg_started wrk-api $!
	wrk_load auth 5 4 /auth/me "$ALICE_TOKEN" &
	bg_started wrk-auth $!
	sleep 1
	killed_api=()
	killed_auth=()
	for _ in 1 2 3; do
		killed_api+=("$(kill_random_worker api)")
		sleep 0.6
		killed_auth+=("$(kill_random_worker auth)")
		sleep 0.6
	done
	bg_wait wrk-api 30
	bg_wait wrk-auth 30
	say "api, 3 kills: $(cat "$BATS_TEST_TMPDIR/api.json")"
	say "auth, 3 kills: $(cat "$BATS_TEST_TMPDIR/auth.json")"
	# Real load: hundreds of requests on each.
	[ "$(jq .requests "$BATS_TEST_TMPDIR/api.json")" -ge 300 ]
	[ "$(jq .requests "$BATS_TEST_TMPDIR/auth.json")" -ge 150 ]
	wrk_ok api 3
	wrk_ok auth 3
	# The same masters, back to full strength with new workers.
	wait_until 10 workers_are api "$API_WORKERS"
	wait_until 10 workers_are auth "$AUTH_WORKERS"
	assert_equal "$(master_pid api)" "$api_master"
	assert_equal "$(master_pid auth)" "$auth_master"
	for pid in "${killed_api[@]}"; do
		run -1 grep -qx "$pid" <<<"$(worker_pids api)"
		died_by_sigkill api "$pid"
	done
	for pid in "${killed_auth[@]}"; do
		run -1 grep -qx "$pid" <<<"$(worker_pids auth)"
		died_by_sigkill auth "$pid"
	done
	api GET "/api/v1/exercises/$EX_ID" -
	expect 200
}

@test "kill -9 of api workers during concurrent submissions: every submission has its grading job and every job its submission" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	probe_start sub 6 POST "/api/v1/exercises/$ex/submissions" "$ALICE_TOKEN" '{"answer":"Hello  World"}'
	sleep 1.5
	kills=0
	for _ in 1 2 3; do
		kill_random_worker api >/dev/null
		kills=$((kills + 1))
		sleep 0.8
	done
	sleep 1
	probe_stop sub
	f=$BATS_TEST_TMPDIR/sub.tsv
	s=$(summary "$f")
	accepted=$(count_status "$f" 202)
	failed=$(($(field n "$s") - accepted))
	rows=$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex")
	say "submissions, $kills kills: $s; rows $rows"
	[ "$accepted" -ge 50 ]
	# Only in-flight requests failed, each as nginx's 502.
	[ "$failed" -le "$kills" ]
	[ "$failed" = "$(count_status "$f" 502)" ]
	# A killed request either committed (row and job, the client saw 502)
	# or rolled back (neither): never more rows than answers plus kills.
	[ "$rows" -ge "$accepted" ]
	[ "$rows" -le $((accepted + failed)) ]
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions s WHERE s.exercise_id = $ex AND
		(SELECT count(*) FROM jobs j WHERE j.kind = 'grade_submission'
		 AND j.args->>'submission_id' = s.id::text) <> 1")" 0
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs j WHERE j.kind = 'grade_submission'
		AND NOT EXISTS (SELECT FROM submissions s WHERE s.id::text = j.args->>'submission_id')")" 0
	# And every one of them is graded.
	wait_until 30 no_grading_pending
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex AND status = 'graded' AND score > 0")" "$rows"
	wait_until 10 workers_are api "$API_WORKERS"
}

# pg_back: the stack's database accepts a connection of kiln.
pg_back() {
	psql_kiln 'SELECT 1' >/dev/null 2>&1
}

@test "PostgreSQL stopped under load: 503 problem+json within the connect timeout, never 502 or a hang; recovered within 5 s of its return" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	for app in api auth worker; do
		wc -l <"$STACK/log/$app.log" >"$BATS_TEST_TMPDIR/$app.lines"
	done
	probe_start pgr 3 GET /api/v1/me/progress "$ALICE_TOKEN"
	probe_start pgw 2 POST "/api/v1/exercises/$ex/submissions" "$ALICE_TOKEN" '{"answer":"nope"}'
	sleep 1
	t_stop=$(now_ms)
	stop_service postgres
	t_down=$(now_ms)
	sleep 3
	stack start postgres >"$BATS_TEST_TMPDIR/pg-start.log" 2>&1 &
	bg_started pg-start $!
	until pg_back; do
		[ $(($(now_ms) - t_down)) -lt 30000 ] || false
		sleep 0.02
	done
	t_back=$(now_ms)
	bg_wait pg-start 30
	rm -f "$BATS_FILE_TMPDIR/services-stopped"
	sleep 7
	probe_stop pgr
	probe_stop pgw
	r=$BATS_TEST_TMPDIR/pgr.tsv
	w=$BATS_TEST_TMPDIR/pgw.tsv
	say "stopping took $((t_down - t_stop)) ms, down for $((t_back - t_down)) ms"
	for f in "$r" "$w"; do
		all=$(summary "$f")
		down=$(summary "$f" "$t_down" "$t_back")
		after=$(summary "$f" $((t_back + 5000)))
		say "$(basename "$f" .tsv): all: $all"
		say "$(basename "$f" .tsv): while down: $down"
		say "$(basename "$f" .tsv): from 5 s after its return: $after"
		# Nothing but success or 503 problem+json, and no answer slower
		# than [database] connect_timeout (2 s): no 502, no hang.
		[[ ",$(field statuses "$all")," =~ ^(,(200|202|503):[0-9]+)+,$ ]]
		assert_equal "$(field bad_ctype "$all")" 0
		[ "$(field max_ms "$all")" -lt 2000 ]
		# While it was down: only 503s, and many of them.
		[[ "$(field statuses "$down")" =~ ^503:[0-9]+$ ]]
		[ "$(field n "$down")" -ge 10 ]
		# 5 s after its return: only successes.
		[[ "$(field statuses "$after")" =~ ^20[02]:[0-9]+$ ]]
		[ "$(field n "$after")" -ge 5 ]
		first_ok=$(awk -v t="$t_back" '$1 >= t && $3 ~ /^2/ { print $2; exit }' "$f")
		say "$(basename "$f" .tsv): first success $((first_ok - t_back)) ms after PostgreSQL accepted connections"
		[ $((first_ok - t_back)) -le 5000 ]
	done
	# Everything the programs logged meanwhile is JSON lines: libpq's
	# notices (the server's goodbye) included.
	for app in api auth worker; do
		run bash -c "tail -n +$(($(cat "$BATS_TEST_TMPDIR/$app.lines") + 1)) '$STACK/log/$app.log' | grep -v '^{\"ts\":'"
		assert_output ''
	done
	# kiln-auth sat idle through the outage: its workers' connections died
	# with PostgreSQL, and the first request of each must not pay for it.
	for _ in $(seq $((AUTH_WORKERS * 3))); do
		api GET /auth/me "$ALICE_TOKEN"
		expect 200
	done
}

@test "Redis stopped: failed logins are still rate-limited by each worker's in-process limiter (429); the api serves reads and writes" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	stop_service redis
	run ! rcli ping
	probe_start rdr 2 GET "/api/v1/exercises/$ex"
	probe_start rdw 1 POST "/api/v1/exercises/$ex/submissions" "$ALICE_TOKEN" '{"answer":"Hello  World"}'
	rej0=$(counter ratelimit_rejections auth)
	t0=$(now_ms)
	# Sign-in works without Redis...
	login "$ALICE_EMAIL" "$ALICE_PASSWORD"
	# ...and guessing is limited: 60 failed logins from one address, each
	# for an account that does not exist (no account lockout involved).
	failed_logins 60 >"$BATS_TEST_TMPDIR/logins.txt"
	n401=$(grep -c '^401 ' "$BATS_TEST_TMPDIR/logins.txt" || true)
	n429=$(grep -c '^429 [1-9][0-9]* too many requests from this address; try again later$' \
		"$BATS_TEST_TMPDIR/logins.txt" || true)
	other=$((60 - n401 - n429))
	elapsed=$(($(now_ms) - t0))
	probe_stop rdr
	probe_stop rdw
	rej=$(($(counter ratelimit_rejections auth) - rej0))
	# Each auth worker allows its burst plus what its clock refilled.
	allowed_max=$((AUTH_WORKERS * (IP_BURST + (elapsed * IP_RATE + IP_PERIOD_MS - 1) / IP_PERIOD_MS + 1)))
	say "logins without Redis in $elapsed ms: 1 valid + $n401 failed allowed (at most $allowed_max), $n429 refused 429, $other other"
	say "api reads: $(summary "$BATS_TEST_TMPDIR/rdr.tsv")"
	say "api writes: $(summary "$BATS_TEST_TMPDIR/rdw.tsv")"
	assert_equal "$other" 0
	[ "$n429" -ge 1 ]
	[ $((n401 + 1)) -le "$allowed_max" ]
	assert_equal "$rej" "$n429"
	rs=$(summary "$BATS_TEST_TMPDIR/rdr.tsv")
	ws=$(summary "$BATS_TEST_TMPDIR/rdw.tsv")
	[[ "$(field statuses "$rs")" =~ ^200:[0-9]+$ ]]
	[[ "$(field statuses "$ws")" =~ ^202:[0-9]+$ ]]
	[ "$(field n "$rs")" -ge 20 ]
	[ "$(field n "$ws")" -ge 5 ]
	# Redis back: its (fresh) limiter decides again and a login passes.
	start_service redis
	rcli ping
	login "$ALICE_EMAIL" "$ALICE_PASSWORD"
	[ -n "$(rcli --scan --pattern 'kiln:rl:login:*')" ]
}

# became_cached ID: an anonymous GET of exercise ID was a cache hit.
became_cached() {
	local h0
	h0=$(counter api_cache_hits)
	api GET "/api/v1/exercises/$1" -
	[ "$status_code" = 200 ] && [ "$(counter api_cache_hits)" -gt "$h0" ]
}

@test "memcached stopped: the api serves exercises from PostgreSQL with correct bodies; once it is back the cache is used again" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.title = "Before the outage"')"
	id=$EX_ID
	wait_until 5 became_cached "$id"
	api GET "/api/v1/exercises/$id" -
	before=$(jsonc .)
	stop_service memcached
	hits0=$(counter api_cache_hits)
	probe_run mcr 3 3 GET "/api/v1/exercises/$id"
	s=$(summary "$BATS_TEST_TMPDIR/mcr.tsv")
	say "reads without memcached: $s"
	[[ "$(field statuses "$s")" =~ ^200:[0-9]+$ ]]
	[ "$(field n "$s")" -ge 30 ]
	# None of them came from the cache.
	assert_equal "$(counter api_cache_hits)" "$hits0"
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(jsonc .)" "$before"
	# A write without the cache; the next read shows it.
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"title":"During the outage"}' -H "If-Match: \"e${id}v1a\""
	expect 200
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "During the outage"
	assert_equal "$(json .version)" 2
	assert_equal "$(jsonc 'del(.title, .version, .updated_at)')" "$(jq -c 'del(.title, .version, .updated_at)' <<<"$before")"
	assert_equal "$(counter api_cache_hits)" "$hits0"
	start_service memcached
	t0=$(now_ms)
	wait_until 10 became_cached "$id"
	say "first cache hit $(($(now_ms) - t0)) ms after memcached was back"
	assert_equal "$(json .title)" "During the outage"
}

# jobs_finished IDS N: N jobs of IDS (comma-separated) are in a final state.
jobs_finished() {
	[ "$(psql_kiln "SELECT count(*) FROM jobs WHERE id IN ($1)
		AND state IN ('completed', 'discarded', 'cancelled')")" = "$2" ]
}

# running_sleeper IDS [PID...]: prints the pid of a live executor, none of
# PIDs, that runs one of the 1.5 s sleep jobs of IDS; fails when none does.
running_sleeper() {
	local ids=$1 by pid
	shift
	for by in $(psql_kiln "SELECT attempted_by FROM jobs WHERE id IN ($ids)
		AND state = 'running' AND args->>'ms' = '1500' ORDER BY id"); do
		pid=${by##*:}
		[[ " $* " == *" $pid "* ]] && continue
		kill -0 "$pid" 2>/dev/null || continue
		echo "$pid"
		return 0
	done
	return 1
}

@test "kiln-worker executors killed (-9) mid-job: the jobs are rescued and every enqueued job completes" {
	sleepers=$(ctl jobs enqueue sleep '{"ms": 1500}' --count 4)
	quick=$(ctl jobs enqueue sleep '{"ms": 20}' --count 40)
	all=$(printf '%s\n%s\n' "$sleepers" "$quick" | paste -sd, -)
	n=$(printf '%s\n%s\n' "$sleepers" "$quick" | wc -l)
	killed=()
	for _ in 1 2; do
		wait_until 10 running_sleeper "$all" "${killed[@]}"
		pid=$(running_sleeper "$all" "${killed[@]}")
		assert_equal "$(ps -o ppid= -p "$pid" | tr -d ' ')" "$(master_pid worker)"
		kill -KILL "$pid"
		killed+=("$pid")
	done
	wait_until 40 jobs_finished "$all" "$n" || {
		psql_kiln "SELECT id, state, attempt, attempted_by, errors FROM jobs WHERE id IN ($all)
			AND state <> 'completed' ORDER BY id"
		false
	}
	completed=$(psql_kiln "SELECT count(*) FROM jobs WHERE id IN ($all) AND state = 'completed'")
	rescued=$(psql_kiln "SELECT count(*) FROM jobs WHERE id IN ($all) AND errors[1]->>'error' LIKE 'rescued:%'")
	say "$n jobs enqueued, $completed completed, $rescued rescued after 2 executor kills"
	assert_equal "$completed" "$n"
	[ "$rescued" -ge 2 ]
	# Every attempt is accounted for: one per rescue (a rescued job may be
	# killed again by the second kill), plus the one that completed.
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs WHERE id IN ($all)
		AND (attempt <> coalesce(array_length(errors, 1), 0) + 1 OR attempt > 1 + ${#killed[@]}
		     OR EXISTS (SELECT FROM unnest(errors) e WHERE e->>'error' NOT LIKE 'rescued:%'))")" 0
	wait_until 10 workers_are worker 2
	for pid in "${killed[@]}"; do
		run -1 grep -qx "$pid" <<<"$(worker_pids worker)"
	done
}

# api_requests_logged N: kiln-api's log holds N request lines.
api_requests_logged() {
	[ "$(grep -c '"msg":"request"' "$STACK/log/api.log")" -eq "$1" ]
}

@test "slowloris (200 slow connections) and a 10 MB body: the api never sees them, normal requests keep their latency, the body gets 413 before it is read" {
	probe_run base 2 3 GET "/api/v1/exercises/$EX_ID"
	base=$(summary "$BATS_TEST_TMPDIR/base.tsv")
	lines0=$(grep -c '"msg":"request"' "$STACK/log/api.log")
	slowloris 6 200 "$BATS_TEST_TMPDIR/slow.out" &
	bg_started slowloris $!
	sleep 1.5
	probe_run during 3 3 GET "/api/v1/exercises/$EX_ID"
	during=$(summary "$BATS_TEST_TMPDIR/during.tsv")

	# 10 MB announced and not sent: nginx answers 413 at once, without
	# waiting for a byte of it.
	read -r st ms < <(big_body_headers_only "/api/v1/exercises/$EX_ID/submissions" 10485760 faults-big-announced)
	say "10 MB announced, none sent: HTTP $st after $ms ms"
	assert_equal "$st" 413
	[ "$ms" -lt 1000 ]
	# 10 MB sent: 413 problem+json.
	head -c 10485760 /dev/zero | tr '\0' 'x' >"$BATS_TEST_TMPDIR/big.json"
	api POST "/api/v1/exercises/$EX_ID/submissions" "$ALICE_TOKEN" - -H 'Content-Type: application/json' \
		-H 'X-Request-ID: faults-big-sent' --data-binary @"$BATS_TEST_TMPDIR/big.json"
	problem 413

	bg_wait slowloris 20
	slow=$(cat "$BATS_TEST_TMPDIR/slow.out")
	say "slowloris: $slow"
	say "normal requests before: $base"
	say "normal requests during: $during"
	# The attack held its connections open all along.
	[ "$(field open_at_end "$slow")" -ge 190 ]
	# Every normal request succeeded, and p95 stayed within 3 x the
	# baseline plus 100 ms.
	[[ "$(field statuses "$during")" =~ ^200:[0-9]+$ ]]
	[ "$(field n "$during")" -ge 30 ]
	[ "$(field p95_ms "$during")" -le $(($(field p95_ms "$base") * 3 + 100)) ]
	# The api saw exactly the normal requests: no slow one, no big body.
	wait_until 2 api_requests_logged $((lines0 + $(field n "$during")))
	run -1 grep -q 'faults-big-' "$STACK/log/api.log"
	grep -q '"status":413,.*"request_id":"faults-big-announced"' "$STACK/log/nginx-access.log"
	grep -q '"status":413,.*"request_id":"faults-big-sent"' "$STACK/log/nginx-access.log"
}
