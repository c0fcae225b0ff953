#!/usr/bin/env bats
# kiln-health through nginx against real PostgreSQL, Redis and memcached.

setup_file() {
	load helpers
	stack_up health
}

teardown_file() {
	load helpers
	stack_attach
	stack_down
}

setup() {
	load helpers
	stack_attach
}

@test "live answers 200 pass without touching dependencies" {
	http GET /health/live
	assert_equal "$status_code" 200
	assert_equal "$(json .status)" pass
	echo "$headers" | grep -qi '^content-type: application/health+json'
	echo "$headers" | grep -qi '^cache-control: no-store'
}

@test "ready passes with every check and a measured latency" {
	http GET /health/ready
	assert_equal "$status_code" 200
	assert_equal "$(json .status)" pass
	echo "$headers" | grep -qi '^content-type: application/health+json'
	for c in postgresql:responseTime redis:responseTime memcached:responseTime disk:free; do
		assert_equal "$(json ".checks[\"$c\"][0].status")" pass
		[ "$(json ".checks[\"$c\"][0].observedValue | type")" = number ]
		[ -n "$(json ".checks[\"$c\"][0].time")" ]
		[ -n "$(json ".checks[\"$c\"][0].componentType")" ]
	done
	assert_equal "$(json '.checks["postgresql:responseTime"][0].observedUnit')" ms
}

@test "startup passes once ready has passed" {
	http GET /health/startup
	assert_equal "$status_code" 200
	assert_equal "$(json .status)" pass
}

@test "the full report adds version and uptime" {
	http GET /health
	assert_equal "$status_code" 200
	assert_equal "$(json .version)" 0.1.0
	[ "$(json '.checks.uptime[0].observedValue | type')" = number ]
}

@test "HEAD gets the headers and no body" {
	run curl -sS -I "$BASE/health/live"
	assert_success
	assert_line --partial "200"
	run curl -sS --head -o /dev/null -w '%{size_download}' "$BASE/health/live"
	assert_output 0
}

@test "unknown path gives a 404 problem+json with the request id" {
	http GET /health/nope -H 'X-Request-ID: e2e-404-test'
	assert_equal "$status_code" 404
	echo "$headers" | grep -qi '^content-type: application/problem+json'
	assert_equal "$(json .status)" 404
	assert_equal "$(json .title)" "Not Found"
	assert_equal "$(json .request_id)" e2e-404-test
}

@test "wrong method gives 405 with Allow" {
	http POST /health/live
	assert_equal "$status_code" 405
	echo "$headers" | grep -qi '^allow: GET, HEAD'
	assert_equal "$(json .status)" 405
}

@test "a request id is made up when the client sends none, and logged" {
	http GET /health/live
	rid=$(echo "$headers" | sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *\([^[:space:]]*\).*/\1/p' | head -1)
	[[ "$rid" =~ ^[0-9a-f]{32}$ ]]
	wait_until 5 grep -q "\"request_id\":\"$rid\"" "$STACK/log/health.log"
}

@test "traceparent's trace-id reaches the log line" {
	tid=4bf92f3577b34da6a3ce929d0e0e4736
	http GET /health/live -H "traceparent: 00-$tid-00f067aa0ba902b7-01"
	assert_equal "$status_code" 200
	wait_until 5 grep -q "\"trace_id\":\"$tid\"" "$STACK/log/health.log"
}

@test "Redis down: ready fails with 503 naming redis, then recovers" {
	stack stop redis
	wait_until 10 code_is 503 /health/ready
	http GET /health/ready
	assert_equal "$status_code" 503
	assert_equal "$(json .status)" fail
	assert_equal "$(json '.checks["redis:responseTime"][0].status')" fail
	assert_equal "$(json '.checks["postgresql:responseTime"][0].status')" pass
	[[ "$(json .output)" == redis* ]]
	http GET /health/live
	assert_equal "$status_code" 200
	stack start redis
	wait_until 10 code_is 200 /health/ready
}

@test "PostgreSQL down: ready fails with 503 naming postgresql, then recovers" {
	stack stop postgres
	wait_until 10 code_is 503 /health/ready
	http GET /health/ready
	assert_equal "$status_code" 503
	assert_equal "$(json '.checks["postgresql:responseTime"][0].status')" fail
	[[ "$(json .output)" == postgresql* ]]
	stack start postgres
	wait_until 15 code_is 200 /health/ready
	http GET /health/ready
	assert_equal "$(json '.checks["postgresql:responseTime"][0].status')" pass
}

@test "memcached down: ready warns but stays 200" {
	stack stop memcached
	wait_until 10 bash -c "curl -s '$BASE/health/ready' | jq -e '.status == \"warn\"'"
	http GET /health/ready
	assert_equal "$status_code" 200
	assert_equal "$(json '.checks["memcached:responseTime"][0].status')" warn
	stack start memcached
	wait_until 10 bash -c "curl -s '$BASE/health/ready' | jq -e '.status == \"pass\"'"
}

@test "a dependency check is bounded by its timeout even when the server hangs" {
	# SIGSTOP Redis: connections are accepted by the kernel but never answered.
	pid=$(cat "$STACK/pid/redis.pid")
	kill -STOP "$pid"
	start=$(date +%s%N)
	wait_until 10 code_is 503 /health/ready
	kill -CONT "$pid"
	elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$elapsed_ms" -lt 5000 ]
	wait_until 10 code_is 200 /health/ready
}

@test "a probe storm is answered from the shared cache, not by the databases" {
	# Every check carries the time it was measured. 200 concurrent probes
	# within a few cache periods must share a handful of measurements; without
	# the shared cache each probe would carry its own.
	for i in $(seq 1 200); do
		curl -s "$BASE/health/ready" >"$BATS_TEST_TMPDIR/r$i" &
	done
	wait
	n=$(cat "$BATS_TEST_TMPDIR"/r* | jq -r '.checks["postgresql:responseTime"][0].time' | sort -u | wc -l)
	ok=$(cat "$BATS_TEST_TMPDIR"/r* | jq -r .status | grep -c pass)
	echo "distinct measurements: $n, pass: $ok"
	assert_equal "$ok" 200
	[ "$n" -le 10 ]
}
