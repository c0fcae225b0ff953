#!/usr/bin/env bats
# shellcheck disable=SC2154 # status_code, body: set by the helpers
# valgrind memcheck over a short path through the stack: kiln-health,
# kiln-auth and kiln-api run under valgrind (scripts/stack's
# KILN_APP_WRAPPER) behind real nginx, PostgreSQL, Redis and memcached;
# health probes, register, login, me, refresh, and api reads (list, one
# exercise cold and cached, 404, bad token, bad JSON), then the apps are
# stopped and every process's valgrind log must say 0 errors and 0 bytes
# definitely lost. Part of make e2e (so of make check); `make valgrind`
# runs it alone. Skipped against an ASan build: valgrind and ASan do not mix.

vg_env() {
	mkdir -p "$BATS_FILE_TMPDIR/vg"
	export KILN_APP_WRAPPER="valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --error-exitcode=99 --num-callers=30 --log-file=$BATS_FILE_TMPDIR/vg/%p.log"
}

# asan_build: is KILN_BUILD instrumented by ASan (valgrind cannot run it)?
asan_build() {
	grep -qa __asan_init "$KILN_BUILD/kiln-health"
}

setup_file() {
	load helpers
	load auth-helpers
	if ! asan_build; then
		vg_env
		cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
		[auth]
		argon2_memory = 8M
		argon2_iterations = 1
		CONF
		: >"$BATS_FILE_TMPDIR/secrets"
		KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up health auth api
		"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" seed --exercises 3 >/dev/null
	fi
}

teardown_file() {
	load helpers
	if [ -e "$BATS_FILE_TMPDIR/stack" ]; then
		vg_env
		stack_attach
		stack_down
	fi
}

setup() {
	load helpers
	load auth-helpers
	if asan_build; then
		skip "valgrind needs a build without sanitizers"
	fi
	vg_env
	stack_attach
}

@test "under valgrind: the apps run valgrind's memcheck, masters and workers" {
	for app in health auth api; do
		exe=$(readlink "/proc/$(master_pid "$app")/exe")
		echo "$app: $exe"
		[[ ${exe##*/} == memcheck-* ]]
		[ "$(worker_pids "$app" | wc -l)" -ge 1 ]
	done
}

@test "under valgrind: health live and ready are 200" {
	wait_until 60 code_is 200 /health/live
	wait_until 60 code_is 200 /health/ready
	http GET /health
	assert_equal "$status_code" 200
}

@test "under valgrind: register, login, me, refresh, and a bad token" {
	new_user vg
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	refresh_req "$REFRESH"
	assert_equal "$status_code" 200
	authed GET /auth/me "not.a.token"
	assert_equal "$status_code" 401
	post_json /auth/login '{"email":"x@example.com","password":'
	assert_equal "$status_code" 400
}

@test "under valgrind: api reads: list, one exercise cold then cached, 404, 401, bad JSON" {
	http GET /api/v1/exercises
	assert_equal "$status_code" 200
	id=$(json '.items[0].id')
	[ -n "$id" ] && [ "$id" != null ]
	for _ in 1 2 3; do
		http GET "/api/v1/exercises/$id"
		assert_equal "$status_code" 200
	done
	http GET /api/v1/exercises/999999999
	assert_equal "$status_code" 404
	http GET /api/v1/me/progress -H 'Authorization: Bearer x.y.z'
	assert_equal "$status_code" 401
	http POST /api/v1/exercises -H 'Content-Type: application/json' --data-binary '{"slug":'
	[ "$status_code" = 400 ] || [ "$status_code" = 401 ]
}

@test "valgrind: after the apps stop, every process reports 0 errors and 0 bytes definitely lost" {
	stack stop apps >/dev/null
	logs=("$BATS_FILE_TMPDIR"/vg/*.log)
	echo "${#logs[@]} valgrind logs"
	# 3 masters and at least one worker each
	[ "${#logs[@]}" -ge 6 ]
	bad=0
	for f in "${logs[@]}"; do
		summary=$(grep -h 'ERROR SUMMARY' "$f" || true)
		definite=$(grep -h 'definitely lost:' "$f" || echo "definitely lost: 0 bytes")
		echo "${f##*/}: $(grep -ho 'Command: .*' "$f" | head -n 1 | cut -c1-80) | $summary | $definite"
		if [[ $summary != *"ERROR SUMMARY: 0 errors"* || $definite != *"definitely lost: 0 bytes"* ]]; then
			bad=1
			sed -n '/^==[0-9]*== [A-Z]/,$p' "$f" | head -n 80
		fi
	done
	[ "$bad" = 0 ]
}
