#!/usr/bin/env bats
# shellcheck disable=SC2154 # status_code, body: set by the helpers
# kiln-metrics through nginx: /metrics merges every program's scoreboard
# (health, auth, metrics, worker, and api when it is built) into one
# Prometheus exposition that promtool accepts; counters rise by exactly
# what was done and never go backwards when a worker is killed; the bearer
# token from [metrics] token_file is enforced; with PostgreSQL down the
# answer is still 200, without the job-queue gauges, and the failure is
# counted.

setup_file() {
	load helpers
	"$KILN_BUILD/kilnctl" gen-secret "$BATS_FILE_TMPDIR/metrics.token" >/dev/null
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<EOF
[metrics]
token_file = $BATS_FILE_TMPDIR/metrics.token
cache = 500ms

[worker]
poll_interval = 200ms
test_kinds = on
EOF
	export KILN_CONF_EXTRA=$BATS_FILE_TMPDIR/extra.conf
	local apps=(health auth metrics worker)
	[ -x "$KILN_BUILD/kiln-api" ] && apps+=(api)
	stack_up "${apps[@]}"
}

teardown_file() {
	load helpers
	stack_attach
	stack_down
}

setup() {
	load helpers
	load auth-helpers
	stack_attach
	TOKEN=$(cat "$BATS_FILE_TMPDIR/metrics.token")
}

# scrape NAME: GET /metrics with the token into $BATS_TEST_TMPDIR/NAME;
# fails unless the answer is 200.
scrape() {
	local code
	code=$(curl -sS --max-time 10 -o "$BATS_TEST_TMPDIR/$1" -w '%{http_code}' \
		-H "Authorization: Bearer $TOKEN" "$BASE/metrics")
	[ "$code" = 200 ] || {
		echo "scrape $1: HTTP $code" >&2
		return 1
	}
}

# val NAME SERIES: the value of series `SERIES` (name{labels}, exactly) in
# scrape NAME, or "absent".
val() {
	awk -v s="$2" '{ v = $NF; sub(/ [^ ]*$/, "") } $0 == s { print v; found = 1 }
		END { if (!found) print "absent" }' "$BATS_TEST_TMPDIR/$1"
}

# delta A B SERIES: value in scrape B minus value in scrape A (absent = 0).
delta() {
	local a b
	a=$(val "$1" "$3")
	b=$(val "$2" "$3")
	[ "$a" = absent ] && a=0
	[ "$b" = absent ] && b=0
	awk -v a="$a" -v b="$b" 'BEGIN { print b - a }'
}

# The commit kiln-metrics -V reports: "kiln-metrics 0.1.0 (COMMIT)".
commit() {
	"$KILN_BUILD/kiln-metrics" -V | sed -n 's/^kiln-metrics [^ ]* (\(.*\))$/\1/p'
}

# The rules Prometheus's parser relies on and promtool does not all check:
# each family's TYPE once, its samples right after it (a histogram's
# _bucket, _sum and _count are its own), no series twice.
check_exposition() {
	awk '
		/^# HELP / { next }
		/^# TYPE / {
			if ($3 in fam) { print "family twice: " $3; bad = 1 }
			fam[$3] = 1; cur = $3; type = $4; next
		}
		{
			name = $0; sub(/[{ ].*/, "", name)
			ok = name == cur || (type == "histogram" &&
				(name == cur "_bucket" || name == cur "_sum" || name == cur "_count"))
			if (!ok) { print "outside family " cur ": " $0; bad = 1 }
			key = $0; sub(/ [^ ]*$/, "", key)
			if (key in seen) { print "series twice: " key; bad = 1 }
			seen[key] = 1
		}
		END { exit bad }' "$1"
}

# no_less A B PATTERN: every series matching PATTERN in scrape A is present
# in scrape B with a value at least as large.
no_less() {
	awk -v pat="$3" '
		FNR == NR { if ($0 ~ pat) { v = $NF; sub(/ [^ ]*$/, ""); a[$0] = v }; next }
		$0 ~ pat { v = $NF; sub(/ [^ ]*$/, ""); b[$0] = v }
		END {
			for (k in a) {
				n++
				if (!(k in b) || b[k] + 0 < a[k] + 0) { print "went back: " k " " a[k] " -> " b[k]; bad = 1 }
			}
			if (n == 0) { print "nothing matched " pat; bad = 1 }
			exit bad
		}' "$BATS_TEST_TMPDIR/$1" "$BATS_TEST_TMPDIR/$2"
}

@test "/metrics wants the bearer token from [metrics] token_file" {
	http GET /metrics
	assert_equal "$status_code" 401
	[[ "$(hdr WWW-Authenticate)" == Bearer* ]]
	[[ "$body" != *kiln_* ]]
	http GET /metrics -H "Authorization: Bearer wrong-token"
	assert_equal "$status_code" 401
	http GET /metrics -H "Authorization: Bearer ${TOKEN}x"
	assert_equal "$status_code" 401
	http GET /metrics -H "Authorization: Bearer ${TOKEN:1}"
	assert_equal "$status_code" 401
	http GET /metrics -H "Authorization: Basic $(printf 'x:%s' "$TOKEN" | base64 -w0)"
	assert_equal "$status_code" 401
	http GET /metrics -H "Authorization: bearer $TOKEN"
	assert_equal "$status_code" 200
	http GET /metrics -H "Authorization: Bearer $TOKEN"
	assert_equal "$status_code" 200
	[[ "$(hdr Content-Type)" == "text/plain; version=0.0.4"* ]]
	[[ "$body" == *"kiln_http_requests_total{app=\"metrics\",route=\"/metrics\",method=\"GET\",code=\"4xx\"}"* ]]
}

@test "/metrics refuses an address outside nginx's allow-list, token or not" {
	code=$(curl -s -o "$BATS_TEST_TMPDIR/out" -w '%{http_code}' --interface 127.0.0.2 \
		-H "Authorization: Bearer $TOKEN" "$BASE/metrics")
	assert_equal "$code" 403
	run grep -c 'kiln_' "$BATS_TEST_TMPDIR/out"
	assert_output 0
	# The same request from 127.0.0.1 is served: the address made the difference.
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/metrics")
	assert_equal "$code" 200
}

@test "after traffic every metric family is present" {
	code_is 200 /health/live
	code_is 200 /health/ready
	new_user f
	[ -x "$KILN_BUILD/kiln-api" ] && code_is 200 /api/v1/exercises
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" jobs enqueue noop >/dev/null
	wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		grep -q '^kiln_jobs_executed_total{app=\"worker\",kind=\"noop\"'"
	scrape m
	for f in kiln_http_requests_total kiln_http_request_duration_seconds_bucket \
		kiln_http_request_duration_seconds_sum kiln_http_request_duration_seconds_count \
		kiln_http_request_bytes_total kiln_http_response_bytes_total \
		kiln_http_requests_in_flight kiln_workers kiln_worker_restarts_total \
		kiln_db_queries_total kiln_db_query_errors_total kiln_db_query_duration_seconds_bucket \
		kiln_db_connects_total kiln_db_connect_errors_total \
		kiln_jobs_executed_total kiln_job_duration_seconds_bucket \
		kiln_build_info kiln_auth_logins_total kiln_auth_lockouts_total \
		kiln_auth_refresh_reuse_detected_total kiln_ratelimit_rejections_total \
		kiln_jobs kiln_jobs_oldest_available_age_seconds kiln_metrics_scrape_errors_total \
		process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
		process_start_time_seconds; do
		grep -q "^$f[{ ]" "$BATS_TEST_TMPDIR/m" || {
			echo "no sample of $f" >&2
			return 1
		}
	done
	if [ -x "$KILN_BUILD/kiln-api" ]; then
		for f in kiln_api_cache_hits_total kiln_api_cache_misses_total; do
			grep -q "^$f{" "$BATS_TEST_TMPDIR/m"
		done
	fi
	# Every family has HELP and TYPE.
	run awk '/^# TYPE / { t[$3] = 1 } /^# HELP / { h[$3] = 1 }
		END { for (f in t) if (!(f in h)) { print "no HELP: " f; bad = 1 }; exit bad }' \
		"$BATS_TEST_TMPDIR/m"
	assert_success
}

@test "promtool accepts the exposition; every family once, its samples together" {
	http GET /health/ready
	scrape m
	run promtool check metrics <"$BATS_TEST_TMPDIR/m"
	echo "$output"
	assert_success
	run check_exposition "$BATS_TEST_TMPDIR/m"
	echo "$output"
	assert_success
	# Every running program is in it, under one header per family.
	for app in health auth metrics worker; do
		[ "$(val m "kiln_workers{app=\"$app\",state=\"idle\"}")" != absent ]
		[ "$(val m "kiln_build_info{app=\"$app\",version=\"0.1.0\",commit=\"$(commit)\"}")" = 1 ]
	done
	[ "$(grep -c '^# TYPE kiln_workers gauge$' "$BATS_TEST_TMPDIR/m")" = 1 ]
	# kiln-worker serves no HTTP: no HTTP series of its own.
	[ "$(grep -c '^kiln_http_[a-z_]*{app="worker"' "$BATS_TEST_TMPDIR/m")" = 0 ]
}

@test "HTTP counters and histograms rise by exactly the requests made" {
	scrape a
	for _ in 1 2 3 4 5; do code_is 200 /health/live; done
	for _ in 1 2 3; do code_is 404 /health/nope; done
	scrape b
	live='{app="health",route="/health/live",method="GET"'
	assert_equal "$(delta a b "kiln_http_requests_total$live,code=\"2xx\"}")" 5
	assert_equal "$(delta a b 'kiln_http_requests_total{app="health",route="unmatched",method="",code="4xx"}')" 3
	assert_equal "$(delta a b "kiln_http_request_duration_seconds_count$live}")" 5
	assert_equal "$(delta a b "kiln_http_request_duration_seconds_bucket$live,le=\"+Inf\"}")" 5
	# +Inf equals _count, and the buckets never decrease.
	assert_equal "$(val b "kiln_http_request_duration_seconds_bucket$live,le=\"+Inf\"}")" \
		"$(val b "kiln_http_request_duration_seconds_count$live}")"
	run awk -v p="kiln_http_request_duration_seconds_bucket$live," \
		'index($0, p) == 1 { if ($NF + 0 < last) bad = 1; last = $NF + 0; n++ } END { exit bad || n != 15 }' \
		"$BATS_TEST_TMPDIR/b"
	assert_success
	[ "$(delta a b "kiln_http_response_bytes_total$live}")" -gt 0 ]
	# The first scrape itself is counted by the second, once.
	assert_equal "$(delta a b 'kiln_http_requests_total{app="metrics",route="/metrics",method="GET",code="2xx"}')" 1
}

@test "auth's counters and PostgreSQL statements are counted in its scoreboard" {
	scrape a
	email=$(new_email m)
	pw=$(new_password)
	register_user "$email" "$pw"
	login_req "$email" "not-the-password-$RANDOM"
	assert_equal "$status_code" 401
	login "$email" "$pw"
	scrape b
	assert_equal "$(delta a b 'kiln_auth_registrations_total{app="auth"}')" 1
	assert_equal "$(delta a b 'kiln_auth_logins_total{app="auth",outcome="bad_credentials"}')" 1
	assert_equal "$(delta a b 'kiln_auth_logins_total{app="auth",outcome="success"}')" 1
	assert_equal "$(delta a b 'kiln_http_requests_total{app="auth",route="/auth/login",method="POST",code="4xx"}')" 1
	q=$(delta a b 'kiln_db_queries_total{app="auth"}')
	[ "$q" -ge 3 ]
	# Every statement reached PostgreSQL and is in the histogram.
	assert_equal "$(delta a b 'kiln_db_query_duration_seconds_count{app="auth"}')" "$q"
	assert_equal "$(delta a b 'kiln_db_query_errors_total{app="auth",reason="refused"}')" 0
	[ "$(val b 'kiln_db_connects_total{app="auth"}')" -ge 1 ]
}

@test "logins: one family by outcome, each attempt counted once" {
	scrape a
	email=$(new_email o)
	pw=$(new_password)
	register_user "$email" "$pw"
	login "$email" "$pw"
	login_req "$email" "not-the-password-$RANDOM"
	assert_equal "$status_code" 401
	login_req "nobody-$RANDOM@example.com" "$pw"
	assert_equal "$status_code" 401
	post_json /auth/login '{"email":"x@example.com"}'
	assert_equal "$status_code" 422
	psql_kiln "UPDATE users SET locked = true WHERE id = $USER_ID"
	login_req "$email" "$pw"
	assert_equal "$status_code" 403
	scrape b
	l='kiln_auth_logins_total{app="auth",outcome='
	assert_equal "$(delta a b "$l\"success\"}")" 1
	assert_equal "$(delta a b "$l\"bad_credentials\"}")" 2
	assert_equal "$(delta a b "$l\"invalid\"}")" 1
	assert_equal "$(delta a b "$l\"locked\"}")" 1
	assert_equal "$(delta a b "$l\"error\"}")" 0
	# One family, every outcome a series of it from the start.
	[ "$(grep -c '^# TYPE kiln_auth_logins_total counter$' "$BATS_TEST_TMPDIR/b")" = 1 ]
	for o in success bad_credentials locked throttled rate_limited invalid error; do
		[ "$(val b "$l\"$o\"}")" != absent ]
	done
	[ "$(grep -c '^kiln_auth_logins_[a-z]*_total' "$BATS_TEST_TMPDIR/b")" = 0 ]
	# Together they are the login requests kiln-auth answered.
	n=$(awk '/^kiln_auth_logins_total\{/ { s += $NF } END { print s }' "$BATS_TEST_TMPDIR/b")
	m=$(awk '/^kiln_http_requests_total\{app="auth",route="\/auth\/login",method="POST"/ { s += $NF }
		END { print s }' "$BATS_TEST_TMPDIR/b")
	assert_equal "$n" "$m"
}

@test "jobs executed by kind and outcome, unknown kinds as other, durations by kind" {
	ctl() { "$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" "$@" >/dev/null; }
	scrape a
	ctl jobs enqueue noop --count 3
	ctl jobs enqueue fail --max-attempts 2
	ctl jobs enqueue no_such_kind_here --max-attempts 1
	ctl jobs enqueue sleep '{"ms": 300}'
	j='kiln_jobs_executed_total{app="worker",kind='
	# The fail job's second attempt comes after a backoff of a few seconds.
	wait_until 60 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		grep -q '^$j\"fail\",outcome=\"discarded\"} [1-9]'"
	wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		grep -q '^$j\"sleep\",outcome=\"completed\"} [1-9]'"
	scrape b
	assert_equal "$(delta a b "$j\"noop\",outcome=\"completed\"}")" 3
	assert_equal "$(delta a b "$j\"fail\",outcome=\"failed\"}")" 1
	assert_equal "$(delta a b "$j\"fail\",outcome=\"discarded\"}")" 1
	assert_equal "$(delta a b "$j\"other\",outcome=\"discarded\"}")" 1
	assert_equal "$(delta a b "$j\"sleep\",outcome=\"completed\"}")" 1
	[ "$(grep -c 'no_such_kind_here' "$BATS_TEST_TMPDIR/b")" = 0 ]
	# The sleep job's 300 ms are in its histogram: above the 0.25 s bound.
	d='kiln_job_duration_seconds_bucket{app="worker",kind="sleep",le='
	assert_equal "$(delta a b "$d\"0.25\"}")" 0
	assert_equal "$(delta a b "$d\"+Inf\"}")" 1
	assert_equal "$(delta a b 'kiln_job_duration_seconds_count{app="worker",kind="noop"}')" 3
	# (The kind sleeps on a millisecond clock: 299.x ms is a full 300.)
	awk -v v="$(delta a b 'kiln_job_duration_seconds_sum{app="worker",kind="sleep"}')" \
		'BEGIN { exit !(v >= 0.299 && v < 5) }'
	# Every run is in both families.
	run awk '/^kiln_jobs_executed_total\{/ { e += $NF }
		/^kiln_job_duration_seconds_count\{/ { c += $NF } END { print e, c; exit e != c }' \
		"$BATS_TEST_TMPDIR/b"
	echo "$output"
	assert_success
}

@test "worker: completed jobs are counted; the queue gauges show a waiting job's age" {
	scrape a
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" jobs enqueue noop >/dev/null
	wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		grep -qx 'kiln_jobs_completed_total{app=\"worker\"} $(($(val a 'kiln_jobs_completed_total{app="worker"}') + 1))'"
	# A job on a queue nobody works waits; its age grows.
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" jobs enqueue noop --queue nobody >/dev/null
	sleep 1.2
	scrape b
	[ "$(val b 'kiln_jobs{state="available"}')" -ge 1 ]
	[ "$(val b 'kiln_jobs{state="completed"}')" -ge 1 ]
	awk -v v="$(val b 'kiln_jobs_oldest_available_age_seconds')" 'BEGIN { exit !(v >= 0.5 && v < 60) }'
	[ "$(delta a b 'kiln_db_queries_total{app="worker"}')" -gt 0 ]
}

@test "process_* per program: the master and its workers, from /proc" {
	scrape m
	for app in health auth metrics worker; do
		[ "$(val m "process_resident_memory_bytes{app=\"$app\"}")" -gt 1000000 ]
		[ "$(val m "process_open_fds{app=\"$app\"}")" -gt 3 ]
		[ "$(val m "process_cpu_seconds_total{app=\"$app\"}")" != absent ]
	done
	# Start time: the master's, as ps sees it (whole seconds).
	pid=$(master_pid health)
	start=$(($(date +%s) - $(ps -o etimes= -p "$pid" | tr -d ' ')))
	awk -v v="$(val m 'process_start_time_seconds{app="health"}')" -v s="$start" \
		'BEGIN { d = v - s; exit !(d > -2 && d < 2) }'
	# Open descriptors: the master's plus its workers' (idle, so stable).
	n=0
	for p in "$pid" $(worker_pids health); do
		n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 | wc -l)))
	done
	got=$(val m 'process_open_fds{app="health"}')
	echo "fds: /proc says $n, metrics says $got"
	[ $((got - n)) -le 2 ] && [ $((n - got)) -le 2 ]
}

# cpu_ticks PID: utime + stime of a process (fields 14 and 15 of its stat;
# the command in field 2 may hold spaces, so count from the last ')').
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# busy_until_cpu PID: send requests until the worker PID has used CPU time
# (a tick is 10 ms; about a thousand requests), 500 per curl.
busy_until_cpu() {
	local i urls
	urls=$(printf "$BASE/health/live %.0s" $(seq 1 500))
	for i in $(seq 1 40); do
		[ "$(cpu_ticks "$1")" -gt 0 ] && return 0
		# shellcheck disable=SC2086 # one argument per URL
		curl -s --parallel --parallel-max 4 $urls >/dev/null 2>&1
	done
	return 1
}

@test "a killed worker's counters do not go backwards" {
	for _ in 1 2 3 4; do code_is 200 /health/live; done
	victim=$(worker_pids health | head -n 1)
	busy_until_cpu "$victim"
	scrape a
	crashes=$(val a 'kiln_worker_restarts_total{app="health",reason="crash"}')
	kill -KILL "$victim"
	wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		grep -qx 'kiln_worker_restarts_total{app=\"health\",reason=\"crash\"} $((crashes + 1))'"
	wait_until 10 bash -c "[ \$(pgrep -P $(master_pid health) | wc -l) -eq 2 ]"
	scrape b
	run no_less a b '^kiln_http_requests_total\{app="health"'
	echo "$output"
	assert_success
	run no_less a b '^kiln_http_request_duration_seconds_(bucket|count)\{app="health"'
	assert_success
	run no_less a b '^kiln_db_queries_total\{app="health"'
	assert_success
	# The dead worker's CPU time moved into its master's (reaped children).
	run no_less a b '^process_cpu_seconds_total\{app="health"'
	echo "$output"
	assert_success
	assert_equal "$(delta a b 'kiln_http_requests_total{app="health",route="/health/live",method="GET",code="2xx"}')" 0
	assert_equal "$(val b 'kiln_workers{app="health",state="idle"}')" 2
}

@test "api's figures join the same families when kiln-api runs" {
	[ -x "$KILN_BUILD/kiln-api" ] || skip "kiln-api is not built"
	code_is 200 /api/v1/exercises
	scrape m
	run check_exposition "$BATS_TEST_TMPDIR/m"
	assert_success
	[ "$(val m 'kiln_http_requests_total{app="api",route="/api/v1/exercises",method="GET",code="2xx"}')" -ge 1 ]
	[ "$(grep -c '^# TYPE kiln_http_requests_total ' "$BATS_TEST_TMPDIR/m")" = 1 ]
}

@test "a stopped program leaves /metrics; restarted, it is read from its new scoreboard" {
	code_is 200 /health/live
	scrape a
	started=$(val a 'process_start_time_seconds{app="health"}')
	stack stop app:health
	[ -e "$STACK/run/health.stats" ] # left behind by the stopped master
	scrape b
	[ "$(grep -c '{app="health"' "$BATS_TEST_TMPDIR/b")" = 0 ]
	[ "$(val b 'kiln_workers{app="auth",state="idle"}')" != absent ]
	sleep 1 # a start time in another second
	stack start app:health
	code_is 200 /health/live
	scrape c
	assert_equal "$(val c 'kiln_http_requests_total{app="health",route="/health/live",method="GET",code="2xx"}')" 1
	awk -v a="$started" -v c="$(val c 'process_start_time_seconds{app="health"}')" \
		'BEGIN { exit !(c > a) }'
	assert_equal "$(val c 'kiln_workers{app="health",state="idle"}')" 2
}

# Last: it stops PostgreSQL (and starts it again).
@test "PostgreSQL down: still 200 without the queue gauges, the scrape error counted" {
	scrape a
	[ "$(val a 'kiln_jobs{state="completed"}')" != absent ]
	errors=$(val a 'kiln_metrics_scrape_errors_total{app="metrics"}')
	unavailable=$(val a 'kiln_db_query_errors_total{app="metrics",reason="unavailable"}')
	stack stop postgres
	# Both workers' caches expire within 500 ms; scrape until one missed.
	wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' |
		awk '/^kiln_metrics_scrape_errors_total/ { exit !(\$NF > $errors) }'"
	for i in 1 2 3; do scrape "down$i"; done
	[ "$(grep -Ec '^kiln_jobs(\{|_oldest_available_age_seconds )' "$BATS_TEST_TMPDIR/down3")" = 0 ]
	[ "$(val down3 'kiln_metrics_scrape_errors_total{app="metrics"}')" -gt "$errors" ]
	[ "$(val down3 'kiln_db_query_errors_total{app="metrics",reason="unavailable"}')" -gt "$unavailable" ]
	run promtool check metrics <"$BATS_TEST_TMPDIR/down3"
	assert_success
	# Everything else is still there.
	[ "$(val down3 'kiln_workers{app="health",state="idle"}')" != absent ]
	stack start postgres
	wait_until 20 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/metrics' | grep -q '^kiln_jobs{'"
}
