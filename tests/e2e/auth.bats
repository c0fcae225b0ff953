#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, EMAIL, ...: set by the helpers
# kiln-auth through nginx against real PostgreSQL and Redis, checked against
# docs/api.md: register, login (throttling, timing), tokens (and forged
# ones), refresh rotation, logout, password change, sessions, verify, the
# per-address limit, and logs free of secrets.
#
# Short durations make the time-based rules testable: access tokens live
# 10 s, a rotated refresh token is honoured 2 s, the third failure in a row
# locks the account (1 s, doubling up to 3 s). Argon2id runs at 8 MiB, 1 pass:
# cheap, but still clearly longer than a request without a hash, which the
# timing test relies on. The per-address limit is high (all requests come
# from 127.0.0.1) until the end: the last tests stop and stall Redis, reload
# the config (Argon2 parameters, hourly failure limit, per-address limit) and
# finally search every log for the secrets the others used. Order matters
# there; everything before is independent (one fresh user per test).

setup_file() {
	load helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[auth]
	access_ttl = 10s
	refresh_grace = 2s
	lockout_threshold = 3
	lockout_base = 1s
	lockout_max = 3s
	ip_rate = 1000
	ip_period = 60s
	ip_burst = 1000
	lockout_hourly_limit = 1000
	argon2_memory = 8M
	argon2_iterations = 1
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	KILN_WORKERS=4 KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up auth
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
}

# A test that stopped Redis and failed before starting it again leaves no
# Redis-less stack behind for the next one.
teardown() {
	if [ -e "$BATS_FILE_TMPDIR/redis-stopped" ]; then
		stack start redis >/dev/null 2>&1 || true
		rm -f "$BATS_FILE_TMPDIR/redis-stopped"
	fi
	if [ -e "$BATS_FILE_TMPDIR/redis-paused" ]; then
		kill -CONT "$(cat "$STACK/pid/redis.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/redis-paused"
	fi
}

TTL=10        # access_ttl in seconds: expires_in
THRESHOLD=3   # lockout_threshold

# ================================================================ register

@test "register: 201 with exactly {id, email, display_name, role, created_at} and Location: /auth/me" {
	email=$(new_email reg)
	pw=$(new_password)
	before=$(date -u +%s)
	register_user "$email" "$pw" "Ada Lovelace"
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(hdr location)" /auth/me
	[ -n "$(hdr x-request-id)" ]
	assert_equal "$(json '.id | type')" number
	[ "$(json .id)" -gt 0 ]
	assert_equal "$(json .email)" "$email"
	assert_equal "$(json .display_name)" "Ada Lovelace"
	assert_equal "$(json .role)" user
	assert_rfc3339 "$(json .created_at)"
	created=$(date -u -d "$(json .created_at)" +%s)
	assert_int_between "$created" $((before - 5)) $(($(date -u +%s) + 5))
	# Nothing else: in particular no password or hash.
	assert_equal "$(json '[keys[]] | sort | join(",")')" "created_at,display_name,email,id,role"
}

@test "register normalises: email trimmed with the domain lowercased, display_name trimmed" {
	n=$RANDOM$RANDOM
	pw=$(new_password)
	register_user " Alice$n@EXAMPLE.com " "$pw" "  Alice Liddell  "
	assert_equal "$(json .email)" "Alice$n@example.com"
	assert_equal "$(json .display_name)" "Alice Liddell"
	# The stored address is the normalised one; login normalises the same way.
	login "Alice$n@example.com" "$pw"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(json .email)" "Alice$n@example.com"
	assert_equal "$(json .display_name)" "Alice Liddell"
	login " Alice$n@EXAMPLE.com " "$pw"
}

@test "register: an address already registered, in any case or spacing, is 409 naming email" {
	n=$RANDOM$RANDOM
	register_user "dup$n@example.com" "$(new_password)"
	for e in "dup$n@example.com" "DUP$n@Example.COM" "  Dup$n@example.com "; do
		post_json /auth/register "$(jq -cn --arg e "$e" --arg p "$(new_password)" '{email:$e, password:$p, display_name:"Dup"}')"
		echo "email '$e': $status_code $body"
		assert_problem 409
		assert_field_error email
	done
}

@test "register: 422 problem+json naming the field for each invalid or missing field" {
	pw=$(new_password)
	long64=$(printf 'l%.0s' $(seq 1 64))
	# check422 FIELD JSON: the body is refused, errors[] names FIELD.
	check422() {
		post_json /auth/register "$2"
		echo "expect 422 $1 for $2 -> $status_code $body" | cut -c1-400
		assert_problem 422
		assert_field_error "$1"
	}
	e() { new_email v; }
	pw11=$(openssl rand -base64 24 | tr -d '\n' | head -c 11)
	pw1025=$(openssl rand -base64 1200 | tr -d '\n' | head -c 1025)
	remember "$pw11" "$pw1025"

	check422 email "$(jq -cn --arg p "$pw" '{password:$p, display_name:"N"}')"
	check422 password "$(jq -cn --arg e "$(e)" '{email:$e, display_name:"N"}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p}')"
	check422 email "$(jq -cn --arg p "$pw" '{email:42, password:$p, display_name:"N"}')"
	check422 password "$(jq -cn --arg e "$(e)" '{email:$e, password:123456789012345, display_name:"N"}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:["N"]}')"
	check422 email "$(jq -cn --arg p "$pw" '{email:null, password:$p, display_name:"N"}')"
	for bad in "no-at-sign.example.com" "a@b@example.com" "has space$RANDOM@example.com" "@example.com" "josé$RANDOM@example.com" \
		"x$RANDOM@exa_mple.com" "x$RANDOM@example..com" "x$RANDOM@example.com." "x$RANDOM@" "$long64$RANDOM@example.com" ""; do
		check422 email "$(jq -cn --arg e "$bad" --arg p "$pw" '{email:$e, password:$p, display_name:"N"}')"
	done
	# 255 bytes (local part 64, labels of 63) is too long.
	d63=$(printf 'd%.0s' $(seq 1 63))
	local255="$(printf '%05d' $((RANDOM % 100000)))$(printf 'l%.0s' $(seq 1 59))"
	check422 email "$(jq -cn --arg e "$local255@$d63.$d63.$(printf 'z%.0s' $(seq 1 62))" --arg p "$pw" '{email:$e, password:$p, display_name:"N"}')"
	check422 password "$(jq -cn --arg e "$(e)" --arg p "$pw11" '{email:$e, password:$p, display_name:"N"}')"
	check422 password "$(jq -cn --arg e "$(e)" --arg p "$pw1025" '{email:$e, password:$p, display_name:"N"}')"
	# bytes, not characters: 10 characters, 11 bytes
	pw11b="é$(openssl rand -base64 24 | tr -d '\n/+' | head -c 9)"
	remember "$pw11b"
	check422 password "$(jq -cn --arg e "$(e)" --arg p "$pw11b" '{email:$e, password:$p, display_name:"N"}')"
	check422 password "$(jq -cn --arg e "$(e)" '{email:$e, password:"password1234", display_name:"N"}')"
	remember password1234
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" --arg n "$(printf 'n%.0s' $(seq 1 101))" '{email:$e, password:$p, display_name:$n}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" --arg n "$(printf 'é%.0s' $(seq 1 50))x" '{email:$e, password:$p, display_name:$n}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:""}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"   "}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"a\u0007b"}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"a\u0000b"}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"a\nb"}')"
	check422 display_name "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"a\u007fb"}')"
	# Unknown members, among them an attempt to pick one's own role.
	check422 role "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"N", role:"admin"}')"
	assert_equal "$(json '.errors[] | select(.field == "role") | .reason')" "unknown field"
	check422 nickname "$(jq -cn --arg e "$(e)" --arg p "$pw" '{email:$e, password:$p, display_name:"N", nickname:"x"}')"
	# errors[] names each bad field.
	check422 email "$(jq -cn --arg p "$pw11" '{email:"nope", password:$p, display_name:"N"}')"
	assert_field_error password

	# The refusals created nothing: an address from a refused request is free.
	e1=$(e)
	check422 password "$(jq -cn --arg e "$e1" --arg p "$pw11" '{email:$e, password:$p, display_name:"N"}')"
	register_user "$e1" "$pw"
}

@test "register: a display_name with a C1 control character (U+0080..U+009F) is 422 like any control character" {
	for c in '\u0080' '\u0085' '\u009f'; do
		post_json /auth/register "$(jq -cn --arg e "$(new_email c1)" --arg p "$(new_password)" "{email:\$e, password:\$p, display_name:\"a${c}b\"}")"
		echo "display_name a${c}b -> $status_code $body"
		assert_problem 422
		assert_field_error display_name
	done
}

@test "register: the bounds themselves are accepted (12 and 1024 byte passwords, 254 byte email, 100 byte name)" {
	pw12=$(openssl rand -base64 24 | tr -d '\n/+' | head -c 12)
	pw1024=$(openssl rand -base64 1200 | tr -d '\n' | head -c 1024)
	assert_equal ${#pw12} 12
	assert_equal ${#pw1024} 1024
	register_user "$(new_email b12)" "$pw12"
	register_user "$(new_email b1024)" "$pw1024"
	login "$(json .email)" "$pw1024"
	# bytes, not characters: 11 characters, 12 bytes
	pw12b="é$(openssl rand -base64 24 | tr -d '\n/+' | head -c 10)"
	assert_equal "$(printf '%s' "$pw12b" | wc -c)" 12
	register_user "$(new_email b12b)" "$pw12b"
	login "$(json .email)" "$pw12b"
	d63=$(printf 'd%.0s' $(seq 1 63))
	local64="$(printf '%05d' $((RANDOM % 100000)))$(printf 'l%.0s' $(seq 1 59))"
	e254="$local64@$d63.$d63.$(printf 'z%.0s' $(seq 1 61))"
	[ ${#e254} -eq 254 ]
	register_user "$e254" "$(new_password)" "$(printf 'é%.0s' $(seq 1 50))"
	assert_equal "$(json .email)" "$e254"
	assert_equal "$(json .display_name)" "$(printf 'é%.0s' $(seq 1 50))"
	# any printable ASCII but space in the local part; hyphens in the domain
	n=$RANDOM$RANDOM
	# shellcheck disable=SC2016 # literal characters
	local_ok='o'"'"'brien+tag.x_y!#$%&*/=?^`{|}~-'"$n"
	register_user "$local_ok@sub-domain.example-1.com" "$(new_password)"
	assert_equal "$(json .email)" "$local_ok@sub-domain.example-1.com"
}

@test "register: a body that is not a JSON object is 400 problem+json with a detail" {
	for data in '{"email":' 'not json' '[1,2]' '"a string"' '' '{"email":"a@example.com",}' '{} {}' '{"email":"a@example.com"} x'; do
		post_json /auth/register "$data"
		echo "body '$data' -> $status_code $body"
		assert_problem 400
		[ -n "$(json '.detail // empty')" ]
	done
}

@test "register: a Content-Type other than application/json is 415; with a charset it is accepted" {
	data=$(jq -cn --arg e "$(new_email ct)" --arg p "$(new_password)" '{email:$e, password:$p, display_name:"CT"}')
	for ct in 'text/plain' 'application/x-www-form-urlencoded' 'application/jsonx' ''; do
		# an empty value: curl sends no Content-Type at all
		http POST /auth/register -H "Content-Type:${ct:+ $ct}" --data-binary "$data"
		echo "Content-Type '$ct' -> $status_code $body"
		assert_problem 415
	done
	http POST /auth/register -H 'Content-Type: application/json; charset=utf-8' --data-binary "$data"
	assert_equal "$status_code" 201
}

@test "register: a body over max_body (1 MiB) is 413 problem+json" {
	big=$(head -c 1200000 /dev/zero | tr '\0' a)
	printf '{"email":"big@example.com","password":"%s","display_name":"B"}' "$big" >"$BATS_TEST_TMPDIR/big.json"
	http POST /auth/register -H 'Content-Type: application/json' --data-binary @"$BATS_TEST_TMPDIR/big.json"
	assert_problem 413
}

# ================================================================ login

@test "login: 200 token response; an HS256 JWT with kid and the documented claims, a 43-char refresh token" {
	new_user login
	assert_token_response "$TTL"
	[[ "$(hdr content-type)" == application/json* ]]
	h=$(jwt_part "$ACCESS" 1)
	p=$(jwt_part "$ACCESS" 2)
	echo "header $h payload $p"
	assert_equal "$(jq -r .alg <<<"$h")" HS256
	assert_equal "$(jq -r '.kid | type' <<<"$h")" string
	[ -n "$(jq -r .kid <<<"$h")" ]
	for c in iss aud sub iat nbf exp sv sid role; do
		jq -e --arg c "$c" 'has($c)' <<<"$p" >/dev/null
	done
	assert_equal "$(jq -r .sub <<<"$p")" "$USER_ID"
	assert_equal "$(jq -r '.sub | type' <<<"$p")" string
	assert_equal "$(jq -r .role <<<"$p")" user
	assert_equal "$(jq -r '.exp - .iat' <<<"$p")" "$TTL"
	now=$(date +%s)
	iat=$(jq -r .iat <<<"$p")
	assert_int_between "$iat" $((now - 5)) $((now + 5))
	assert_equal "$(jq -r '.sid | type' <<<"$p")" number
	# A second login is a second session with other tokens.
	a1=$ACCESS r1=$REFRESH
	login "$EMAIL" "$PASSWORD"
	[ "$REFRESH" != "$r1" ]
	[ "$(jwt_part "$ACCESS" 2 | jq .sid)" != "$(jwt_part "$a1" 2 | jq .sid)" ]
}

@test "login: wrong password and unknown email get 401 with the same body apart from request_id" {
	new_user same
	login_req "$EMAIL" "wrong-$RANDOM-password-x" -H 'X-Request-ID: e2e-wrong-password'
	assert_problem 401
	assert_equal "$(json .request_id)" e2e-wrong-password
	a=$(printf '%s' "$body" | jq -cS 'del(.request_id)')
	ha=$(hdr content-type)
	login_req "nobody-$RANDOM$RANDOM@example.com" "$PASSWORD" -H 'X-Request-ID: e2e-unknown-user'
	assert_problem 401
	assert_equal "$(json .request_id)" e2e-unknown-user
	b=$(printf '%s' "$body" | jq -cS 'del(.request_id)')
	echo "wrong password: $a"
	echo "unknown email:  $b"
	assert_equal "$a" "$b"
	assert_equal "$(hdr content-type)" "$ha"
	# And the right password still works (one failure locks nothing).
	login "$EMAIL" "$PASSWORD"
}

@test "login: an unknown email takes as long as a wrong password (medians of 20 within 25 %)" {
	new_user timing
	data_for() { jq -cn --arg e "$1" --arg p "$2" '{email:$e, password:$p}'; }
	t() { curl -sS -o /dev/null -w '%{time_total}\n' -X POST -H 'Content-Type: application/json' --data-binary "$1" "$BASE/auth/login"; }
	wrongpw="not-$RANDOM-the-password"
	remember "$wrongpw"
	good=$(data_for "$EMAIL" "$PASSWORD")
	for i in 1 2 3 4; do # warm every worker up
		t "$(data_for "warm$i-$RANDOM@example.com" "$PASSWORD")" >/dev/null
		t "$good" >/dev/null
	done
	: >"$BATS_TEST_TMPDIR/unknown"
	: >"$BATS_TEST_TMPDIR/wrong"
	for i in $(seq 1 20); do
		t "$(data_for "ghost$i-$RANDOM$RANDOM@example.com" "$wrongpw")" >>"$BATS_TEST_TMPDIR/unknown"
		t "$(data_for "$EMAIL" "$wrongpw")" >>"$BATS_TEST_TMPDIR/wrong"
		# reset the failure count so the lockout never answers instead
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$good" "$BASE/auth/login")
		assert_equal "$code" 200
	done
	mu=$(median <"$BATS_TEST_TMPDIR/unknown")
	mw=$(median <"$BATS_TEST_TMPDIR/wrong")
	echo "median unknown email: ${mu}s, median wrong password: ${mw}s"
	awk -v u="$mu" -v w="$mw" 'BEGIN { d = u - w; if (d < 0) d = -d; exit !(d <= 0.25 * w) }'
}

@test "login lockout: the threshold-th failure locks; then even the right password gets 429 + Retry-After; it expires; success resets the count" {
	new_user lock
	wrong="wrong-$RANDOM-lockout-pw"
	# api.md: failures 1 .. threshold answer 401 (checked); the threshold-th locks
	for i in $(seq 1 "$THRESHOLD"); do
		login_req "$EMAIL" "$wrong"
		echo "failure $i: $status_code"
		assert_problem 401
	done
	login_req "$EMAIL" "$PASSWORD"
	echo "right password while locked: $status_code $(hdr retry-after) $body"
	assert_problem 429
	ra=$(hdr retry-after)
	assert_int_between "$ra" 1 2 # lockout_base = 1s
	sleep "$ra"
	login "$EMAIL" "$PASSWORD"
	# The success reset the count: threshold - 1 new failures lock nothing.
	for i in $(seq 1 $((THRESHOLD - 1))); do
		login_req "$EMAIL" "$wrong"
		assert_problem 401
	done
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
}

@test "login lockout: each further failure is checked again and doubles the lock (1 s, 2 s), up to lockout_max (3 s)" {
	new_user lockexact
	wrong="wrong-$RANDOM-exact-pw"
	for i in $(seq 1 $((THRESHOLD - 1))); do
		login_req "$EMAIL" "$wrong"
		assert_problem 401
	done
	# the threshold-th failure is checked (401) and locks for lockout_base
	login_req "$EMAIL" "$wrong"
	echo "failure $THRESHOLD: $status_code $(hdr retry-after) $body"
	assert_problem 401
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 429
	ra1=$(hdr retry-after)
	echo "first lock: Retry-After $ra1"
	assert_int_between "$ra1" 1 2
	sleep 1.1
	# once it expired, the next failure is checked again and doubles the lock to 2 s
	login_req "$EMAIL" "$wrong"
	assert_problem 401
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 429
	ra2=$(hdr retry-after)
	echo "second lock: Retry-After $ra2"
	assert_int_between "$ra2" 2 3
	[ "$ra2" -gt "$ra1" ]
	sleep 2.1
	# doubling again would give 4 s; lockout_max caps it at 3 s
	login_req "$EMAIL" "$wrong"
	assert_problem 401
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 429
	ra3=$(hdr retry-after)
	echo "third lock: Retry-After $ra3"
	assert_equal "$ra3" 3
}

@test "login: an account locked by an administrator gets 403 problem+json" {
	new_user admlock
	psql_kiln "UPDATE users SET locked = true WHERE id = $USER_ID"
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 403
	psql_kiln "UPDATE users SET locked = false WHERE id = $USER_ID"
	login "$EMAIL" "$PASSWORD"
}

@test "login: missing or unknown fields are 422 naming them" {
	post_json /auth/login '{"email":"someone@example.com"}'
	assert_problem 422
	assert_field_error password
	post_json /auth/login '{"password":"whatever-password-1"}'
	assert_problem 422
	assert_field_error email
	post_json /auth/login '{"email":"someone@example.com","password":"whatever-password-1","remember":true}'
	assert_problem 422
	assert_field_error remember
	post_json /auth/login '{"email":"someone@example.com","password":'
	assert_problem 400
	http POST /auth/login -H 'Content-Type: text/plain' --data-binary '{"email":"someone@example.com","password":"whatever-password-1"}'
	assert_problem 415
}

# ================================================================ me

@test "me: 200 with the user" {
	new_user me
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(json .id)" "$USER_ID"
	assert_equal "$(json .email)" "$EMAIL"
	assert_equal "$(json .display_name)" "Test User"
	assert_equal "$(json .role)" user
	assert_rfc3339 "$(json .created_at)"
	assert_equal "$(json '[keys[]] | sort | join(",")')" "created_at,display_name,email,id,role"
}

@test "me: no token is 401 with WWW-Authenticate: Bearer; a garbage token is 401 invalid_token" {
	http GET /auth/me
	assert_problem 401
	assert_equal "$(hdr www-authenticate)" Bearer
	authed GET /auth/me "garbage.garbage.garbage"
	assert_invalid_token
	authed GET /auth/me "not-a-jwt-at-all"
	assert_invalid_token
	http GET /auth/me -H 'Authorization: Bearer '
	assert_problem 401
	[[ "$(hdr www-authenticate)" == Bearer* ]]
}

@test "every Bearer endpoint: no token is 401 'Bearer', a bad one 401 'Bearer error=\"invalid_token\"'" {
	new_user bearer
	sid=$(jwt_part "$ACCESS" 2 | jq .sid)
	for ep in "POST /auth/logout" "POST /auth/logout-all" "GET /auth/me" "POST /auth/password" \
		"GET /auth/sessions" "DELETE /auth/sessions/$sid" "GET /auth/verify"; do
		read -r method path <<<"$ep"
		http "$method" "$path" -H 'Content-Type: application/json' --data-binary '{}'
		echo "$ep without a token: $status_code '$(hdr www-authenticate)'"
		assert_problem 401
		assert_equal "$(hdr www-authenticate)" Bearer
		authed "$method" "$path" "$ACCESS.x" -H 'Content-Type: application/json' --data-binary '{}'
		echo "$ep with a bad token: $status_code '$(hdr www-authenticate)'"
		assert_invalid_token
	done
	# none of that touched the session
	authed GET /auth/sessions "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(json '.sessions | length')" 1
}

# ================================================================ forged tokens

@test "forged tokens: re-signing with the stack's key reproduces kiln's signature and is accepted (so the attacks below mean something)" {
	new_user craft
	h=$(printf '%s' "$ACCESS" | cut -d. -f1)
	p=$(printf '%s' "$ACCESS" | cut -d. -f2)
	assert_equal "$(sign HS256 "$h.$p")" "$(printf '%s' "$ACCESS" | cut -d. -f3)"
	# A token of our own making with fresh times is accepted too.
	now=$(date +%s)
	payload=$(jwt_part "$ACCESS" 2 | jq -c --argjson n "$now" '.iat = $n | .nbf = $n | .exp = $n + 10')
	tok=$(craft_jwt "$(jwt_part "$ACCESS" 1)" "$payload")
	remember "$tok"
	authed GET /auth/me "$tok"
	assert_equal "$status_code" 200
	assert_equal "$(json .id)" "$USER_ID"
}

@test "forged tokens: expired beyond any leeway, or not yet valid, is 401" {
	new_user exp
	now=$(date +%s)
	hdr_json=$(jwt_part "$ACCESS" 1)
	expired=$(craft_jwt "$hdr_json" "$(jwt_part "$ACCESS" 2 | jq -c --argjson n "$now" '.iat = $n - 3610 | .nbf = $n - 3610 | .exp = $n - 3600')")
	authed GET /auth/me "$expired"
	assert_invalid_token
	future=$(craft_jwt "$hdr_json" "$(jwt_part "$ACCESS" 2 | jq -c --argjson n "$now" '.iat = $n | .nbf = $n + 3600 | .exp = $n + 3610')")
	authed GET /auth/me "$future"
	assert_invalid_token
	# the real one still works
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
}

@test "forged tokens: a payload changed to role admin under the original signature is 401" {
	new_user tamper
	h=$(printf '%s' "$ACCESS" | cut -d. -f1)
	s=$(printf '%s' "$ACCESS" | cut -d. -f3)
	p=$(jwt_part "$ACCESS" 2 | jq -c '.role = "admin"' | b64url)
	authed GET /auth/me "$h.$p.$s"
	assert_invalid_token
	authed GET /auth/verify "$h.$p.$s"
	assert_equal "$status_code" 401
	[ -z "$(hdr x-kiln-role)" ]
	# another user's id under the original signature
	p=$(jwt_part "$ACCESS" 2 | jq -c '.sub = (.sub | tonumber + 1 | tostring)' | b64url)
	authed GET /auth/me "$h.$p.$s"
	assert_invalid_token
}

@test "forged tokens: a changed signature is 401" {
	new_user sig
	hp=$(printf '%s' "$ACCESS" | cut -d. -f1-2)
	s=$(printf '%s' "$ACCESS" | cut -d. -f3)
	# change the first character (the last one may only carry padding bits)
	c=${s:0:1}
	[ "$c" = A ] && n=B || n=A
	authed GET /auth/me "$hp.$n${s:1}"
	assert_invalid_token
	authed GET /auth/me "$hp."
	assert_invalid_token
	authed GET /auth/me "$hp"
	assert_invalid_token
	# a signature made with another key
	head -c 48 /dev/urandom | base64 -w0 >"$BATS_TEST_TMPDIR/other.key"
	other=$(craft_jwt "$(jwt_part "$ACCESS" 1)" "$(jwt_part "$ACCESS" 2)" "$BATS_TEST_TMPDIR/other.key")
	authed GET /auth/me "$other"
	assert_invalid_token
}

@test "forged tokens: alg none (with or without a signature) is 401" {
	new_user none
	p=$(jwt_part "$ACCESS" 2)
	s=$(printf '%s' "$ACCESS" | cut -d. -f3)
	for alg in none None NONE; do
		h=$(jwt_part "$ACCESS" 1 | jq -c --arg a "$alg" '.alg = $a')
		tok=$(craft_jwt "$h" "$p")
		authed GET /auth/me "$tok"
		assert_invalid_token
		authed GET /auth/me "$tok$s"
		assert_invalid_token
	done
}

@test "forged tokens: alg HS512 (correctly signed with the same key) is 401" {
	new_user hs512
	h=$(jwt_part "$ACCESS" 1 | jq -c '.alg = "HS512"')
	tok=$(craft_jwt "$h" "$(jwt_part "$ACCESS" 2)")
	authed GET /auth/me "$tok"
	assert_invalid_token
	# alg is exactly "HS256", not another spelling (signed with SHA-256 all the same)
	authed GET /auth/me "$(craft_jwt "$(jwt_part "$ACCESS" 1 | jq -c '.alg = "hs256"')" "$(jwt_part "$ACCESS" 2)")"
	assert_invalid_token
}

@test "forged tokens: a wrong aud or iss, correctly signed, is 401" {
	new_user aud
	hj=$(jwt_part "$ACCESS" 1)
	authed GET /auth/me "$(craft_jwt "$hj" "$(jwt_part "$ACCESS" 2 | jq -c '.aud = "someone-else"')")"
	assert_invalid_token
	authed GET /auth/me "$(craft_jwt "$hj" "$(jwt_part "$ACCESS" 2 | jq -c '.iss = "someone-else"')")"
	assert_invalid_token
	authed GET /auth/me "$(craft_jwt "$hj" "$(jwt_part "$ACCESS" 2 | jq -c 'del(.aud)')")"
	assert_invalid_token
}

@test "forged tokens: an unknown or missing kid, correctly signed, is 401" {
	new_user kid
	authed GET /auth/me "$(craft_jwt "$(jwt_part "$ACCESS" 1 | jq -c '.kid = "no-such-key"')" "$(jwt_part "$ACCESS" 2)")"
	assert_invalid_token
	authed GET /auth/me "$(craft_jwt "$(jwt_part "$ACCESS" 1 | jq -c 'del(.kid)')" "$(jwt_part "$ACCESS" 2)")"
	assert_invalid_token
}

# ================================================================ refresh

@test "refresh: new tokens; the old token yields the same successor within the grace window" {
	new_user refresh
	a1=$ACCESS r1=$REFRESH
	refresh_req "$r1"
	assert_token_response "$TTL"
	a2=$(json .access_token) r2=$(json .refresh_token)
	[ "$r2" != "$r1" ]
	# same session
	assert_equal "$(jwt_part "$a2" 2 | jq .sid)" "$(jwt_part "$a1" 2 | jq .sid)"
	authed GET /auth/me "$a2"
	assert_equal "$status_code" 200
	assert_equal "$(json .id)" "$USER_ID"
	# presenting the retired one again within refresh_grace: the same successor
	refresh_req "$r1"
	assert_token_response "$TTL"
	assert_equal "$(json .refresh_token)" "$r2"
	# the successor rotates on
	refresh_req "$r2"
	assert_token_response "$TTL"
	r3=$(json .refresh_token)
	[ "$r3" != "$r2" ]
	[ "$r3" != "$r1" ]
	refresh_req "$r3"
	assert_token_response "$TTL"
}

@test "refresh: reusing a retired token after refresh_grace is 401 and revokes the whole session" {
	new_user reuse
	r1=$REFRESH
	refresh_req "$r1"
	assert_token_response "$TTL"
	r2=$(json .refresh_token)
	sleep 2.5 # refresh_grace = 2s
	refresh_req "$r1"
	assert_problem 401
	# the family is gone: the current token of the session fails too
	refresh_req "$r2"
	assert_problem 401
	# the account itself is fine, and the revoked session is no longer listed
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/sessions "$ACCESS"
	assert_equal "$(json '.sessions | length')" 1
	assert_equal "$(json '.sessions[0].current')" true
	refresh_req "$REFRESH"
	assert_token_response "$TTL"
}

@test "refresh: 10 parallel refreshes with one token all get 200 and the same successor, which still works" {
	new_user parallel
	r1=$REFRESH
	data=$(jq -cn --arg t "$r1" '{refresh_token:$t}')
	for i in $(seq 1 10); do
		curl -sS -o "$BATS_TEST_TMPDIR/r$i" -w '%{http_code}' --max-time 20 -X POST \
			-H 'Content-Type: application/json' --data-binary "$data" "$BASE/auth/refresh" >"$BATS_TEST_TMPDIR/c$i" &
	done
	wait
	for i in $(seq 1 10); do
		echo "refresh $i: $(cat "$BATS_TEST_TMPDIR/c$i") $(cat "$BATS_TEST_TMPDIR/r$i")"
		remember "$(jq -r '.refresh_token // empty' "$BATS_TEST_TMPDIR/r$i")" "$(jq -r '.access_token // empty' "$BATS_TEST_TMPDIR/r$i")"
	done
	for i in $(seq 1 10); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/c$i")" 200
	done
	n=$(cat "$BATS_TEST_TMPDIR"/r[0-9]* | jq -r .refresh_token | sort -u | wc -l)
	assert_equal "$n" 1
	r2=$(jq -r .refresh_token "$BATS_TEST_TMPDIR/r1")
	[[ "$r2" =~ ^[A-Za-z0-9_-]{43}$ ]]
	[ "$r2" != "$r1" ]
	# every access token handed out works: nobody was signed out
	for i in $(seq 1 10); do
		authed GET /auth/me "$(jq -r .access_token "$BATS_TEST_TMPDIR/r$i")"
		assert_equal "$status_code" 200
	done
	refresh_req "$r2"
	assert_token_response "$TTL"
	refresh_req "$(json .refresh_token)"
	assert_token_response "$TTL"
}

@test "refresh: an expired refresh token is 401" {
	new_user rexp
	sid=$(jwt_part "$ACCESS" 2 | jq .sid)
	# refresh_ttl is 30 days; age this session's token and session instead
	psql_kiln "UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE session_id = $sid;
	           UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = $sid"
	refresh_req "$REFRESH"
	assert_problem 401
	# another session of the same user is unaffected
	login "$EMAIL" "$PASSWORD"
	refresh_req "$REFRESH"
	assert_token_response "$TTL"
}

@test "refresh: an unknown token is 401; a missing or mistyped field is 422" {
	refresh_req "$(openssl rand 32 | b64url)"
	assert_problem 401
	post_json /auth/refresh '{}'
	assert_problem 422
	assert_field_error refresh_token
	post_json /auth/refresh '{"refresh_token":12345}'
	assert_problem 422
	assert_field_error refresh_token
}

# ================================================================ logout

@test "logout: 204; that session's access and refresh tokens are dead at once, even a refresh token inside the grace window; other sessions live on" {
	new_user logout
	a1=$ACCESS r1=$REFRESH
	# rotate once: r1 is retired but still inside refresh_grace
	refresh_req "$r1"
	assert_token_response "$TTL"
	r1b=$(json .refresh_token)
	login "$EMAIL" "$PASSWORD"
	r2=$REFRESH
	authed POST /auth/logout "$a1"
	assert_equal "$status_code" 204
	assert_equal "$body" ""
	authed GET /auth/me "$a1"
	assert_problem 401
	refresh_req "$r1b"
	assert_problem 401
	refresh_req "$r1"
	assert_problem 401
	refresh_req "$r2"
	assert_token_response "$TTL"
	a2=$(json .access_token)
	authed GET /auth/sessions "$a2"
	assert_equal "$(json '.sessions | length')" 1
	[ "$(json '.sessions[0].id')" != "$(jwt_part "$a1" 2 | jq .sid)" ]
	http POST /auth/logout
	assert_problem 401
	assert_equal "$(hdr www-authenticate)" Bearer
}

@test "logout-all: 204; access tokens issued before are 401 at once, every session's refresh token is dead" {
	new_user logoutall
	a1=$ACCESS r1=$REFRESH
	login "$EMAIL" "$PASSWORD"
	a2=$ACCESS r2=$REFRESH
	login "$EMAIL" "$PASSWORD"
	a3=$ACCESS r3=$REFRESH
	# r3 retired but inside refresh_grace when logout-all comes
	refresh_req "$r3"
	assert_token_response "$TTL"
	r3b=$(json .refresh_token)
	# warm whatever caches the session version
	for a in "$a1" "$a2" "$a3"; do
		authed GET /auth/me "$a"
		assert_equal "$status_code" 200
	done
	authed POST /auth/logout-all "$a2"
	assert_equal "$status_code" 204
	assert_equal "$body" ""
	for a in "$a1" "$a2" "$a3"; do
		authed GET /auth/me "$a"
		assert_invalid_token
		authed GET /auth/verify "$a"
		assert_equal "$status_code" 401
	done
	for r in "$r1" "$r2" "$r3" "$r3b"; do
		refresh_req "$r"
		assert_problem 401
	done
	# signing in again works; only the new session is listed
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	authed GET /auth/sessions "$ACCESS"
	assert_equal "$(json '.sessions | length')" 1
}

# ================================================================ password

@test "password change: wrong current is 422 current_password 'is incorrect'; a weak new one is 422 new_password" {
	new_user pwbad
	newpw=$(new_password)
	authed POST /auth/password "$ACCESS" -H 'Content-Type: application/json' \
		--data-binary "$(jq -cn --arg n "$newpw" '{current_password:"not-the-current-one", new_password:$n}')"
	assert_problem 422
	assert_field_error current_password
	assert_equal "$(json '.errors[] | select(.field == "current_password") | .reason')" "is incorrect"
	remember not-the-current-one
	for weak in short-pw11 password1234 "$(openssl rand -base64 1200 | tr -d '\n' | head -c 1025)"; do
		remember "$weak"
		authed POST /auth/password "$ACCESS" -H 'Content-Type: application/json' \
			--data-binary "$(jq -cn --arg c "$PASSWORD" --arg n "$weak" '{current_password:$c, new_password:$n}')"
		echo "new password of ${#weak} bytes: $status_code $body" | cut -c1-300
		assert_problem 422
		assert_field_error new_password
	done
	authed POST /auth/password "$ACCESS" -H 'Content-Type: application/json' --data-binary '{"current_password":"x"}'
	assert_problem 422
	assert_field_error new_password
	http POST /auth/password -H 'Content-Type: application/json' \
		--data-binary "$(jq -cn --arg c "$PASSWORD" --arg n "$newpw" '{current_password:$c, new_password:$n}')"
	assert_problem 401
	# nothing changed
	login "$EMAIL" "$PASSWORD"
}

@test "password change: 200 with a working access token; other sessions are revoked; only the new password signs in" {
	new_user pwok
	a1=$ACCESS r1=$REFRESH
	login "$EMAIL" "$PASSWORD"
	a2=$ACCESS r2old=$REFRESH
	# the other session's r2old is retired but inside refresh_grace when the password changes
	refresh_req "$r2old"
	assert_token_response "$TTL"
	a2=$(json .access_token) r2=$(json .refresh_token)
	authed GET /auth/me "$a2"
	assert_equal "$status_code" 200
	newpw=$(new_password)
	authed POST /auth/password "$a1" -H 'Content-Type: application/json' \
		--data-binary "$(jq -cn --arg c "$PASSWORD" --arg n "$newpw" '{current_password:$c, new_password:$n}')"
	assert_equal "$status_code" 200
	remember_tokens
	assert_equal "$(json .token_type)" Bearer
	assert_equal "$(json .expires_in)" "$TTL"
	assert_equal "$(json '[keys[]] | sort | join(",")')" "access_token,expires_in,token_type"
	fresh=$(json .access_token)
	# a token for this same session
	assert_equal "$(jwt_part "$fresh" 2 | jq .sid)" "$(jwt_part "$a1" 2 | jq .sid)"
	authed GET /auth/me "$fresh"
	assert_equal "$status_code" 200
	assert_equal "$(json .id)" "$USER_ID"
	authed GET /auth/sessions "$fresh"
	assert_equal "$(json '.sessions | length')" 1
	assert_equal "$(json '.sessions[0].id')" "$(jwt_part "$a1" 2 | jq .sid)"
	# the other session: access and refresh token rejected
	authed GET /auth/me "$a2"
	assert_invalid_token
	refresh_req "$r2"
	assert_problem 401
	refresh_req "$r2old"
	assert_problem 401
	# this session goes on
	refresh_req "$r1"
	assert_token_response "$TTL"
	# old password no more, new password yes
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 401
	login "$EMAIL" "$newpw"
}

# ================================================================ sessions

@test "sessions: lists the active sessions newest first, exactly one current" {
	new_user sessions
	login "$EMAIL" "$PASSWORD" -A 'kiln-e2e-agent/2'
	# the address is the client's (REMOTE_ADDR), not a header it sends
	login "$EMAIL" "$PASSWORD" -A 'kiln-e2e-agent/3' -H 'X-Forwarded-For: 198.51.100.7' -H 'X-Real-IP: 198.51.100.8'
	sid=$(jwt_part "$ACCESS" 2 | jq .sid)
	authed GET /auth/sessions "$ACCESS"
	assert_equal "$status_code" 200
	echo "$body"
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(json '.sessions | length')" 3
	assert_equal "$(json '[.sessions[] | select(.current == true)] | length')" 1
	assert_equal "$(json '[.sessions[] | select(.current == false)] | length')" 2
	assert_equal "$(json '.sessions[] | select(.current) | .id')" "$sid"
	assert_equal "$(json '.sessions[0].user_agent')" 'kiln-e2e-agent/3'
	assert_equal "$(json '.sessions[1].user_agent')" 'kiln-e2e-agent/2'
	assert_equal "$(json '[.sessions[].id] == ([.sessions[].id] | sort | reverse)')" true
	for i in 0 1 2; do
		assert_equal "$(json ".sessions[$i] | [keys[]] | sort | join(\",\")")" "created_at,current,expires_at,id,ip,last_used_at,user_agent"
		assert_equal "$(json ".sessions[$i].id | type")" number
		assert_equal "$(json ".sessions[$i].ip")" 127.0.0.1
		for f in created_at last_used_at expires_at; do
			assert_rfc3339 "$(json ".sessions[$i].$f")"
		done
		# refresh_ttl is 30 days
		exp=$(date -u -d "$(json ".sessions[$i].expires_at")" +%s)
		[ "$exp" -gt $(($(date +%s) + 29 * 86400)) ]
	done
	http GET /auth/sessions
	assert_problem 401
}

@test "sessions: DELETE of another own session is 204 and kills its refresh token; again is 404" {
	new_user sessdel
	a1=$ACCESS r1=$REFRESH
	sid1=$(jwt_part "$a1" 2 | jq .sid)
	login "$EMAIL" "$PASSWORD"
	a2=$ACCESS
	authed DELETE "/auth/sessions/$sid1" "$a2"
	assert_equal "$status_code" 204
	assert_equal "$body" ""
	refresh_req "$r1"
	assert_problem 401
	authed GET /auth/sessions "$a2"
	assert_equal "$(json '.sessions | length')" 1
	assert_equal "$(json '.sessions[0].current')" true
	authed DELETE "/auth/sessions/$sid1" "$a2"
	assert_problem 404
	authed DELETE "/auth/sessions/999999999" "$a2"
	assert_problem 404
	# the current session is one of yours too
	r2=$REFRESH
	sid2=$(jwt_part "$a2" 2 | jq .sid)
	authed DELETE "/auth/sessions/$sid2" "$a2"
	assert_equal "$status_code" 204
	refresh_req "$r2"
	assert_problem 401
}

@test "sessions: DELETE of another user's session is 404 and leaves it alone" {
	new_user victim
	victim_refresh=$REFRESH
	victim_sid=$(jwt_part "$ACCESS" 2 | jq .sid)
	new_user attacker
	authed DELETE "/auth/sessions/$victim_sid" "$ACCESS"
	assert_problem 404
	refresh_req "$victim_refresh"
	assert_token_response "$TTL"
}

# ================================================================ verify

@test "verify: a valid token is 200 with an empty body and X-Kiln-User-Id, X-Kiln-Role" {
	new_user verify
	authed GET /auth/verify "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$body" ""
	assert_equal "$(hdr x-kiln-user-id)" "$USER_ID"
	assert_equal "$(hdr x-kiln-role)" user
	assert_equal "$(hdr_count x-kiln-user-id)" 1
	# the role is the account's
	psql_kiln "UPDATE users SET role = 'author' WHERE id = $USER_ID"
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/verify "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(hdr x-kiln-user-id)" "$USER_ID"
	assert_equal "$(hdr x-kiln-role)" author
	authed GET /auth/me "$ACCESS"
	assert_equal "$(json .role)" author
}

@test "nginx: /admin/api/ is guarded by auth_request on /auth/verify" {
	new_user admin-guard
	# no token, a garbage token: nginx answers 401 before kiln-admin is asked
	http GET /admin/api/users
	assert_equal "$status_code" 401
	http GET /admin/api/users -H "Authorization: Bearer not.a.token"
	assert_equal "$status_code" 401
	# a valid token passes the guard (kiln-admin itself is not part of this
	# stack, so nginx then fails to reach it: anything but 401/403)
	http GET /admin/api/users -H "Authorization: Bearer $ACCESS"
	[ "$status_code" != 401 ] && [ "$status_code" != 403 ]
	# a client cannot smuggle its own identity headers past the guard
	grep -q 'fastcgi_param HTTP_X_KILN_USER_ID $kiln_user_id' "$STACK/nginx/site.conf"
}

@test "verify: no token, a garbage token or an expired one is 401" {
	new_user verifybad
	http GET /auth/verify
	assert_equal "$status_code" 401
	[ -z "$(hdr x-kiln-user-id)" ]
	authed GET /auth/verify "garbage.garbage.garbage"
	assert_equal "$status_code" 401
	[ -z "$(hdr x-kiln-user-id)" ]
	now=$(date +%s)
	expired=$(craft_jwt "$(jwt_part "$ACCESS" 1)" "$(jwt_part "$ACCESS" 2 | jq -c --argjson n "$now" '.iat = $n - 3610 | .nbf = $n - 3610 | .exp = $n - 3600')")
	authed GET /auth/verify "$expired"
	assert_equal "$status_code" 401
	[ -z "$(hdr x-kiln-user-id)" ]
}

# ================================================================ Redis down, re-hash, per-address limit (keep last)

@test "Redis down: register, login and refresh still work (the per-address limit falls back in-process)" {
	new_user redis
	touch "$BATS_FILE_TMPDIR/redis-stopped"
	stack stop redis
	register_user "$(new_email redisdown)" "$PASSWORD"
	login "$EMAIL" "$PASSWORD"
	refresh_req "$REFRESH"
	assert_token_response "$TTL"
	stack start redis
	rm -f "$BATS_FILE_TMPDIR/redis-stopped"
	login "$EMAIL" "$PASSWORD"
}

@test "logout-all while Redis stalls: the old access tokens stay rejected once Redis answers again" {
	# api.md: logout-all rejects every access token issued so far. Redis only
	# caches session versions (DESIGN.md §6: losing it costs speed, never
	# correctness), so a stall must not bring a revoked token back.
	new_user stall
	a1=$ACCESS
	login "$EMAIL" "$PASSWORD"
	a2=$ACCESS
	for i in 1 2 3 4; do # every worker has seen (and cached) the session version
		authed GET /auth/me "$a1"
		assert_equal "$status_code" 200
	done
	pid=$(cat "$STACK/pid/redis.pid")
	touch "$BATS_FILE_TMPDIR/redis-paused"
	kill -STOP "$pid"
	authed POST /auth/logout-all "$a2"
	assert_equal "$status_code" 204
	authed GET /auth/me "$a1"
	echo "while Redis stalls: $status_code"
	assert_invalid_token
	kill -CONT "$pid"
	rm -f "$BATS_FILE_TMPDIR/redis-paused"
	wait_until 5 bash -c "redis-cli -s '$STACK/sock/redis.sock' ping | grep -q PONG"
	for i in 1 2 3 4 5 6 7 8; do
		authed GET /auth/me "$a1"
		echo "Redis back, try $i: $status_code"
		assert_invalid_token
	done
}

@test "login re-hashes the password when the Argon2id parameters changed" {
	new_user rehash
	stored_hash() { psql_kiln "SELECT password_hash FROM users WHERE id = $USER_ID"; }
	# shellcheck disable=SC2016 # literal $
	[[ "$(stored_hash)" == '$argon2id$v=19$m=8192,t=1,p=1$'* ]]
	grep -q '^argon2_iterations = 1$' "$STACK/kiln.conf"
	reload_auth 's/^argon2_iterations = 1$/argon2_iterations = 2/'
	login "$EMAIL" "$PASSWORD"
	echo "hash after: $(stored_hash | cut -d'$' -f1-4)"
	# shellcheck disable=SC2016 # literal $
	[[ "$(stored_hash)" == '$argon2id$v=19$m=8192,t=2,p=1$'* ]]
	login "$EMAIL" "$PASSWORD"
	login_req "$EMAIL" "wrong-$RANDOM-rehash-pw"
	assert_problem 401
}


@test "login: more than lockout_hourly_limit failures in an hour lock the account for the rest of the hour" {
	new_user hourly
	reload_auth 's/^lockout_hourly_limit = 1000$/lockout_hourly_limit = 4/'
	wrong="wrong-$RANDOM-hourly-pw"
	failures=0
	for i in $(seq 1 12); do
		login_req "$EMAIL" "$wrong"
		ra=$(hdr retry-after)
		echo "try $i: $status_code Retry-After '$ra' after $failures failures"
		if [ "$status_code" = 401 ]; then
			failures=$((failures + 1))
		else
			assert_problem 429
			[ "$ra" -gt 60 ] && break
			sleep "$ra"
		fi
	done
	# the fifth failure (more than 4) locked it for the rest of the hour
	assert_equal "$failures" 5
	assert_int_between "$ra" 3000 3600
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 429
	assert_int_between "$(hdr retry-after)" 3000 3600
}

@test "per client address: past ip_burst, login, register and refresh answer 429 problem+json with Retry-After" {
	new_user iplimit
	conf=$STACK/kiln.conf
	grep -q '^ip_rate = 1000$' "$conf"
	grep -q '^ip_burst = 1000$' "$conf"
	reload_auth 's/^ip_rate = 1000$/ip_rate = 3/; s/^ip_burst = 1000$/ip_burst = 3/'
	grep -q '^ip_rate = 3$' "$conf"
	# hit_until_429 CMD...: at most 6 tries; the burst is 3.
	hit_until_429() {
		local i
		for i in 1 2 3 4 5 6; do
			"$@"
			echo "try $i: $status_code"
			[ "$status_code" = 429 ] && return 0
		done
		return 1
	}
	# an unknown email: no account lockout can answer instead
	hit_until_429 login_req "nobody-$RANDOM$RANDOM@example.com" "$PASSWORD"
	assert_problem 429
	ra=$(hdr retry-after)
	echo "Retry-After: $ra"
	assert_int_between "$ra" 1 60
	# even the right password: the address is limited, not the account
	login_req "$EMAIL" "$PASSWORD"
	assert_problem 429
	# and not by a header the client chooses
	login_req "$EMAIL" "$PASSWORD" -H "X-Forwarded-For: 203.0.113.$((RANDOM % 250 + 1))" -H 'X-Real-IP: 203.0.113.77'
	assert_problem 429
	hit_until_429 post_json /auth/register "$(jq -cn --arg e "$(new_email ip)" --arg p "$PASSWORD" '{email:$e, password:$p, display_name:"IP"}')"
	assert_problem 429
	[[ "$(hdr retry-after)" =~ ^[0-9]+$ ]]
	hit_until_429 refresh_req "$REFRESH"
	assert_problem 429
	[[ "$(hdr retry-after)" =~ ^[0-9]+$ ]]
	# authenticated endpoints are not limited per address
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
}

# ================================================================ logs (keep last)

@test "no log holds a password, a token, the signing key or an Authorization value" {
	logs=$STACK/log
	# the logs are there and carry request lines, so finding nothing means something
	[ -s "$logs/auth.log" ]
	grep -q '"request_id"' "$logs/auth.log"
	[ -s "$logs/nginx-access.log" ]
	patterns=$BATS_TEST_TMPDIR/patterns
	sort -u "$BATS_FILE_TMPDIR/secrets" | grep -v '^$' >"$patterns"
	# JWT signatures alone, in case a token was logged cut up
	grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{40,}$' "$patterns" | cut -d. -f3 >"$patterns.sig" || true
	cat "$patterns.sig" >>"$patterns"
	# the key itself, when it is text (a binary one is checked in hex)
	if LC_ALL=C grep -qv '[^[:print:]]' "$STACK/secrets/jwt.key" && [ "$(wc -l <"$STACK/secrets/jwt.key")" -le 1 ]; then
		tr -d '\r\n' <"$STACK/secrets/jwt.key" >>"$patterns"
		echo >>"$patterns"
	fi
	jwt_key_hex >>"$patterns"
	# no pattern so short it could match by chance
	awk 'length($0) < 10 { print "short secret: " $0 > "/dev/stderr"; bad = 1 } END { exit bad }' "$patterns"
	echo "$(wc -l <"$patterns") secrets; logs: $(ls "$logs")"
	[ "$(wc -l <"$patterns")" -gt 100 ]
	run grep -rnoF -f "$patterns" "$logs"
	echo "$output" | cut -c1-300
	assert_failure 1
	run grep -rniE 'bearer +[A-Za-z0-9._~+/=-]{8,}' "$logs"
	echo "$output" | cut -c1-300
	assert_failure 1
}
