#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, *_TOKEN, ...: set by the helpers
# kiln-admin through nginx against real PostgreSQL, Redis, memcached,
# kiln-api, kiln-auth and kiln-worker, checked against its contract
# docs/admin.md: the three gates (allow-list, token, admin role) on every
# endpoint; users (search, paging, filters, lock/unlock, role, revoke
# sessions); jobs (stats, lists, retry, discard); the cache flush and
# maintenance mode as kiln-api sees them; the audit log (a row per change,
# none for a no-op, append-only even for psql); live stats; PostgreSQL down.
#
# setup_file makes two admins (ADMIN acts, ADMIN2 is a target) and a plain
# USER and an AUTHOR that only ever knock on the doors; every test that
# changes a user makes its own.

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
	lockout_threshold = 2
	lockout_base = 1h

	[worker]
	poll_interval = 200ms
	test_kinds = on
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	: >"$BATS_FILE_TMPDIR/accounts.env"
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up api auth worker admin
	make_account ADMIN admin "Ada Admin"
	make_account ADMIN2 admin "Second Admin"
	make_account USER user "Uma User"
	make_account AUTHOR author "Arthur Author"
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
	load admin-helpers
	stack_attach
	load_accounts
}

teardown() {
	if [ -e "$BATS_FILE_TMPDIR/maintenance-on" ]; then
		rcli DEL kiln:maintenance >/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/maintenance-on"
	fi
	if [ -e "$BATS_FILE_TMPDIR/postgres-stopped" ]; then
		stack start postgres >/dev/null 2>&1 || true
		rm -f "$BATS_FILE_TMPDIR/postgres-stopped"
	fi
}

# A job on a queue nobody works: it stays available until a test moves it.
idle_job() {
	enqueue noop --queue nobody
}

# ================================================================ the gates

@test "anonymous: every endpoint is 401 and changes nothing" {
	jid=$(idle_job)
	n=$(audit_count)
	refuse() {
		api "$1" "$2" - "$3"
		echo "$1 $2 -> $status_code"
		[ "$status_code" = 401 ]
	}
	each_endpoint "$USER_ID" "$jid" refuse
	# A token that is not one is no better.
	bad() {
		api "$1" "$2" "not.a.token" "$3"
		echo "$1 $2 (garbage token) -> $status_code"
		[ "$status_code" = 401 ]
	}
	each_endpoint "$USER_ID" "$jid" bad
	assert_equal "$(audit_count)" "$n"
	assert_equal "$(job_state "$jid")" available
	assert_equal "$(psql_kiln "SELECT locked, role FROM users WHERE id = $USER_ID")" "f|user"
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
}

@test "signed-in users and authors: every endpoint is 403 and changes nothing" {
	jid=$(idle_job)
	n=$(audit_count)
	for who in USER AUTHOR; do
		tok_var=${who}_TOKEN
		TOK=${!tok_var}
		forbid() {
			api "$1" "$2" "$TOK" "$3"
			echo "$who: $1 $2 -> $status_code"
			problem 403
		}
		each_endpoint "$ADMIN2_ID" "$jid" forbid
	done
	assert_equal "$(audit_count)" "$n"
	assert_equal "$(job_state "$jid")" available
	assert_equal "$(psql_kiln "SELECT locked, role FROM users WHERE id = $ADMIN2_ID")" "f|admin"
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
	# Their tokens still work where they belong: the refusal was the role.
	api GET /auth/me "$USER_TOKEN"
	expect 200
}

@test "an address outside the allow-list: every endpoint and the page are 403, even for an admin" {
	jid=$(idle_job)
	n=$(audit_count)
	outside_refused() {
		local -a args=(-H "Authorization: Bearer $ADMIN_TOKEN")
		[ "$3" = - ] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
		outside "$1" "$2" "${args[@]}"
		echo "from 127.0.0.2: $1 $2 -> $status_code"
		[ "$status_code" = 403 ]
	}
	each_endpoint "$USER_ID" "$jid" outside_refused
	outside GET /admin/api/users
	assert_equal "$status_code" 403
	outside GET /admin/
	assert_equal "$status_code" 403
	assert_equal "$(audit_count)" "$n"
	assert_equal "$(job_state "$jid")" available
	assert_equal "$(psql_kiln "SELECT locked FROM users WHERE id = $USER_ID")" f
	# The same admin request from 127.0.0.1 is served.
	adm GET /admin/api/users
	expect 200
}

@test "an admin's answers are JSON with Cache-Control: no-store" {
	for p in /admin/api/users "/admin/api/users/$USER_ID" /admin/api/jobs/stats /admin/api/jobs \
		/admin/api/maintenance /admin/api/audit /admin/api/stats; do
		adm GET "$p"
		echo "GET $p -> $status_code $(hdr cache-control)"
		expect 200
		[[ "$(hdr content-type)" == application/json* ]]
		[[ "$(hdr cache-control)" == *no-store* ]]
	done
	adm GET /admin/api/users/999999999
	problem 404
	[[ "$(hdr cache-control)" == *no-store* ]]
}

# ================================================================ users

@test "users: the user object, 404 for an unknown id" {
	adm GET "/admin/api/users/$USER_ID"
	expect 200
	assert_equal "$(keys)" "active_sessions,created_at,display_name,email,failed_logins,id,locked,locked_until,role,updated_at"
	assert_equal "$(json .id)" "$USER_ID"
	assert_equal "$(json .email)" "$USER_EMAIL"
	assert_equal "$(json .display_name)" "Uma User"
	assert_equal "$(json .role)" user
	assert_equal "$(json .locked)" false
	assert_equal "$(json .locked_until)" null
	assert_equal "$(json .failed_logins)" 0
	[ "$(json .active_sessions)" -ge 1 ]
	assert_rfc3339 "$(json .created_at)"
	assert_rfc3339 "$(json .updated_at)"
	adm GET /admin/api/users/999999999
	problem 404
}

@test "users: search by email or display name, case-insensitively; filters by role and locked" {
	tag="zq$RANDOM$RANDOM"
	make_account S1 user "Searchable ${tag^^} One"
	make_account S2 author "Searchable $tag Two"
	load_accounts
	email3=$(new_email "$tag")
	register_user "$email3" "$(new_password)" "Plain Name"
	s3=$USER_ID
	psql_kiln "UPDATE users SET locked = true WHERE id = $s3"
	adm GET "/admin/api/users?q=$tag&limit=100"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$S1_ID,$S2_ID,$s3"
	assert_equal "$(json .next_cursor)" null
	adm GET "/admin/api/users?q=${tag^^}&role=author"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$S2_ID"
	adm GET "/admin/api/users?q=$tag&locked=true"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$s3"
	adm GET "/admin/api/users?q=$tag&locked=false&role=user"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$S1_ID"
	# By email: the address's local part holds the tag too.
	adm GET "/admin/api/users?q=${email3%@*}"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$s3"
}

@test "users: keyset pages by id ascending cover every user once; the cursor is bound to its filters" {
	for i in 1 2 3 4 5; do make_account "P$i" user; done
	got=$(page_all "/admin/api/users?limit=2" "$ADMIN_TOKEN")
	want=$(psql_kiln "SELECT id FROM users ORDER BY id")
	assert_equal "$got" "$want"
	adm GET "/admin/api/users?limit=2"
	expect 200
	assert_equal "$(json '.items | length')" 2
	cur=$(json .next_cursor)
	[ -n "$cur" ] && [ "$cur" != null ]
	last=$(json '.items[1].id')
	adm GET "/admin/api/users?limit=2&cursor=$cur"
	expect 200
	[ "$(json '.items[0].id')" -gt "$last" ]
	# The same cursor with other filters, or altered, is refused.
	adm GET "/admin/api/users?limit=2&role=admin&cursor=$cur"
	problem 422 cursor
	adm GET "/admin/api/users?limit=2&cursor=${cur}x"
	problem 422 cursor
}

@test "users: bad parameters are 422 naming them" {
	for bad in "limit=0 limit" "limit=101 limit" "limit=ten limit" "role=root role" \
		"locked=maybe locked" "q=$(printf 'a%.0s' $(seq 101)) q" "cursor=garbage cursor"; do
		read -r qs field <<<"$bad"
		adm GET "/admin/api/users?$qs"
		echo "?$qs -> $status_code $body" | cut -c1-200
		problem 422 "$field"
	done
}

@test "lock: the user's token is refused at once, their login is 403; unlock: login works; audited with before/after" {
	make_account V user "Victim Lock"
	load_accounts
	n=$(audit_count)
	r=$(rid)
	adm POST "/admin/api/users/$V_ID/lock" - -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .locked)" true
	assert_equal "$(json .active_sessions)" 0
	assert_equal "$(audit_count)" $((n + 1))
	audited user.lock user "$V_ID" "$r"
	assert_equal "$(audit_last | jq -c '[.before.locked, .after.locked]')" "[false,true]"
	api GET /auth/me "$V_TOKEN"
	assert_equal "$status_code" 401
	api GET /api/v1/me/progress "$V_TOKEN"
	assert_equal "$status_code" 401
	login_req "$V_EMAIL" "$V_PASSWORD"
	assert_equal "$status_code" 403
	# Unlock: login works again.
	r=$(rid)
	adm POST "/admin/api/users/$V_ID/unlock" '{}' -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .locked)" false
	assert_equal "$(audit_count)" $((n + 2))
	audited user.unlock user "$V_ID" "$r"
	assert_equal "$(audit_last | jq -c '[.before.locked, .after.locked]')" "[true,false]"
	login "$V_EMAIL" "$V_PASSWORD"
	api GET /auth/me "$ACCESS"
	expect 200
}

@test "unlock clears the login throttling; unlocking an unlocked user changes nothing and writes no row" {
	make_account T user "Throttled"
	load_accounts
	for _ in 1 2 3; do login_req "$T_EMAIL" "wrong-$RANDOM-password"; done
	login_req "$T_EMAIL" "$T_PASSWORD"
	assert_equal "$status_code" 429
	adm GET "/admin/api/users/$T_ID"
	[ "$(json .failed_logins)" -ge 2 ]
	[ "$(json .locked_until)" != null ]
	n=$(audit_count)
	adm POST "/admin/api/users/$T_ID/unlock"
	expect 200
	assert_equal "$(json .failed_logins)" 0
	assert_equal "$(json .locked_until)" null
	assert_equal "$(audit_count)" $((n + 1))
	login "$T_EMAIL" "$T_PASSWORD"
	# Now nothing is left to clear: 200, no row.
	adm POST "/admin/api/users/$T_ID/unlock"
	expect 200
	assert_equal "$(json .locked)" false
	assert_equal "$(audit_count)" $((n + 1))
}

@test "an admin cannot lock themselves or change their own role (409, no row); unknown users are 404" {
	n=$(audit_count)
	adm POST "/admin/api/users/$ADMIN_ID/lock"
	problem 409
	adm PUT "/admin/api/users/$ADMIN_ID/role" '{"role":"user"}'
	problem 409
	assert_equal "$(psql_kiln "SELECT locked, role FROM users WHERE id = $ADMIN_ID")" "f|admin"
	for e in "POST lock -" "POST unlock -" 'PUT role {"role":"author"}' "POST revoke-sessions -"; do
		read -r m p d <<<"$e"
		adm "$m" "/admin/api/users/999999999/$p" "$d"
		echo "$m $p -> $status_code"
		problem 404
	done
	assert_equal "$(audit_count)" "$n"
	adm GET /admin/api/users
	expect 200
}

@test "role: the old token is refused, a new login carries the new role; the same role again writes no row" {
	make_account R user "Role Change"
	load_accounts
	n=$(audit_count)
	r=$(rid)
	adm PUT "/admin/api/users/$R_ID/role" '{"role":"author"}' -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .role)" author
	audited user.role user "$R_ID" "$r"
	assert_equal "$(audit_last | jq -c '[.before.role, .after.role]')" '["user","author"]'
	api GET /auth/me "$R_TOKEN"
	assert_equal "$status_code" 401
	login "$R_EMAIL" "$R_PASSWORD"
	assert_equal "$(jwt_part "$ACCESS" 2 | jq -r .role)" author
	# An author may create exercises now.
	api POST /api/v1/exercises "$ACCESS" "$(ex_body exact)"
	expect 201
	adm PUT "/admin/api/users/$R_ID/role" '{"role":"author"}'
	expect 200
	assert_equal "$(audit_count)" $((n + 1))
	api GET /auth/me "$ACCESS"
	expect 200
}

@test "role: a bad body is 422 naming role" {
	n=$(audit_count)
	for b in '{"role":"root"}' '{}' '{"role":3}' '{"role":""}'; do
		adm PUT "/admin/api/users/$USER_ID/role" "$b"
		echo "$b -> $status_code $body" | cut -c1-200
		expect 422
	done
	adm PUT "/admin/api/users/$USER_ID/role" '{"role":"root"}'
	problem 422 role
	adm PUT "/admin/api/users/$USER_ID/role" '{}'
	problem 422 role
	assert_equal "$(audit_count)" "$n"
	assert_equal "$(psql_kiln "SELECT role FROM users WHERE id = $USER_ID")" user
}

@test "revoke-sessions: every session of the user ends; audited" {
	make_account K user "Two Sessions"
	load_accounts
	t1=$K_TOKEN
	login "$K_EMAIL" "$K_PASSWORD"
	t2=$ACCESS
	refresh=$REFRESH
	r=$(rid)
	adm POST "/admin/api/users/$K_ID/revoke-sessions" - -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .revoked)" 2
	audited user.revoke_sessions user "$K_ID" "$r"
	for t in "$t1" "$t2"; do
		api GET /auth/me "$t"
		assert_equal "$status_code" 401
	done
	refresh_req "$refresh"
	assert_equal "$status_code" 401
	adm GET "/admin/api/users/$K_ID"
	assert_equal "$(json .active_sessions)" 0
	assert_equal "$(json .locked)" false
	login "$K_EMAIL" "$K_PASSWORD"
}

# ================================================================ jobs

@test "jobs/stats: every state counted as PostgreSQL counts it, by kind, and the oldest runnable's age" {
	idle_job >/dev/null
	enqueue noop --queue nobody --delay 1h >/dev/null
	sleep 1.1
	adm GET /admin/api/jobs/stats
	expect 200
	assert_equal "$(keys)" "kinds,oldest_available_seconds,states"
	assert_equal "$(json '[.states | keys[]] | sort | join(",")')" \
		"available,cancelled,completed,discarded,retryable,running,scheduled"
	for s in available scheduled discarded cancelled; do
		assert_equal "$(json ".states.$s")" "$(psql_kiln "SELECT count(*) FROM jobs WHERE state = '$s'")"
	done
	[ "$(json .states.scheduled)" -ge 1 ]
	[ "$(json '[.kinds[] | select(.kind == "noop" and .state == "available") | .count] | add')" -ge 1 ]
	awk -v v="$(json .oldest_available_seconds)" 'BEGIN { exit !(v >= 1 && v < 3600) }'
}

@test "jobs: lists by state and kind, newest first; one job with its errors and args; 422 naming the parameter" {
	d1=$(discarded_job)
	d2=$(discarded_job)
	adm GET "/admin/api/jobs?state=discarded&kind=fail&limit=100"
	expect 200
	ids=$(json '[.items[].id] | join(",")')
	[[ ",$ids," == *",$d2,$d1,"* ]]
	assert_equal "$(json '[.items[] | select(.state != "discarded" or .kind != "fail")] | length')" 0
	assert_equal "$(json '.items[0] | keys | join(",")')" \
		"attempt,attempted_at,created_at,finalized_at,id,kind,last_error,max_attempts,priority,queue,request_id,scheduled_at,state"
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs WHERE state = 'discarded' AND kind = 'fail'")" \
		"$(page_all "/admin/api/jobs?state=discarded&kind=fail&limit=1" "$ADMIN_TOKEN" | wc -l)"
	adm GET "/admin/api/jobs/$d1"
	expect 200
	assert_equal "$(json .state)" discarded
	assert_equal "$(json '.errors | length')" 1
	[[ "$(json .last_error)" == *"always fails"* ]]
	assert_equal "$(json '.errors[-1].error')" "$(json .last_error)"
	assert_equal "$(json '.args | type')" object
	adm GET /admin/api/jobs/999999999
	problem 404
	for bad in "state=done state" "kind=Bad-Kind kind" "limit=0 limit" "limit=101 limit" "cursor=zz cursor"; do
		read -r qs field <<<"$bad"
		adm GET "/admin/api/jobs?$qs"
		echo "?$qs -> $status_code" 
		problem 422 "$field"
	done
}

@test "retry: a discarded job runs again; discard: an available one is discarded; other states are 409; both audited" {
	jid=$(discarded_job)
	n=$(audit_count)
	r=$(rid)
	adm POST "/admin/api/jobs/$jid/retry" - -H "X-Request-ID: $r"
	expect 200
	[[ "$(json .state)" =~ ^(available|running|retryable|discarded)$ ]]
	audited job.retry job "$jid" "$r"
	assert_equal "$(audit_last | jq -r .before.state)" discarded
	# One more attempt allowed: the worker runs it a second time.
	wait_until 20 bash -c "[ \"\$(psql 'host=$STACK/sock dbname=kiln user=kiln' -XAtqc \
		\"SELECT state || ',' || attempt FROM jobs WHERE id = $jid\")\" = discarded,2 ]"
	# Discard a job waiting on a queue nobody works.
	idle=$(idle_job)
	r=$(rid)
	adm POST "/admin/api/jobs/$idle/discard" '{}' -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .state)" discarded
	assert_equal "$(job_state "$idle")" discarded
	audited job.discard job "$idle" "$r"
	assert_equal "$(audit_count)" $((n + 2))
	# Wrong states: 409 naming the state, nothing written.
	adm POST "/admin/api/jobs/$idle/discard"
	problem 409
	[[ "$(json .detail)" == *discarded* ]]
	done_id=$(enqueue noop)
	wait_until 10 bash -c "[ \"\$(psql 'host=$STACK/sock dbname=kiln user=kiln' -XAtqc \
		'SELECT state FROM jobs WHERE id = $done_id')\" = completed ]"
	adm POST "/admin/api/jobs/$done_id/retry"
	problem 409
	[[ "$(json .detail)" == *completed* ]]
	adm POST "/admin/api/jobs/$done_id/discard"
	problem 409
	adm POST "/admin/api/jobs/999999999/retry"
	problem 404
	adm POST "/admin/api/jobs/999999999/discard"
	problem 404
	assert_equal "$(audit_count)" $((n + 2))
}

# ================================================================ cache, maintenance

@test "cache flush: the namespace is bumped and kiln-api's next read of a cached exercise is a miss" {
	create_ex "$ADMIN_TOKEN" "$(ex_body exact)"
	id=$EX_ID
	wait_until 5 cached_read "$id"
	ns0=$(rcli GET kiln:cache:ns)
	r=$(rid)
	adm POST /admin/api/cache/flush - -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .namespace)" "$(rcli GET kiln:cache:ns)"
	[ "$(json .namespace)" -gt "${ns0:-0}" ]
	audited cache.flush cache "" "$r"
	# kiln-api re-reads the namespace at most a second later.
	sleep 1.2
	h0=$(counter api_cache_hits)
	m0=$(counter api_cache_misses)
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(counter api_cache_misses)" $((m0 + 1))
	assert_equal "$(counter api_cache_hits)" "$h0"
	# And the page is cached again under the new namespace.
	wait_until 5 cached_read "$id"
}

@test "maintenance: on, kiln-api's writes are 503 with the message and reads 200; off, writes work; audited" {
	adm GET /admin/api/maintenance
	expect 200
	assert_equal "$(json .enabled)" false
	n=$(audit_count)
	msg="Moving to a bigger disk until 14:00 UTC"
	touch "$BATS_FILE_TMPDIR/maintenance-on"
	r=$(rid)
	adm PUT /admin/api/maintenance "$(jq -cn --arg m "$msg" '{enabled: true, message: $m}')" \
		-H "X-Request-ID: $r"
	expect 200
	assert_equal "$(jsonc .)" "$(jq -cn --arg m "$msg" '{enabled: true, message: $m}')"
	assert_equal "$(rcli GET kiln:maintenance)" "$msg"
	audited maintenance.on maintenance "" "$r"
	adm GET /admin/api/maintenance
	assert_equal "$(json .message)" "$msg"
	api POST /api/v1/exercises "$AUTHOR_TOKEN" "$(ex_body exact)"
	problem 503
	assert_equal "$(json .detail)" "$msg"
	api GET /api/v1/exercises -
	expect 200
	r=$(rid)
	adm PUT /admin/api/maintenance '{"enabled":false}' -H "X-Request-ID: $r"
	expect 200
	assert_equal "$(json .enabled)" false
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
	audited maintenance.off maintenance "" "$r"
	assert_equal "$(audit_count)" $((n + 2))
	rm -f "$BATS_FILE_TMPDIR/maintenance-on"
	api POST /api/v1/exercises "$AUTHOR_TOKEN" "$(ex_body exact)"
	expect 201
	# Off when off changes nothing: no row.
	adm PUT /admin/api/maintenance '{"enabled":false}'
	expect 200
	assert_equal "$(audit_count)" $((n + 2))
}

@test "maintenance: the default message; bad bodies are 422 naming the field" {
	touch "$BATS_FILE_TMPDIR/maintenance-on"
	adm PUT /admin/api/maintenance '{"enabled":true}'
	expect 200
	assert_equal "$(json .message)" "maintenance in progress"
	assert_equal "$(rcli GET kiln:maintenance)" "maintenance in progress"
	adm PUT /admin/api/maintenance '{"enabled":false}'
	expect 200
	rm -f "$BATS_FILE_TMPDIR/maintenance-on"
	n=$(audit_count)
	long=$(printf 'm%.0s' $(seq 201))
	for bad in '{} enabled' '{"enabled":"yes"} enabled' '{"enabled":true,"message":""} message' \
		"{\"enabled\":true,\"message\":\"$long\"} message" \
		'{"enabled":true,"message":"bell\u0007"} message' \
		'{"enabled":true,"message":5} message'; do
		read -r b field <<<"$bad"
		adm PUT /admin/api/maintenance "$b"
		echo "$b -> $status_code" | cut -c1-120
		problem 422 "$field"
	done
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
	assert_equal "$(audit_count)" "$n"
}

# ================================================================ audit

@test "audit: listed newest first with every field, filtered, 422 on bad parameters" {
	make_account A user "Audited"
	load_accounts
	r=$(rid)
	adm POST "/admin/api/users/$A_ID/lock" - -H "X-Request-ID: $r"
	expect 200
	adm POST "/admin/api/users/$A_ID/unlock"
	expect 200
	adm GET "/admin/api/audit?target_type=user&target_id=$A_ID"
	expect 200
	assert_equal "$(json '[.items[].action] | join(",")')" "user.unlock,user.lock"
	assert_equal "$(json '.items[0] | keys | join(",")')" \
		"action,actor_email,actor_id,after,at,before,id,ip,request_id,target_id,target_type"
	assert_equal "$(json '.items[1].request_id')" "$r"
	assert_equal "$(json '.items[1].actor_id')" "$ADMIN_ID"
	assert_equal "$(json '.items[1].actor_email')" "$ADMIN_EMAIL"
	assert_equal "$(json '.items[1].ip')" 127.0.0.1
	assert_equal "$(json '.items[1].after.locked')" true
	assert_rfc3339 "$(json '.items[0].at')"
	[ "$(json '.items[0].id')" -gt "$(json '.items[1].id')" ]
	adm GET "/admin/api/audit?action=user.lock&actor_id=$ADMIN_ID&limit=100"
	expect 200
	assert_equal "$(json '[.items[] | select(.action != "user.lock" or .actor_id != '"$ADMIN_ID"')] | length')" 0
	[ "$(json '.items | length')" -ge 1 ]
	for bad in "limit=0 limit" "actor_id=abc actor_id" "target_type=planet target_type" \
		"action=DROP%20TABLE action" "cursor=nope cursor"; do
		read -r qs field <<<"$bad"
		adm GET "/admin/api/audit?$qs"
		echo "?$qs -> $status_code"
		problem 422 "$field"
	done
}

@test "audit: the table refuses UPDATE, DELETE and TRUNCATE even from psql; the API cannot edit it" {
	make_account X user
	load_accounts
	adm POST "/admin/api/users/$X_ID/lock"
	expect 200
	n=$(audit_count)
	before=$(psql_kiln "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM admin_audit a")
	for sql in "UPDATE admin_audit SET actor_email = 'someone@else'" \
		"DELETE FROM admin_audit" "TRUNCATE admin_audit"; do
		run psql_kiln "$sql"
		echo "$sql -> $output"
		assert_failure
		[[ "$output" == *"append-only"* ]]
	done
	assert_equal "$(audit_count)" "$n"
	assert_equal "$(psql_kiln "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM admin_audit a")" "$before"
	for m in PUT PATCH DELETE POST; do
		adm "$m" /admin/api/audit '{}'
		echo "$m /admin/api/audit -> $status_code"
		assert_equal "$status_code" 405
	done
	adm DELETE /admin/api/audit/1
	[[ "$status_code" =~ ^40[45]$ ]]
	assert_equal "$(audit_count)" "$n"
}

# ================================================================ stats

@test "stats: after traffic, api's rate and percentiles; workers are the real processes; the queue matches SQL" {
	for _ in $(seq 30); do code_is 200 /api/v1/exercises; done
	wait_until 20 no_grading_pending
	# A stable queue: jobs on a queue nobody works, available and scheduled.
	idle_job >/dev/null
	enqueue noop --queue nobody --delay 1h >/dev/null
	adm GET /admin/api/stats
	expect 200
	assert_rfc3339 "$(json .generated_at)"
	# The window is since the newest snapshot at least 60 s old, or since
	# the programs started when there is none: positive, not bounded above.
	awk -v w="$(json .window_seconds)" 'BEGIN { exit !(w > 0) }'
	assert_equal "$(json '[.apps[].app] | join(",")')" "$(json '[.apps[].app] | sort | join(",")')"
	for a in admin api auth worker; do
		[ "$(json "[.apps[] | select(.app == \"$a\")] | length")" = 1 ]
	done
	api_app=$(jsonc '.apps[] | select(.app == "api")')
	echo "$api_app" | cut -c1-600
	printf '%s' "$api_app" | jq -e '.requests_total >= 30 and .requests_per_second > 0
		and .error_rate >= 0 and .error_rate <= 1 and (.p50_ms | type) == "number"
		and .p50_ms <= .p95_ms and .p95_ms <= .p99_ms and .p99_ms > 0'
	assert_equal "$(printf '%s' "$api_app" | jq -r '[.workers[].pid] | sort | map(tostring) | join(" ")')" \
		"$(worker_pids api | tr '\n' ' ' | sed 's/ $//')"
	printf '%s' "$api_app" | jq -e 'all(.workers[]; .state == "busy" or .state == "idle")'
	wk=$(jsonc '.apps[] | select(.app == "worker")')
	printf '%s' "$wk" | jq -e '.requests_per_second == 0'
	assert_equal "$(printf '%s' "$wk" | jq -r '[.workers[].pid] | sort | map(tostring) | join(" ")')" \
		"$(worker_pids worker | tr '\n' ' ' | sed 's/ $//')"
	# The queue, as PostgreSQL counts it right after.
	for s in available scheduled retryable running; do
		got=$(json ".queue.$s")
		want=$(psql_kiln "SELECT count(*) FROM jobs WHERE state = '$s'")
		echo "queue.$s: $got, SQL: $want"
		assert_equal "$got" "$want"
	done
	[ "$(json .queue.available)" -ge 1 ]
	[ "$(json .queue.scheduled)" -ge 1 ]
	[ "$(json '.queue.oldest_available_seconds | type')" = number ]
}

# Last: these stop PostgreSQL (and start it again).
@test "PostgreSQL down: every admin endpoint answers 503 problem+json (the token check needs it), none 500/502; back after" {
	make_account D user
	load_accounts
	jid=$(idle_job)
	touch "$BATS_FILE_TMPDIR/postgres-stopped"
	stack stop postgres >/dev/null
	for e in "GET /admin/api/stats -" "GET /admin/api/users -" "GET /admin/api/users/$D_ID -" \
		"POST /admin/api/users/$D_ID/lock -" "POST /admin/api/users/$D_ID/unlock -" \
		"PUT /admin/api/users/$D_ID/role {\"role\":\"author\"}" \
		"POST /admin/api/users/$D_ID/revoke-sessions -" "GET /admin/api/jobs/stats -" \
		"GET /admin/api/jobs -" "GET /admin/api/jobs/$jid -" "POST /admin/api/jobs/$jid/retry -" \
		"POST /admin/api/jobs/$jid/discard -" "GET /admin/api/audit -" \
		"POST /admin/api/cache/flush -" 'PUT /admin/api/maintenance {"enabled":false}'; do
		read -r m p d <<<"$e"
		adm "$m" "$p" "$d"
		echo "$m $p -> $status_code"
		problem 503
	done
	stack start postgres >/dev/null
	rm -f "$BATS_FILE_TMPDIR/postgres-stopped"
	wait_until 20 bash -c "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $ADMIN_TOKEN' \
		'$BASE/admin/api/users' | grep -qx 200"
	assert_equal "$(psql_kiln "SELECT locked, role FROM users WHERE id = $D_ID")" "f|user"
	assert_equal "$(job_state "$jid")" available
}
