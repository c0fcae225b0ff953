#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, NET, SC, *_TOKEN: set by the helpers
# kiln scaled out (issue 10, docs/scaling.md) on one machine: network
# namespaces stand in for VMs (scale-helpers.bash draws the map). nginx on
# the balancer spreads the production site's locations over two app hosts,
# each running kiln-api, kiln-auth, kiln-health, kiln-metrics (--listen on
# the host's address, [server] allow_from = the balancer) and kiln-worker;
# PostgreSQL primary + streaming replica ([database] replica_urls), Redis
# master + replica watched by three Sentinels ([redis] sentinels), two
# memcached ([memcached] servers). Bounded load comes from wrk and curl on
# the host side of the bridge; each test proves one claim of the issue.
#
# Needs root (namespaces, veth, bridge); without it every test is skipped.
# KILN_SCALE_KEEP=1 keeps the run's directory (logs, configs) after it.

setup_file() {
	load scale-helpers
	netns_possible || skip "ip netns needs root and netns/veth/bridge support"
	SID="kt$(printf %x $$)"
	NET=$(pick_net) || {
		echo "# no free 10.77.X.0/24" >&3
		return 1
	}
	SC=$(mktemp -d /tmp/kiln-scale.XXXXXX)
	chmod 0755 "$SC" # PostgreSQL runs as `postgres` and must enter it
	scale_env_save
	mkdir -p "$SC"/{pid,log,secrets} "$SC"/{app1,app2}/run "$SC"/{db1,db2,rd1,rd2} \
		"$SC"/sent-{app1,app2,db1}
	net_up || setup_fail "network"
	scale_env_load

	# PostgreSQL: primary on db1, then a replica of it on db2.
	primary_create || setup_fail initdb
	pg_start db1 || setup_fail "PostgreSQL primary" pg-db1
	psql -X -q -v ON_ERROR_STOP=1 -h "$(ip_of db1)" -U postgres -d postgres \
		-c 'CREATE ROLE kiln LOGIN' -c 'CREATE DATABASE kiln OWNER kiln' >/dev/null ||
		setup_fail "role and database"
	"$KILN_BUILD/kilnctl" gen-secret "$SC/secrets/jwt.key" >/dev/null || setup_fail gen-secret
	for h in $APP_HOSTS; do app_conf "$h" >"$SC/$h/kiln.conf"; done
	"$KILN_BUILD/kilnctl" -c "$SC/app1/kiln.conf" migrate --dir "$REPO/sql" >"$SC/log/migrate.log" 2>&1 ||
		setup_fail "kilnctl migrate" migrate
	q 'CREATE TABLE job_runs (job_id bigint NOT NULL)' >/dev/null
	"$KILN_BUILD/kilnctl" -c "$SC/app1/kiln.conf" seed --exercises 60 >"$SC/log/seed.log" 2>&1 ||
		setup_fail "kilnctl seed" seed
	replica_create || setup_fail "pg_basebackup" basebackup
	pg_start db2 || setup_fail "PostgreSQL replica" pg-db2
	wait_until 20 streaming || setup_fail "streaming replication" pg-db2

	# Redis master, replica and three Sentinels.
	spawn redis-rd1 rd1 redis-server --bind "$(ip_of rd1)" --port 6379 --protected-mode no \
		--save '' --appendonly no --dir "$SC/rd1"
	spawn redis-rd2 rd2 redis-server --bind "$(ip_of rd2)" --port 6379 --protected-mode no \
		--save '' --appendonly no --dir "$SC/rd2" --replicaof "$(ip_of rd1)" 6379
	wait_until 10 redis_linked || setup_fail "Redis replication" redis-rd2
	for h in $SENTINEL_HOSTS; do
		cat >"$SC/sent-$h/sentinel.conf" <<-EOF
		port 26379
		bind $(ip_of "$h")
		protected-mode no
		dir $SC/sent-$h
		sentinel monitor kiln $(ip_of rd1) 6379 2
		sentinel down-after-milliseconds kiln 1000
		sentinel failover-timeout kiln 5000
		sentinel parallel-syncs kiln 1
		EOF
		spawn "sentinel-$h" "$h" redis-server "$SC/sent-$h/sentinel.conf" --sentinel
	done

	# memcached pool.
	for h in mc1 mc2; do
		spawn "memcached-$h" "$h" memcached -l "$(ip_of "$h")" -p 11211 -U 0 -m 64 -u root
	done
	wait_until 20 sentinels_ready || setup_fail "Sentinels" sentinel-app1

	# The apps on both hosts, then the balancer.
	for h in $APP_HOSTS; do
		"$KILN_BUILD/kiln-api" -t -c "$SC/$h/kiln.conf" >"$SC/log/$h-check.log" 2>&1 ||
			setup_fail "kiln-api -t on $h's kiln.conf" "$h-check"
		for a in api auth health metrics worker; do
			app_start "$h" "$a" || setup_fail "kiln-$a on $h" "$h-$a"
		done
	done
	lb_start || setup_fail "nginx on the balancer" nginx nginx-error
	wait_until 20 ready_everywhere || {
		curl -s --max-time 3 "$BASE/health/ready" | sed 's/^/# /' >&3
		setup_fail "/health/ready through the balancer" app1-health app2-health
	}

	: >"$BATS_FILE_TMPDIR/accounts.env"
	account AUTHOR admin || setup_fail "an admin account" app1-auth app2-auth
	account ALICE user || setup_fail "a user account" app1-auth app2-auth
}

teardown_file() {
	load scale-helpers
	scale_env_load || return 0
	net_down
	if [ -n "${KILN_SCALE_KEEP:-}" ]; then
		echo "# kept $SC" >&3
	else
		rm -rf "$SC"
	fi
}

setup() {
	load scale-helpers
	scale_env_load
	load_accounts
}

# setup_fail WHAT [LOG...]: show the ends of the named logs, then fail.
setup_fail() {
	local l
	echo "# setup failed: $1" >&3
	shift
	for l in "$@"; do
		[ -s "$SC/log/$l.log" ] || continue
		echo "# ---- $SC/log/$l.log" >&3
		tail -n 20 "$SC/log/$l.log" | sed 's/^/# /' >&3
	done
	return 1
}

redis_linked() {
	rc rd2 6379 INFO replication 2>/dev/null | tr -d '\r' | grep -q '^master_link_status:up$'
}

ready_everywhere() {
	local i
	for i in 1 2 3 4; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$BASE/health/ready")" = 200 ] ||
			return 1
	done
}

fresh() {
	echo "${1:-s}${BATS_TEST_NUMBER}-$RANDOM$RANDOM"
}

# insert_ex CATEGORY TITLE: a published exercise written on the primary; its id.
insert_ex() {
	q "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
		VALUES ('$(fresh r)', '$2', '$1', 1, 5, '', 'exact', 'x', $AUTHOR_ID) RETURNING id"
}

# listed CATEGORY: the ids the API lists for CATEGORY, comma-separated.
listed() {
	http GET "/api/v1/exercises?category=$1&limit=100"
	[ "$status_code" = 200 ] || {
		echo "list: HTTP $status_code $body" >&2
		return 1
	}
	json '[.items[].id] | join(",")'
}

# listed_is_4 CATEGORY IDS: four lists in a row (two per app host, the
# balancer alternating) are exactly IDS.
listed_is_4() {
	local i
	for i in 1 2 3 4; do
		[ "$(listed "$1")" = "$2" ] || return 1
	done
}

replay_paused() {
	[ "$(pq db2 "SELECT pg_get_wal_replay_pause_state()")" = paused ]
}

# submit TOKEN EXERCISE KEY: POST a submission with Idempotency-Key KEY.
submit() {
	post_json "/api/v1/exercises/$2/submissions" '{"answer":"42"}' "$1" -H "Idempotency-Key: $3"
}

# some_exercise: the id of a published seed exercise.
some_exercise() {
	q "SELECT min(id) FROM exercises WHERE published AND slug LIKE 'demo-%'"
}

# hosts_in_window LOG FROM_MS: how many app hosts served requests since FROM_MS.
hosts_in_window() {
	upstream_counts "$1" "$2" | grep -c "^$NET\\.1[12]:" || true
}

@test "backend ports answer only the balancer's address: from any other host a connection is closed unanswered, logged and counted" {
	local h a out before after
	declare -A path=([api]=/api/v1/exercises [auth]=/auth/verify [health]=/health/live [metrics]=/metrics)
	for h in $APP_HOSTS; do
		# Bound to the host's own address, not to every address.
		run nsx "$h" ss -Hltn
		for a in api auth health metrics; do
			assert_output --partial "$(ip_of "$h"):${APP_PORT[$a]} "
		done
		# From the balancer: every program answers over FastCGI.
		for a in api auth health metrics; do
			out=$(fcgi lb "$h" "${APP_PORT[$a]}" "${path[$a]}")
			echo "lb -> $h kiln-$a: $(head -n 1 <<<"$out" | tr -d '\r')"
			grep -qE '^Status: [0-9]{3}' <<<"$out"
		done
	done
	before=$(refused_total app1)
	echo "refused on app1 before: $before"
	[ "$before" != none ]
	# From a stranger, from the other app host and from the database host:
	# connected (the kernel accepts), then closed without a byte of answer.
	for h in out app2 db1; do
		for a in api auth health; do
			out=$(fcgi "$h" app1 "${APP_PORT[$a]}" "${path[$a]}")
			echo "$h -> app1 kiln-$a: ${#out} bytes"
			assert_equal "$out" ""
		done
	done
	# From the host side of the bridge too.
	out=$(env -i REQUEST_METHOD=GET DOCUMENT_URI=/health/live REQUEST_URI=/health/live \
		SERVER_PROTOCOL=HTTP/1.1 timeout 5 cgi-fcgi -bind -connect "$(ip_of app1):${APP_PORT[health]}" 2>/dev/null || true)
	assert_equal "$out" ""
	after=$(refused_total app1)
	echo "refused on app1 after 10 strangers: $after"
	[ "$after" -ge $((before + 10)) ]
	grep -qi 'refused' "$SC/log/app1-health.log"
	# And the balancer's own traffic is still served.
	http GET /health/live
	assert_equal "$status_code" 200
}

@test "both app hosts serve: a bounded wrk run through the balancer is split between them, as their own access logs confirm" {
	local t0 b1 b2 a1 a2 n1 n2
	b1=$(grep -c '"msg":"request"' "$SC/log/app1-api.log" || true)
	b2=$(grep -c '"msg":"request"' "$SC/log/app2-api.log" || true)
	t0=$(now_ms)
	wrk_run 3 "$BASE/api/v1/exercises?limit=10" 8
	echo "$WRK_OUT"
	assert_equal "$WRK_NON2XX" 0
	assert_equal "$WRK_SOCKERR" 0
	[ "$WRK_REQS" -gt 0 ]
	upstream_counts "$SC/log/lb-access.log" "$t0"
	n1=$(upstream_counts "$SC/log/lb-access.log" "$t0" | awk -v a="$(ip_of app1):9001" '$1 == a { print $2 }')
	n2=$(upstream_counts "$SC/log/lb-access.log" "$t0" | awk -v a="$(ip_of app2):9001" '$1 == a { print $2 }')
	echo "served: app1 ${n1:-0}, app2 ${n2:-0} of $WRK_REQS"
	# Round-robin: each host takes a fair share (at least 30 %).
	[ "$((${n1:-0} * 10))" -ge "$((WRK_REQS * 3))" ]
	[ "$((${n2:-0} * 10))" -ge "$((WRK_REQS * 3))" ]
	# Each host's own access log counts the requests nginx sent it.
	sleep 0.5
	a1=$(grep -c '"msg":"request"' "$SC/log/app1-api.log")
	a2=$(grep -c '"msg":"request"' "$SC/log/app2-api.log")
	echo "app access log lines: app1 +$((a1 - b1)), app2 +$((a2 - b2))"
	assert_equal "$((a1 - b1))" "$n1"
	assert_equal "$((a2 - b2))" "$n2"
	# Sign-in and readiness through both hosts.
	for _ in 1 2 3 4; do
		http GET /health/ready
		assert_equal "$status_code" 200
		assert_equal "$(json .status)" pass
	done
}

@test "capacity through the balancer: req/s with one app host and with two (bounded wrk runs)" {
	local id one_item two_item one_list two_list
	id=$(some_exercise)
	wrk_run 4 "http://$(ip_of lb):81/api/v1/exercises/$id" 16
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0
	one_item=$WRK_RPS
	wrk_run 4 "$BASE/api/v1/exercises/$id" 16
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0
	two_item=$WRK_RPS
	wrk_run 4 "http://$(ip_of lb):81/api/v1/exercises?limit=20" 16
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0
	one_list=$WRK_RPS
	wrk_run 4 "$BASE/api/v1/exercises?limit=20" 16
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0
	two_list=$WRK_RPS
	{
		echo "# capacity (wrk -t2 -c16 -d4s from the bridge, nginx on the balancer, 2 workers per app):"
		echo "#   GET /api/v1/exercises/{id}:      1 app host $one_item req/s, 2 app hosts $two_item req/s"
		echo "#   GET /api/v1/exercises?limit=20:  1 app host $one_list req/s, 2 app hosts $two_list req/s"
	} >&3
	[ "$one_item" -gt 0 ] && [ "$two_item" -gt 0 ] && [ "$one_list" -gt 0 ] && [ "$two_list" -gt 0 ]
}

@test "the workers of both hosts complete every job exactly once, and one leader runs the periodic jobs" {
	local ids first last n m1 m2 who cnt p
	q "TRUNCATE job_runs" >/dev/null
	ids=$("$KILN_BUILD/kilnctl" -c "$SC/app1/kiln.conf" jobs enqueue count --count 600)
	first=$(head -n 1 <<<"$ids")
	last=$(tail -n 1 <<<"$ids")
	assert_equal "$(wc -l <<<"$ids")" 600
	wait_until 60 all_completed "$first" "$last"
	assert_equal "$(q "SELECT count(*), count(DISTINCT job_id), min(job_id), max(job_id) FROM job_runs")" \
		"600|600|$first|$last"
	assert_equal "$(q "SELECT count(*) FROM jobs WHERE id BETWEEN $first AND $last AND attempt <> 1")" 0
	# Which host ran them: attempted_by is host:pid of an executor, whose
	# parent is the kiln-worker master of app1 or app2.
	m1=$(pid_of app1-worker)
	m2=$(pid_of app2-worker)
	declare -A by=()
	while IFS='|' read -r who cnt; do
		p=$(awk '{ print $4 }' "/proc/${who##*:}/stat" 2>/dev/null || echo gone)
		by[$p]=$((${by[$p]:-0} + cnt))
	done < <(q "SELECT attempted_by, count(*) FROM jobs WHERE id BETWEEN $first AND $last GROUP BY 1")
	echo "jobs run: app1 ${by[$m1]:-0}, app2 ${by[$m2]:-0}"
	[ "${by[$m1]:-0}" -gt 0 ] && [ "${by[$m2]:-0}" -gt 0 ]
	assert_equal "$((${by[$m1]:-0} + ${by[$m2]:-0}))" 600
	# Periodic jobs: one lease, each run recorded once.
	assert_equal "$(q "SELECT count(*) FROM job_leader")" 1
	assert_equal "$(q "SELECT count(*) = count(DISTINCT (cron_key, run_at)) FROM cron_runs")" t
	[ "$(q "SELECT count(*) FROM cron_runs")" -gt 0 ]
}

all_completed() {
	[ "$(q "SELECT count(*) FROM jobs WHERE id BETWEEN $1 AND $2 AND state = 'completed'")" = $(($2 - $1 + 1)) ]
}

@test "reads come from the replica; with the replica stopped every read is served by the primary (all 200), and it is used again once back" {
	local cat a b c t0 i fails=0
	cat=$(fresh c)
	a=$(insert_ex "$cat" "Seen by both")
	wait_until 10 listed_is_4 "$cat" "$a"
	# Replay paused: a row written now is on the primary only, so a list
	# without it was read on the replica — on both hosts.
	pq db2 "SELECT pg_wal_replay_pause()" >/dev/null
	wait_until 5 replay_paused
	b=$(insert_ex "$cat" "Primary only")
	t0=$(now_ms)
	sleep 2.5 # past replica_retry, should an earlier probe have failed
	listed_is_4 "$cat" "$a"
	[ "$(hosts_in_window "$SC/log/lb-access.log" "$t0")" = 2 ]

	# The replica goes away (fast shutdown).
	as_pg "$(pgbin)/pg_ctl" -D "$SC/db2/pg" stop -m fast -w >>"$SC/log/pg-db2.log" 2>&1
	t0=$(now_ms)
	for i in $(seq 40); do
		http GET "/api/v1/exercises?category=$cat&limit=100"
		if [ "$status_code" != 200 ] || [ "$(json '[.items[].id] | join(",")')" != "$a,$b" ]; then
			echo "read $i: HTTP $status_code $body"
			fails=$((fails + 1))
		fi
	done
	echo "40 lists with the replica down: $fails wrong, $(($(now_ms) - t0)) ms"
	assert_equal "$fails" 0
	wrk_run 3 "$BASE/api/v1/exercises?limit=20" 8
	echo "wrk, replica down: $WRK_REQS requests, $WRK_NON2XX non-2xx, $WRK_SOCKERR socket errors"
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0
	[ "$(hosts_in_window "$SC/log/lb-access.log" "$t0")" = 2 ]

	# Back: after replica_retry (2 s) the next reads probe it again.
	pg_start db2
	wait_until 20 streaming
	wait_until 10 caught_up
	pq db2 "SELECT pg_wal_replay_pause()" >/dev/null
	wait_until 5 replay_paused
	c=$(insert_ex "$cat" "Primary only again")
	wait_until 15 listed_is_4 "$cat" "$a,$b"
	pq db2 "SELECT pg_wal_replay_resume()" >/dev/null
	wait_until 10 listed_is_4 "$cat" "$a,$b,$c"
}

# same_as_primary IDS...: each exercise read through the balancer, twice
# (both hosts), has the primary's title, points and version.
same_as_primary() {
	local id truth got bad=0 k
	for id in "$@"; do
		truth=$(q "SELECT title || '|' || points || '|' || version FROM exercises WHERE id = $id")
		for k in 1 2; do
			http GET "/api/v1/exercises/$id"
			got=$(json '"\(.title)|\(.points)|\(.version)"')
			if [ "$status_code" != 200 ] || [ "$got" != "$truth" ]; then
				echo "exercise $id (read $k): HTTP $status_code '$got', PostgreSQL '$truth'" >&2
				bad=$((bad + 1))
			fi
		done
	done
	[ "$bad" = 0 ]
}

@test "stopping one memcached keeps every request correct: bodies match PostgreSQL before, during (with updates) and after" {
	local ids id n=0 i1 i2 renamed=()
	mapfile -t ids < <(q "SELECT id FROM exercises WHERE published AND slug LIKE 'demo-%' ORDER BY id LIMIT 40")
	assert_equal "${#ids[@]}" 40
	same_as_primary "${ids[@]}"
	i1=$(mc_items mc1)
	i2=$(mc_items mc2)
	echo "cached items before: mc1 $i1, mc2 $i2"
	[ "${i1:-0}" -gt 0 ] && [ "${i2:-0}" -gt 0 ]

	stop memcached-mc2 KILL
	same_as_primary "${ids[@]}"
	# Writes while it is away: every second exercise renamed through the API.
	for id in "${ids[@]}"; do
		n=$((n + 1))
		((n % 2 == 0)) || continue
		post_json "/api/v1/exercises/$id" "$(jq -cn --arg t "Renamed $id $RANDOM" '{title:$t}')" \
			"$AUTHOR_TOKEN" -X PATCH -H 'If-Match: *'
		assert_equal "$status_code" 200
		renamed+=("$id")
	done
	echo "renamed ${#renamed[@]} exercises with mc2 down"
	wait_until 10 caught_up
	same_as_primary "${ids[@]}"
	wrk_run 3 "$BASE/api/v1/exercises/${ids[1]}" 8
	echo "wrk, mc2 down: $WRK_REQS requests, $WRK_NON2XX non-2xx, $WRK_SOCKERR socket errors"
	assert_equal "$((WRK_NON2XX + WRK_SOCKERR))" 0

	# Back (empty, as a restarted memcached is): retried and used again.
	spawn memcached-mc2 mc2 memcached -l "$(ip_of mc2)" -p 11211 -U 0 -m 64 -u root
	wait_until 30 mc2_used "${ids[@]}"
	same_as_primary "${ids[@]}"
}

# mc2_used IDS...: after reading IDS, mc2 holds some of them again.
mc2_used() {
	local id
	for id in "$@"; do http GET "/api/v1/exercises/$id"; done
	[ "$(mc_items mc2 || echo 0)" -gt 0 ]
}

# writes_503 N DETAIL: N submissions in a row answer 503 with DETAIL.
writes_503() {
	local i ex
	ex=$(some_exercise)
	for i in $(seq "$1"); do
		submit "$ALICE_TOKEN" "$ex" "m-$RANDOM$RANDOM"
		[ "$status_code" = 503 ] && [ "$(json .detail)" = "$2" ] || return 1
	done
}

@test "a Redis failover through Sentinel is followed without a restart: the maintenance flag set on the new master stops writes on both hosts" {
	local pids_before pids_after t0 t1 ex i
	wait_until 20 sentinels_ready
	sentinel_master_is rd1
	pids_before=$(for h in $APP_HOSTS; do for a in api auth; do pid_of "$h-$a"; done; done)
	ex=$(some_exercise)
	submit "$ALICE_TOKEN" "$ex" "before-$RANDOM"
	assert_equal "$status_code" 202

	# The master dies; the Sentinels promote the replica.
	t0=$(now_ms)
	stop redis-rd1 KILL
	wait_until 30 sentinel_master_is rd2
	t1=$(now_ms)
	echo "Sentinels agree on the new master after $((t1 - t0)) ms"
	assert_equal "$(rc rd2 6379 ROLE | head -n 1)" master

	# Only an app that asked the Sentinels can see a flag set there now.
	rc rd2 6379 SET kiln:maintenance "failover drill" >/dev/null
	wait_until 15 writes_503 20 "failover drill"
	echo "writes refused on both hosts $(($(now_ms) - t1)) ms after the failover"
	rc rd2 6379 DEL kiln:maintenance >/dev/null
	for i in 1 2 3 4 5 6; do
		submit "$ALICE_TOKEN" "$ex" "after-$i-$RANDOM"
		assert_equal "$status_code" 202
	done
	# Read-your-writes state lands on the new master too.
	assert_equal "$(rc rd2 6379 EXISTS "kiln:ryw:$ALICE_ID")" 1
	# kiln-health follows too (its first check after the failover may still
	# fail: the broken connection is what makes it ask the Sentinels).
	wait_until 5 ready_everywhere
	# Same processes: nothing was restarted.
	pids_after=$(for h in $APP_HOSTS; do for a in api auth; do pid_of "$h-$a"; done; done)
	assert_equal "$pids_after" "$pids_before"
	for p in $pids_after; do kill -0 "$p"; done
}

@test "taking one app host down loses at most the requests in flight on it, then nothing: 0 errors after fail_timeout" {
	local id ex t0 t1 i k st failed=() masters
	id=$(some_exercise)
	ex=$id
	# GET load (wrk, 8 connections) and a stream of POSTs (one at a time,
	# each with its own Idempotency-Key), 8 s; app2's masters die at 2 s.
	wrk -t 2 -c 8 -d 8s --timeout 5s "$BASE/api/v1/exercises/$id" >"$SC/log/wrk-down.log" 2>&1 3>&- &
	local wrk_pid=$!
	: >"$SC/log/posts.log"
	(
		end=$((SECONDS + 8))
		i=0
		while [ "$SECONDS" -lt "$end" ]; do
			i=$((i + 1))
			st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
				-H "Authorization: Bearer $ALICE_TOKEN" -H 'Content-Type: application/json' \
				-H "Idempotency-Key: down-$SID-$i" --data-binary '{"answer":"42"}' \
				"$BASE/api/v1/exercises/$ex/submissions")
			echo "down-$SID-$i $st" >>"$SC/log/posts.log"
		done
	) 3>&- &
	local post_pid=$!
	sleep 2
	t0=$(now_ms)
	masters=$(for a in api auth health metrics worker; do pid_of "app2-$a"; done)
	# shellcheck disable=SC2086 # five pids
	kill -KILL $masters
	wait "$wrk_pid"
	wait "$post_pid"
	WRK_OUT=$(cat "$SC/log/wrk-down.log")
	echo "$WRK_OUT"
	WRK_NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$WRK_OUT")
	WRK_SOCKERR=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' <<<"$WRK_OUT")
	echo "GETs: $(awk '/requests in/ { print $1 }' <<<"$WRK_OUT") requests, ${WRK_NON2XX:-0} non-2xx, ${WRK_SOCKERR:-0} socket errors"
	# At most the 8 GETs in flight at the kill can fail (nginx retries an
	# idempotent request on the other host when app2 breaks mid-way).
	[ "$((${WRK_NON2XX:-0} + ${WRK_SOCKERR:-0}))" -le 8 ]
	# POSTs: one at a time, so at most the one in flight on app2.
	mapfile -t failed < <(awk '$2 != 202 { print $1 }' "$SC/log/posts.log")
	echo "POSTs: $(wc -l <"$SC/log/posts.log") sent, ${#failed[@]} not 202: $(awk '$2 != 202' "$SC/log/posts.log" | tr '\n' ' ')"
	[ "$(wc -l <"$SC/log/posts.log")" -gt 5 ]
	[ "${#failed[@]}" -le 1 ]
	# A client retries a failed POST with its key: the app then runs it at
	# most once, so every key ends with exactly one submission.
	for k in "${failed[@]}"; do
		submit "$ALICE_TOKEN" "$ex" "$k"
		[ "$status_code" = 202 ] || [ "$status_code" = 200 ]
	done
	assert_equal "$(q "SELECT count(*), count(DISTINCT idempotency_key) FROM submissions
		WHERE user_id = $ALICE_ID AND idempotency_key LIKE 'down-$SID-%'")" \
		"$(wc -l <"$SC/log/posts.log")|$(wc -l <"$SC/log/posts.log")"

	# Past fail_timeout nothing fails; app1 serves everything.
	sleep "$FAIL_TIMEOUT"
	t1=$(now_ms)
	wrk_run 3 "$BASE/api/v1/exercises/$id" 8
	echo "after fail_timeout: $WRK_REQS requests, $WRK_NON2XX non-2xx, $WRK_SOCKERR socket errors"
	assert_equal "$WRK_NON2XX" 0
	assert_equal "$WRK_SOCKERR" 0
	for i in 1 2 3 4; do
		submit "$ALICE_TOKEN" "$ex" "later-$i-$RANDOM"
		assert_equal "$status_code" 202
	done
	# Every request since then ended on app1 (wrk's last requests, cut off
	# when it stops, are logged too: hence not an exact count).
	run upstream_counts "$SC/log/lb-access.log" "$t1"
	echo "$output"
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^$(ip_of app1):9001 [0-9]+\$"
	[ "${output##* }" -ge "$((WRK_REQS + 4))" ]
}
