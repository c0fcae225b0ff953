#!/usr/bin/env bats
# The prefork server of libcommon, driven through nginx with the test-only
# kiln-testapp: drain on SIGTERM, respawn, reload, timeouts, body limits.

setup_file() {
	load helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[server.testapp]
	request_timeout = 2s
	max_body = 64k
	CONF
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up testapp
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

worker_count() {
	[ "$(worker_pids testapp | wc -l)" -eq "$1" ]
}

@test "a body over max_body gets 413 problem+json; one at the limit is read" {
	head -c 65537 /dev/zero >"$BATS_TEST_TMPDIR/big"
	http POST /test/echo --data-binary @"$BATS_TEST_TMPDIR/big" -H 'Content-Type: application/octet-stream'
	assert_equal "$status_code" 413
	echo "$headers" | grep -qi '^content-type: application/problem+json'
	assert_equal "$(json .status)" 413
	head -c 65536 /dev/zero >"$BATS_TEST_TMPDIR/ok"
	http POST /test/echo --data-binary @"$BATS_TEST_TMPDIR/ok" -H 'Content-Type: application/octet-stream'
	assert_equal "$status_code" 200
	assert_equal "$(json .bytes)" 65536
}

@test "kill -9 of a worker: it is respawned and the app keeps serving" {
	wait_until 5 worker_count 2
	victim=$(worker_pids testapp | head -1)
	kill -9 "$victim"
	for i in $(seq 1 20); do
		http GET /test/info
		assert_equal "$status_code" 200
	done
	wait_until 5 worker_count 2
	run worker_pids testapp
	refute_output --partial "$victim"
	wait_until 5 grep -q '"msg":"worker died".*"signal":9' "$STACK/log/testapp.log"
}

@test "a request past request_timeout: worker replaced, client gets 5xx, next request fine" {
	before=$(worker_pids testapp)
	http GET '/test/sleep?ms=20000'
	[ "$status_code" -ge 500 ]
	[ "$status_code" -le 599 ]
	grep -q '"msg":"request timeout: replacing worker".*"route":"/test/sleep"' "$STACK/log/testapp.log"
	http GET /test/info
	assert_equal "$status_code" 200
	wait_until 5 worker_count 2
	[ "$(worker_pids testapp)" != "$before" ]
}

@test "SIGHUP with a changed config takes effect with no failed request under load" {
	(
		end=$((SECONDS + 8))
		while [ $SECONDS -lt $end ]; do
			curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "$BASE/test/info"
		done
	) >"$BATS_TEST_TMPDIR/codes" &
	loader=$!
	sleep 1
	sed -i 's/^max_body = 64k$/max_body = 12345/' "$STACK/kiln.conf"
	grep -q '^max_body = 12345$' "$STACK/kiln.conf"
	kill -HUP "$(master_pid testapp)"
	wait_until 10 bash -c "for i in 1 2 3 4 5 6 7 8; do curl -s '$BASE/test/info' | jq -e '.max_body == 12345' >/dev/null || exit 1; done"
	wait "$loader"
	total=$(wc -l <"$BATS_TEST_TMPDIR/codes")
	bad=$(grep -vc '^200$' "$BATS_TEST_TMPDIR/codes" || true)
	echo "requests during reload: $total, not 200: $bad"
	[ "$total" -gt 50 ]
	assert_equal "$bad" 0
	grep -q '"msg":"reload complete"' "$STACK/log/testapp.log"
}

@test "a reload with a broken config keeps the running one" {
	cp "$STACK/kiln.conf" "$BATS_TEST_TMPDIR/good.conf"
	printf '\n[server]\nbogus_key = 1\n' >>"$STACK/kiln.conf"
	kill -HUP "$(master_pid testapp)"
	wait_until 5 grep -q '"msg":"reload failed; keeping the running configuration".*bogus_key' "$STACK/log/testapp.log"
	cp "$BATS_TEST_TMPDIR/good.conf" "$STACK/kiln.conf"
	http GET /test/info
	assert_equal "$status_code" 200
}

@test "SIGTERM lets an in-flight request finish with 200, then the master exits 0" {
	master=$(master_pid testapp)
	curl -s -o "$BATS_TEST_TMPDIR/slow" -w '%{http_code}' --max-time 10 \
		"$BASE/test/sleep?ms=1500" >"$BATS_TEST_TMPDIR/slow.code" &
	client=$!
	sleep 0.5
	kill -TERM "$master"
	wait "$client"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/slow.code")" 200
	assert_equal "$(jq .slept_ms "$BATS_TEST_TMPDIR/slow")" 1500
	wait_until 10 bash -c "! kill -0 $master 2>/dev/null"
	grep -q '"msg":"stopped"' "$STACK/log/testapp.log"
	# restart for any later test
	stack start app:testapp
}
