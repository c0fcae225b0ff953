#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, headers, *_TOKEN: set by the helpers
# Hostile input through nginx against kiln-health, -auth, -api and -admin
# (issue 9, docs/reliability.md "Hostile input"): what the other suites do
# not already prove. SQL in every string field and parameter of auth and
# admin and in the api inputs api.bats leaves out; path traversal against the
# static dashboard; CR/LF in echoed headers and log injection; very long
# URLs and headers; invalid UTF-8, duplicate members and deep nesting in the
# JSON bodies of every app; forged JWTs against api and admin; CORS on auth
# and admin and near-miss origins on api. The last test greps every log of
# the stack for the passwords and tokens used here.

setup_file() {
	load helpers
	load auth-helpers
	load api-helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[server.api]
	cors_origins = https://app.example

	[auth]
	ip_rate = 100000
	ip_period = 60s
	ip_burst = 100000
	argon2_memory = 8M
	argon2_iterations = 1
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	: >"$BATS_FILE_TMPDIR/accounts.env"
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up health auth api admin
	make_account ADMIN admin "Ada Admin"
	make_account AUTHOR author "Arthur Author"
	make_account ALICE user "Alice Learner"
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" seed --exercises 3 >/dev/null
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
	stack_attach
	load_accounts
}

teardown() {
	rcli DEL kiln:maintenance >/dev/null 2>&1 || true
}

# The row counts and tables an injection would change.
TABLES="users exercises submissions jobs admin_audit refresh_tokens"
db_state() {
	local t out=""
	for t in $TABLES; do
		out+="$t=$(psql_kiln "SELECT CASE WHEN to_regclass('public.$t') IS NULL THEN -1 ELSE (SELECT count(*) FROM $t) END") "
	done
	echo "$out"
}

# uri STRING: STRING percent-encoded for a query parameter.
uri() {
	jq -rn --arg s "$1" '$s|@uri'
}

# one_of CODE...: $status_code is one of them.
one_of() {
	local c
	for c in "$@"; do [ "$status_code" = "$c" ] && return 0; done
	printf 'HTTP %s, expected one of %s\n%s\n' "$status_code" "$*" "$body" >&2
	return 1
}

# The pids of every app process (masters and workers), one line.
app_pids() {
	local a
	for a in health auth api admin; do
		echo "$a:$(master_pid "$a"):$(worker_pids "$a" | tr '\n' ,)"
	done
}

# raw REQUEST: send REQUEST bytes (printf format) to nginx as they are;
# sets status_code and headers (the response head, CR stripped).
raw() {
	local resp
	# shellcheck disable=SC2059 # the request is a printf format on purpose
	resp=$(printf "$1" | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(sys.stdin.buffer.read())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("latin-1"))' "$PORT")
	headers=$(printf '%s' "$resp" | tr -d '\r' | sed '/^$/q')
	status_code=$(printf '%s\n' "$headers" | head -n 1 | cut -d' ' -f2)
}

# ================================================================ SQL injection

SQLS=("' OR '1'='1" "x'); DROP TABLE users;--" "1; DELETE FROM jobs" "\\'; TRUNCATE admin_audit; --" "\$\$; DROP TABLE exercises; \$\$")

@test "SQL injection: auth's email, password, display name and refresh token are stored literally or refused" {
	before=$(db_state)
	name="Robert'); DROP TABLE users;--"
	pw="p'); DROP TABLE users;-- Kq7 $RANDOM tangerine"
	email="sqli-$RANDOM$RANDOM@example.com"
	register_user "$email" "$pw" "$name"
	login "$email" "$pw"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(json .display_name)" "$name"
	# a quote in the local part is a valid address: stored as it is, or refused
	qemail="o'brien-$RANDOM$RANDOM@example.com"
	post_json /auth/register "$(jq -cn --arg e "$qemail" --arg p "$pw" '{email:$e, password:$p, display_name:"Quote"}')"
	one_of 201 422
	quoted=$status_code
	if [ "$quoted" = 201 ]; then
		assert_equal "$(psql_kiln "SELECT count(*) FROM users WHERE email = '${qemail//\'/\'\'}'")" 1
	fi
	for s in "${SQLS[@]}"; do
		login_req "$s" "$s"
		echo "login '$s' -> $status_code"
		one_of 401 422
		login_req "$email" "$s"
		one_of 401
		login_req "$email' --" "$pw"
		one_of 401 422
		refresh_req "$s"
		one_of 401 422
		post_json /auth/register "$(jq -cn --arg e "$s" --arg p "$pw" '{email:$e, password:$p, display_name:"x"}')"
		one_of 422
	done
	after=$(db_state)
	expected=$(printf '%s' "$before" | awk -v q="$quoted" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "users") kv[2] += 1 + (q == 201); if (kv[1] == "refresh_tokens") kv[2] += 1; printf "%s=%s ", kv[1], kv[2] } }')
	assert_equal "$after" "$expected"
}

@test "SQL injection: admin's query parameters and bodies are refused or matched literally; tables intact" {
	before=$(db_state)
	for s in "${SQLS[@]}"; do
		e=$(uri "$s")
		api GET "/admin/api/users?q=$e" "$ADMIN_TOKEN"
		echo "users q '$s' -> $status_code $(json '.items | length')"
		expect 200
		assert_equal "$(json '.items | length')" 0
		for p in role locked; do
			api GET "/admin/api/users?$p=$e" "$ADMIN_TOKEN"
			problem 422 "$p"
		done
		for p in state kind; do
			api GET "/admin/api/jobs?$p=$e" "$ADMIN_TOKEN"
			problem 422 "$p"
		done
		for p in actor_id action target_type; do
			api GET "/admin/api/audit?$p=$e" "$ADMIN_TOKEN"
			problem 422 "$p"
		done
		api GET "/admin/api/audit?target_type=user&target_id=$(uri "${s// /}")" "$ADMIN_TOKEN"
		expect 200
		assert_equal "$(json '.items | length')" 0
		api PUT "/admin/api/users/$ALICE_ID/role" "$ADMIN_TOKEN" "$(jq -cn --arg r "$s" '{role:$r}')"
		problem 422 role
		api GET "/admin/api/users/$e" "$ADMIN_TOKEN"
		one_of 400 404
		api POST "/admin/api/jobs/$e/retry" "$ADMIN_TOKEN"
		one_of 400 404
	done
	assert_equal "$(psql_kiln "SELECT role FROM users WHERE id = $ALICE_ID")" user
	# a maintenance message is free text: stored and given back literally
	msg="back soon'); DROP TABLE admin_audit;--"
	api PUT /admin/api/maintenance "$ADMIN_TOKEN" "$(jq -cn --arg m "$msg" '{enabled:true, message:$m}')"
	expect 200
	api GET /admin/api/maintenance "$ADMIN_TOKEN"
	assert_equal "$(json .message)" "$msg"
	api PUT /admin/api/maintenance "$ADMIN_TOKEN" '{"enabled":false}'
	expect 200
	after=$(db_state)
	# exactly the two audit rows of maintenance on and off
	expected=$(printf '%s' "$before" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "admin_audit") kv[2] += 2; printf "%s=%s ", kv[1], kv[2] } }')
	assert_equal "$after" "$expected"
}

@test "SQL injection: api's Idempotency-Key, list parameters, cursor, ids and If-Match are literal or refused" {
	id=$(psql_kiln "SELECT id FROM exercises WHERE published ORDER BY id LIMIT 1")
	before=$(db_state)
	key="k');DROP-TABLE-submissions;--$RANDOM"
	api POST "/api/v1/exercises/$id/submissions" "$ALICE_TOKEN" '{"answer":"x"}' -H "Idempotency-Key: $key"
	expect 202
	sid=$(json .id)
	assert_equal "$(psql_kiln "SELECT idempotency_key FROM submissions WHERE id = $sid")" "$key"
	api POST "/api/v1/exercises/$id/submissions" "$ALICE_TOKEN" '{"answer":"x"}' -H "Idempotency-Key: $key"
	expect 202
	assert_equal "$(json .id)" "$sid"
	for s in "${SQLS[@]}"; do
		e=$(uri "$s")
		for p in category difficulty cursor limit; do
			api GET "/api/v1/exercises?$p=$e" -
			echo "exercises $p '$s' -> $status_code"
			problem 422 "$p"
		done
		api GET "/api/v1/me/submissions?exercise_id=$e" "$ALICE_TOKEN"
		one_of 422
		api GET "/api/v1/exercises/$e" -
		one_of 400 404
		api GET "/api/v1/leaderboard?limit=$e" -
		one_of 422
		api PATCH "/api/v1/exercises/$id" "$ADMIN_TOKEN" '{"points":1}' -H "If-Match: $s"
		one_of 412 428
	done
	after=$(db_state)
	expected=$(printf '%s' "$before" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "submissions" || kv[1] == "jobs") kv[2] += 1; printf "%s=%s ", kv[1], kv[2] } }')
	assert_equal "$after" "$expected"
}

# ================================================================ path traversal

@test "path traversal: no request under /admin/ reaches a file outside www/admin" {
	marker=$(head -c 300 "$REPO/GNUmakefile" | head -n 1)
	for p in /admin/../GNUmakefile /admin/../../GNUmakefile /admin/%2e%2e/GNUmakefile \
		/admin/%2e%2e/%2e%2e/GNUmakefile /admin/..%2fGNUmakefile /admin/..%2f..%2fGNUmakefile \
		/admin/%2e%2e%2f%2e%2e%2fetc%2fpasswd /admin/....//....//etc/passwd /admin//etc/passwd \
		/admin/..%5c..%5cGNUmakefile /admin/%252e%252e/GNUmakefile /admin/..%00/GNUmakefile \
		/admin/index.html%00.txt /admin/../../../../../../etc/passwd /admin/.. /admin/..%2f \
		/admin/./../www/admin/index.html "/admin/../scripts/stack" /admin/%c0%ae%c0%ae/GNUmakefile \
		/admin/../.git/config /admin/.git/config "/admin/../etc/kiln.conf.example"; do
		out=$BATS_TEST_TMPDIR/out
		code=$(curl -s --path-as-is -o "$out" -w '%{http_code}' --max-time 10 "$BASE$p")
		echo "$p -> $code ($(wc -c <"$out") bytes)"
		[[ $code =~ ^(200|301|400|403|404)$ ]]
		! grep -q 'root:.*:0:0:' "$out"
		! grep -qF "$marker" "$out"
		! grep -q 'jwt_key\|#!/usr/bin/env bash\|\[core\]' "$out"
		if [ "$code" = 200 ]; then
			same=0
			for f in "$REPO"/www/admin/*; do cmp -s "$out" "$f" && same=1; done
			[ "$same" = 1 ]
		fi
	done
}

# ================================================================ headers

@test "header injection: CR/LF in X-Request-ID, Origin or Idempotency-Key never becomes a response header" {
	for target in /health/live /api/v1/exercises /auth/me /admin/api/users; do
		raw "GET $target HTTP/1.1\r\nHost: kiln\r\nX-Request-ID: abc\rX-Injected: 1\r\nConnection: close\r\n\r\n"
		echo "$target bare CR -> $status_code"
		[ -n "$status_code" ] && [ "$status_code" -lt 500 ]
		! printf '%s\n' "$headers" | grep -qi '^x-injected'
		raw "GET $target HTTP/1.1\r\nHost: kiln\r\nX-Request-ID: abc\nX-Injected: 1\r\nConnection: close\r\n\r\n"
		echo "$target bare LF -> $status_code"
		[ -n "$status_code" ] && [ "$status_code" -lt 500 ]
		! printf '%s\n' "$headers" | grep -qi '^x-injected'
		raw "GET $target HTTP/1.1\r\nHost: kiln\r\nX-Request-ID: abc%%0d%%0aX-Injected:%%201\r\nConnection: close\r\n\r\n"
		[ -n "$status_code" ] && [ "$status_code" -lt 500 ]
		! printf '%s\n' "$headers" | grep -qi '^x-injected'
		# not well-formed: replaced by nginx's own id
		printf '%s\n' "$headers" | grep -qiE '^x-request-id: [0-9a-f]{32}$'
		raw "GET $target HTTP/1.1\r\nHost: kiln\r\nX-Request-ID: abc\r\n x-injected: folded\r\nConnection: close\r\n\r\n"
		echo "$target obs-fold -> $status_code"
		[ -n "$status_code" ] && [ "$status_code" -lt 500 ]
		! printf '%s\n' "$headers" | grep -qi '^x-injected\|folded'
		raw "OPTIONS $target HTTP/1.1\r\nHost: kiln\r\nOrigin: https://app.example\rX-Injected: 1\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
		[ -n "$status_code" ] && [ "$status_code" -lt 500 ]
		! printf '%s\n' "$headers" | grep -qi '^x-injected'
	done
	id=$(psql_kiln "SELECT id FROM exercises WHERE published ORDER BY id LIMIT 1")
	raw "POST /api/v1/exercises/$id/submissions HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer $ALICE_TOKEN\r\nContent-Type: application/json\r\nIdempotency-Key: k1\rX-Injected: 1\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{\"answer\":\"x\"}"
	echo "Idempotency-Key with CR -> $status_code"
	[ -n "$status_code" ] && [ "$status_code" -ge 400 ] && [ "$status_code" -lt 500 ]
	! printf '%s\n' "$headers" | grep -qi '^x-injected'
	api POST "/api/v1/exercises/$id/submissions" "$ALICE_TOKEN" '{"answer":"x"}' -H $'Idempotency-Key: k2\tX-Injected: 1'
	problem 422 Idempotency-Key
	! printf '%s\n' "$headers" | grep -qi '^x-injected'
}

@test "log injection: quotes, newlines and JSON in a User-Agent or X-Request-ID leave every log line one JSON object" {
	for ua in '","level":"fatal","msg":"forged' $'x\\"}\n{"msg":"forged' '\u0000\x00'; do
		http GET /health/live -H "User-Agent: $ua" -H 'X-Request-ID: ","msg":"forged'
		[ "$status_code" = 200 ] || [ "$status_code" = 400 ]
		http GET /api/v1/exercises/999999999 -H "User-Agent: $ua"
		[ "$status_code" = 404 ] || [ "$status_code" = 400 ]
	done
	for f in "$STACK"/log/nginx-access.log "$STACK"/log/health.log "$STACK"/log/api.log; do
		run bash -c "grep '^{' '$f' | jq -c . >/dev/null"
		assert_success
		run grep -c '"msg":"forged"\|"level":"fatal"' "$f"
		assert_output 0
	done
}

@test "very long URLs and headers: 4xx from nginx or the app, never 5xx; no worker died" {
	pids=$(app_pids)
	long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }
	check() { # expected-class curl-args...
		http GET "$@"
		echo "$(printf '%s' "$*" | cut -c1-60)... -> $status_code"
		[[ $status_code =~ ^4[0-9][0-9]$ ]]
	}
	check "/api/v1/exercises?q=$(long 20000)"
	check "/$(long 20000)"
	check "/health/live?$(long 9000)"
	check "/admin/api/users?q=$(long 7000)" -H "Authorization: Bearer $ADMIN_TOKEN"
	check /health/live -H "X-Long: $(long 20000)"
	check /api/v1/exercises -H "Cookie: $(long 40000)"
	check /auth/me -H "Authorization: Bearer $(long 7000)"
	check /admin/api/users -H "Authorization: Bearer $(long 7000 x).$(long 100).$(long 43)"
	# 7 KB fits nginx's buffers and reaches the apps: they answer 4xx
	id=$(psql_kiln "SELECT id FROM exercises WHERE published ORDER BY id LIMIT 1")
	api POST "/api/v1/exercises/$id/submissions" "$ALICE_TOKEN" '{"answer":"x"}' -H "Idempotency-Key: $(long 7000)"
	problem 422 Idempotency-Key
	# over the apps' query limit (400) or q's own (422)
	api GET "/api/v1/exercises?q=$(long 7000)" -
	problem "$([ "$status_code" = 400 ] && echo 400 || echo 422)"
	api GET "/admin/api/users?q=$(long 7000)" "$ADMIN_TOKEN"
	problem "$([ "$status_code" = 400 ] && echo 400 || echo 422)"
	hdrs=()
	for i in $(seq 1 300); do hdrs+=(-H "X-Many-$i: $(long 100)"); done
	http GET /health/live "${hdrs[@]}"
	echo "300 headers -> $status_code"
	[[ $status_code =~ ^(200|4[0-9][0-9])$ ]]
	# the apps are still up with the same processes
	http GET /health/live
	assert_equal "$status_code" 200
	assert_equal "$(app_pids)" "$pids"
}

# ================================================================ JSON bodies

# Every JSON body kiln accepts, as METHOD PATH TOKEN-VAR (or -).
json_targets() {
	local id
	id=$(psql_kiln "SELECT id FROM exercises WHERE published ORDER BY id LIMIT 1")
	echo "POST /auth/register -"
	echo "POST /auth/login -"
	echo "POST /auth/refresh -"
	echo "POST /auth/password ALICE_TOKEN"
	echo "POST /api/v1/exercises AUTHOR_TOKEN"
	echo "POST /api/v1/exercises/$id/submissions ALICE_TOKEN"
	echo "PUT /admin/api/users/$ALICE_ID/role ADMIN_TOKEN"
	echo "PUT /admin/api/maintenance ADMIN_TOKEN"
	echo "POST /admin/api/cache/flush ADMIN_TOKEN"
}

send_json() { # METHOD PATH TOKEN-VAR BODY-FILE
	local tok=-
	[ "$3" = - ] || tok=${!3}
	api "$1" "$2" "$tok" - -H 'Content-Type: application/json' --data-binary @"$4"
}

@test "invalid UTF-8 in a JSON body: 400 or 422 from every app, and nothing changes" {
	before=$(db_state)
	f=$BATS_TEST_TMPDIR/bad.json
	while read -r m p t; do
		for bytes in '\xff\xfe' '\xc0\xaf' '\xed\xa0\x80' '\xe2\x82'; do
			# shellcheck disable=SC2059
			printf "{\"role\":\"us$bytes\",\"enabled\":true,\"message\":\"m$bytes\",\"answer\":\"a$bytes\",\"email\":\"a$bytes@example.com\",\"password\":\"p$bytes\"}" >"$f"
			send_json "$m" "$p" "$t" "$f"
			echo "$m $p $bytes -> $status_code"
			one_of 400 422
		done
	done < <(json_targets)
	assert_equal "$(db_state)" "$before"
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
}

@test "duplicate JSON member names are refused (400) by every app: {\"role\":\"user\",\"role\":\"admin\"} cannot pick one" {
	before=$(db_state)
	f=$BATS_TEST_TMPDIR/dup.json
	while read -r m p t; do
		for body in '{"role":"user","role":"admin"}' '{"enabled":false,"enabled":true}' \
			'{"answer":"x","answer":"y"}' '{"a":{"b":1,"b":2}}' '{"role":"user","\u0072ole":"admin"}'; do
			printf '%s' "$body" >"$f"
			send_json "$m" "$p" "$t" "$f"
			echo "$m $p $body -> $status_code $(json .detail 2>/dev/null)"
			problem 400
			[[ $(json .detail) == *duplicate* ]]
		done
	done < <(json_targets)
	assert_equal "$(psql_kiln "SELECT role FROM users WHERE id = $ALICE_ID")" user
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
	assert_equal "$(db_state)" "$before"
}

@test "deeply nested JSON (100 000 levels): 400 within 2 s from every app; the workers live" {
	pids=$(app_pids)
	f=$BATS_TEST_TMPDIR/deep.json
	python3 -c 'import sys; sys.stdout.write("{\"role\":" + "[" * 100000 + "]" * 100000 + "}")' >"$f"
	while read -r m p t; do
		t0=$(now_ms)
		send_json "$m" "$p" "$t" "$f"
		ms=$(($(now_ms) - t0))
		echo "$m $p -> $status_code in $ms ms: $(json .detail 2>/dev/null)"
		problem 400
		[[ $(json .detail) == *nesting* ]]
		[ "$ms" -lt 2000 ]
	done < <(json_targets)
	assert_equal "$(app_pids)" "$pids"
}

# ================================================================ JWT

@test "forged JWTs against api and admin: alg RS256 / none / HS512 / hs256, expired, unknown kid are 401; the genuine token works" {
	h=$(jwt_part "$ADMIN_TOKEN" 1)
	pl=$(jwt_part "$ADMIN_TOKEN" 2)
	now=$(date +%s)
	forged=(
		"$(craft_jwt "$(jq -c '.alg = "RS256"' <<<"$h")" "$pl")"
		"$(craft_jwt "$(jq -c '.alg = "none"' <<<"$h")" "$pl")"
		"$(craft_jwt "$(jq -c '.alg = "None"' <<<"$h")" "$pl")"
		"$(craft_jwt "$(jq -c '.alg = "HS512"' <<<"$h")" "$pl")"
		"$(craft_jwt "$(jq -c 'del(.alg)' <<<"$h" | jq -c '. + {alg: "none"}')" "$pl")"
		"$(craft_jwt "$h" "$(jq -c --argjson t "$now" '.exp = $t - 3600 | .iat = $t - 7200' <<<"$pl")")"
		"$(craft_jwt "$(jq -c '.kid = "no-such-kid"' <<<"$h")" "$pl")"
		"$(craft_jwt "$(jq -c '.kid = "../../../../dev/null"' <<<"$h")" "$pl")"
	)
	# RS256 with the HMAC key as the "public key": the classic confusion
	hs=$(printf '%s' "$(jq -c '.alg = "RS256"' <<<"$h")" | b64url).$(printf '%s' "$pl" | b64url)
	forged+=("$hs.$(sign HS256 "$hs")")
	# hs256 in lower case, correctly signed
	lc=$(printf '%s' "$(jq -c '.alg = "hs256"' <<<"$h")" | b64url).$(printf '%s' "$pl" | b64url)
	forged+=("$lc.$(sign HS256 "$lc")")
	remember "${forged[@]}"
	# the control: re-signing the genuine header and payload is accepted
	api GET /admin/api/users "$(craft_jwt "$h" "$pl")"
	expect 200
	for t in "${forged[@]}"; do
		api GET /admin/api/users "$t"
		echo "admin $(jwt_part "$t" 1) -> $status_code"
		expect 401
		api GET /api/v1/me/progress "$t"
		expect 401
		api POST /api/v1/exercises "$t" "$(ex_body exact)"
		expect 401
	done
}

# ================================================================ CORS

@test "CORS: auth and admin (no origins configured) send no CORS headers; api refuses near-miss origins" {
	for o in https://app.example https://evil.example null; do
		for p in /auth/me /admin/api/users /health/live; do
			http GET "$p" -H "Origin: $o" -H "Authorization: Bearer $ADMIN_TOKEN"
			assert_equal "$(hdr_count access-control-allow-origin)" 0
			http OPTIONS "$p" -H "Origin: $o" -H 'Access-Control-Request-Method: GET'
			assert_equal "$(hdr_count access-control-allow-origin)" 0
			assert_equal "$(hdr_count access-control-allow-credentials)" 0
		done
	done
	for o in https://app.example.evil.com https://evil.app.example http://app.example \
		https://app.example:8443 https://app.examplex "https://app.example/" null \
		"https://app.example https://evil.example" '*'; do
		http GET /api/v1/exercises -H "Origin: $o"
		echo "api Origin '$o' -> $(hdr access-control-allow-origin)"
		assert_equal "$(hdr_count access-control-allow-origin)" 0
		http OPTIONS /api/v1/exercises -H "Origin: $o" -H 'Access-Control-Request-Method: POST'
		assert_equal "$(hdr_count access-control-allow-origin)" 0
	done
	http GET /api/v1/exercises -H 'Origin: https://app.example'
	assert_equal "$(hdr access-control-allow-origin)" https://app.example
}

# ================================================================ logs (keep last)

@test "after all of the above, no log of the stack holds a password, a token or an Authorization value" {
	logs=$STACK/log
	[ -s "$logs/api.log" ] && [ -s "$logs/admin.log" ] && [ -s "$logs/nginx-access.log" ]
	grep -q '"request_id"' "$logs/admin.log"
	patterns=$BATS_TEST_TMPDIR/patterns
	# the accounts' passwords and tokens, every token and password remembered
	load_accounts
	{
		sort -u "$BATS_FILE_TMPDIR/secrets"
		printf '%s\n' "$ADMIN_TOKEN" "$AUTHOR_TOKEN" "$ALICE_TOKEN" "$ADMIN_PASSWORD" "$AUTHOR_PASSWORD" "$ALICE_PASSWORD"
	} | grep -v '^$' | sort -u >"$patterns.all"
	# the attack strings went in as passwords and refresh tokens too, but
	# they are no secret: they are in URLs the access log keeps
	printf '%s\n' "${SQLS[@]}" >"$patterns.sql"
	grep -vxF -f "$patterns.sql" "$patterns.all" >"$patterns"
	grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{40,}$' "$patterns" | cut -d. -f3 >"$patterns.sig" || true
	cat "$patterns.sig" >>"$patterns"
	jwt_key_hex >>"$patterns"
	awk 'length($0) < 10 { print "short secret: " $0 > "/dev/stderr"; bad = 1 } END { exit bad }' "$patterns"
	echo "$(wc -l <"$patterns") secrets; logs: $(ls "$logs")"
	[ "$(wc -l <"$patterns")" -gt 20 ]
	run grep -rnoF -f "$patterns" "$logs"
	echo "$output" | cut -c1-300
	assert_failure 1
	run grep -rniE 'bearer +[A-Za-z0-9._~+/=-]{8,}|authorization' "$logs"
	echo "$output" | cut -c1-300
	assert_failure 1
}
