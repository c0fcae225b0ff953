#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, AUTHOR_TOKEN, ...: set by the helpers
# kiln-api with a real streaming replica (database.replica_url): public
# reads (the exercise list and pages) are served by the replica, writes and
# a user's own data by the primary; with the replica gone the primary
# answers (counted as api_replica_fallbacks); with it back, reads return to it.
#
# The replica is a pg_basebackup -R of the stack's cluster, started on the
# stack's socket directory with port 5433 (the stack's PostgreSQL is 5432
# there), over the local-socket replication connection initdb's pg_hba.conf
# already trusts. Pausing WAL replay on it (pg_wal_replay_pause) makes rows
# written on the primary invisible to it until replay resumes, which is how
# the tests tell which server answered.

setup_file() {
	load helpers
	load auth-helpers
	load api-helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[auth]
	ip_rate = 100000
	ip_period = 60s
	ip_burst = 100000
	argon2_memory = 8M
	argon2_iterations = 1
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	: >"$BATS_FILE_TMPDIR/accounts.env"
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up api auth
	make_account AUTHOR author "Rhea Replica"
	make_account ALICE user "Alice Reader"
	replica_create || {
		tail -n 30 "$STACK/log/replica.log" >&3
		return 1
	}
	replica_start || {
		tail -n 30 "$STACK/log/replica.log" >&3
		return 1
	}
	# Point kiln-api at the replica and restart it.
	sed -i "/^\[database\]/a replica_url = host=$STACK/sock port=$RPORT dbname=kiln user=kiln" "$STACK/kiln.conf"
	stack stop app:api >/dev/null
	stack start app:api >/dev/null
}

teardown_file() {
	load helpers
	stack_attach
	replica_stop immediate || true
	stack_down
}

setup() {
	load helpers
	load auth-helpers
	load api-helpers
	stack_attach
	load_accounts
}

# Replay must never stay paused after a failed test.
teardown() {
	if replica_running; then
		rq "SELECT pg_wal_replay_resume()" >/dev/null 2>&1 || true
	fi
}

RPORT=5433

pgbin() {
	printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

# As root, PostgreSQL programs run as `postgres`, like the stack's own.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$STACK" "$@"
	else
		"$@"
	fi
}

replica_create() {
	mkdir -m 0700 "$STACK/replica"
	[ "$(id -u)" != 0 ] || chown postgres:postgres "$STACK/replica"
	as_pg "$(pgbin)/pg_basebackup" -R -X stream -c fast -D "$STACK/replica" \
		-h "$STACK/sock" -U postgres >>"$STACK/log/replica.log" 2>&1
}

replica_start() {
	local -a pre=()
	[ "$(id -u)" != 0 ] || pre=(setpriv --reuid=postgres --regid=postgres --init-groups --)
	setsid "${pre[@]}" "$(pgbin)/postgres" -D "$STACK/replica" -k "$STACK/sock" -p "$RPORT" \
		-c listen_addresses= -c fsync=off -c hot_standby=on \
		</dev/null >>"$STACK/log/replica.log" 2>&1 3>&- &
	wait_until 20 streaming
}

# replica_stop [MODE]: pg_ctl stop (fast by default), waiting until it is down.
replica_stop() {
	replica_running || return 0
	as_pg "$(pgbin)/pg_ctl" -D "$STACK/replica" stop -m "${1:-fast}" -w >>"$STACK/log/replica.log" 2>&1
}

replica_running() {
	[ -e "$STACK/replica/postmaster.pid" ] && kill -0 "$(head -n 1 "$STACK/replica/postmaster.pid")" 2>/dev/null
}

# The primary, and the replica, as the superuser.
pq() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$STACK/sock" -U postgres -d kiln -c "$1"
}
rq() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$STACK/sock" -p "$RPORT" -U postgres -d kiln -c "$1"
}

streaming() {
	[ "$(pq "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] &&
		[ "$(rq "SELECT pg_is_in_recovery()")" = t ]
}

# Pause replay and wait until it is paused, so that later primary writes
# stay invisible on the replica.
pause_replay() {
	rq "SELECT pg_wal_replay_pause()" >/dev/null
	wait_until 5 replay_paused
}

replay_paused() {
	[ "$(rq "SELECT pg_get_wal_replay_pause_state()")" = paused ]
}

# insert_ex CATEGORY TITLE: a published exercise written on the primary with
# psql; prints its id.
insert_ex() {
	psql_kiln "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
		VALUES ('$(fresh_name r)', '$2', '$1', 1, 5, '', 'exact', 'x', $AUTHOR_ID) RETURNING id"
}

# replica_has ID: the replica has replayed exercise ID.
replica_has() {
	[ "$(rq "SELECT count(*) FROM exercises WHERE id = $1")" = 1 ]
}

# listed CATEGORY: the ids the API lists for CATEGORY, comma-separated.
listed() {
	api GET "/api/v1/exercises?category=$1&limit=100" -
	[ "$status_code" = 200 ] || {
		echo "list: HTTP $status_code $body" >&2
		return 1
	}
	json '[.items[].id] | join(",")'
}

# listed_is CATEGORY IDS: the list is exactly IDS.
listed_is() {
	[ "$(listed "$1")" = "$2" ]
}

@test "a streaming replica of the stack's cluster runs, and kiln-api is configured to read from it" {
	streaming
	assert_equal "$(rq "SELECT pg_is_in_recovery()")" t
	run rq "CREATE TABLE nope (a int)"
	assert_failure
	assert_output --partial "read-only"
	grep -q "^replica_url = host=$STACK/sock port=$RPORT dbname=kiln user=kiln\$" "$STACK/kiln.conf"
	api GET /api/v1/exercises -
	expect 200
	assert_equal "$(counter api_replica_fallbacks)" 0
}

@test "public reads come from the replica: a row written while replay is paused is not listed until it resumes; writes and a user's own data use the primary" {
	cat=$(fresh_name c)
	a=$(insert_ex "$cat" "Before the pause")
	wait_until 5 listed_is "$cat" "$a"
	pause_replay
	b=$(insert_ex "$cat" "During the pause")
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises WHERE category = '$cat'")" 2
	# A write through the API goes to the primary and succeeds.
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".category = \"$cat\"")"
	c=$EX_ID
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises WHERE category = '$cat'")" 3
	sleep 0.5
	# The list and the public pages are the replica's.
	assert_equal "$(listed "$cat")" "$a"
	for id in "$b" "$c"; do
		api GET "/api/v1/exercises/$id" -
		echo "GET $id while paused -> $status_code"
		problem 404
	done
	api GET "/api/v1/exercises/$a" -
	expect 200
	# A user's own data: read on the primary, so visible at once.
	submit "$ALICE_TOKEN" "$a" "x"
	expect 202
	sub=$SUB_ID
	api GET "/api/v1/submissions/$sub" "$ALICE_TOKEN"
	expect 200
	api GET /api/v1/me/submissions "$ALICE_TOKEN"
	expect 200
	assert_equal "$(json '.items[0].id')" "$sub"
	assert_equal "$(counter api_replica_fallbacks)" 0

	rq "SELECT pg_wal_replay_resume()" >/dev/null
	wait_until 5 listed_is "$cat" "$a,$b,$c"
	for id in "$b" "$c"; do
		api GET "/api/v1/exercises/$id" -
		expect 200
	done
	assert_equal "$(counter api_replica_fallbacks)" 0
}

@test "with the replica stopped, reads fall back to the primary at once, counted in api_replica_fallbacks" {
	cat=$(fresh_name c)
	a=$(insert_ex "$cat" "Replica soon gone")
	wait_until 5 listed_is "$cat" "$a"
	api GET "/api/v1/exercises/$a" -
	expect 200
	f0=$(counter api_replica_fallbacks)
	replica_stop fast
	run replica_running
	assert_failure
	b=$(insert_ex "$cat" "Only the primary has me")
	t0=$(now_ms)
	api GET "/api/v1/exercises?category=$cat" -
	ms=$(($(now_ms) - t0))
	echo "list with the replica down: HTTP $status_code in $ms ms"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$a,$b"
	[ "$ms" -lt 2000 ]
	api GET "/api/v1/exercises/$b" -
	expect 200
	assert_equal "$(json .title)" "Only the primary has me"
	f1=$(counter api_replica_fallbacks)
	echo "api_replica_fallbacks: $f0 -> $f1"
	[ "$f1" -gt "$f0" ]
	grep -i replica "$STACK/log/api.log" | tail -n 3
	# Writes are unaffected.
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".category = \"$cat\"")"
	api GET "/api/v1/exercises?category=$cat" -
	assert_equal "$(json '[.items[].id] | join(",")')" "$a,$b,$EX_ID"
}

@test "when the replica is back, public reads return to it" {
	replica_running || replica_start
	wait_until 20 streaming
	cat=$(fresh_name c)
	a=$(insert_ex "$cat" "Replica is back")
	wait_until 10 listed_is "$cat" "$a"
	# The list may have come from the primary while the replica rests after
	# its outage: pause only once the replica itself has replayed a.
	wait_until 10 replica_has "$a"
	pause_replay
	b=$(insert_ex "$cat" "Hidden from the replica")
	# Once kiln-api reconnects to the replica, b disappears from the list.
	wait_until 15 listed_is "$cat" "$a"
	f=$(counter api_replica_fallbacks)
	api GET "/api/v1/exercises/$b" -
	problem 404
	assert_equal "$(counter api_replica_fallbacks)" "$f"
	rq "SELECT pg_wal_replay_resume()" >/dev/null
	wait_until 5 listed_is "$cat" "$a,$b"
}
