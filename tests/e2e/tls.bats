#!/usr/bin/env bats
# shellcheck disable=SC2154 # status_code, body, headers: set by the helpers
# The production nginx site (nginx/kiln.conf) with TLS, on loopback: the
# stack renders the whole file — the port-80 server (ACME webroot, 308 to
# https) on KILN_REDIRECT_PORT, the TLS server on KILN_HTTPS_PORT with a
# self-signed certificate for kiln.test, and the production request rates
# (KILN_NGINX_LIMITS=production). Requests go to https://kiln.test:PORT
# through curl --resolve / --cacert (a .curlrc in CURL_HOME, so the auth
# helpers work unchanged).

setup_file() {
	load helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[auth]
	argon2_memory = 8M
	argon2_iterations = 1
	CONF
	HTTPS_PORT=$(free_port)
	REDIRECT_PORT=$(free_port)
	KILN_HTTPS_PORT=$HTTPS_PORT KILN_REDIRECT_PORT=$REDIRECT_PORT KILN_NGINX_LIMITS=production \
		KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up health auth api metrics
	: >"$BATS_FILE_TMPDIR/secrets"
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
	HTTPS_PORT=$(. "$STACK/stack.env" && echo "$KILN_HTTPS_PORT")
	REDIRECT_PORT=$(. "$STACK/stack.env" && echo "$KILN_REDIRECT_PORT")
	BASE=https://kiln.test:$HTTPS_PORT
	CA=$STACK/tls/fullchain.pem
	export CURL_HOME=$BATS_FILE_TMPDIR/curl
	mkdir -p "$CURL_HOME"
	printf 'resolve = "kiln.test:%s:127.0.0.1"\ncacert = "%s"\n' "$HTTPS_PORT" "$CA" \
		>"$CURL_HOME/.curlrc"
}

# Directive names of an nginx file, comments and blank lines dropped,
# without the [::] listens (loopback has no IPv6 listen in the stack).
directives() {
	sed -e 's/#.*//' "$1" | grep -v '^[[:space:]]*$' | grep -v 'listen[[:space:]]*\[::\]' |
		awk '{ print $1 }'
}

@test "nginx -t passes on the whole production site, rendered with only its paths and ports moved" {
	run nginx -t -c "$STACK/nginx/nginx.conf" -p "$STACK/nginx/" -e "$STACK/log/nginx-error.log"
	echo "$output"
	assert_success
	assert_output --partial "test is successful"
	# Every directive of kiln.conf and of every snippet is in the rendering,
	# in order: nothing dropped or added (the stack's test server comes after).
	sed '/^# The local stack.s test server/,$d' "$STACK/nginx/site.conf" >"$BATS_TEST_TMPDIR/site"
	diff <(directives "$REPO/nginx/kiln.conf") <(directives "$BATS_TEST_TMPDIR/site")
	for f in "$REPO"/nginx/snippets/*.conf; do
		diff <(directives "$f") <(directives "$STACK/nginx/snippets/${f##*/}")
	done
	# Production rates, production TLS: the values themselves are kept.
	grep -q 'limit_req_zone $binary_remote_addr zone=kiln_login:10m rate=1r/s;' "$STACK/nginx/site.conf"
	grep -q "listen 127.0.0.1:$HTTPS_PORT ssl http2;" "$STACK/nginx/site.conf"
	cmp "$REPO/nginx/snippets/kiln-tls.conf" "$STACK/nginx/snippets/kiln-tls.conf"
}

@test "smoke over TLS: health, register, login, me with the token, an api read" {
	http GET /health/ready
	assert_equal "$status_code" 200
	assert_equal "$(json .status)" pass
	[[ ${headers,,} == "http/2 200"* ]] # http2 on the TLS listener
	EMAIL=$(new_email tls)
	PASSWORD=$(new_password)
	register_user "$EMAIL" "$PASSWORD"
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(json .email)" "$EMAIL"
	http GET '/api/v1/exercises?limit=5'
	assert_equal "$status_code" 200
	[ "$(json '.items | type')" = array ]
}

@test "the certificate served is the stack's kiln.test certificate, verified by curl" {
	run curl -sS -o /dev/null -w '%{ssl_verify_result} %{http_version}' "$BASE/health/live"
	assert_success
	assert_output "0 2"
	# Without --cacert the self-signed certificate is refused.
	run curl -q -sS -o /dev/null --resolve "kiln.test:$HTTPS_PORT:127.0.0.1" "$BASE/health/live"
	assert_failure
}

@test "plain HTTP: 308 to https for every path and method, ACME challenge files served as they are" {
	local r=http://127.0.0.1:$REDIRECT_PORT
	BASE=$r
	http GET '/api/v1/exercises?limit=2' -H 'Host: kiln.test'
	assert_equal "$status_code" 308
	assert_equal "$(hdr location)" 'https://kiln.test/api/v1/exercises?limit=2'
	http POST /auth/login -H 'Host: kiln.test' -H 'Content-Type: application/json' --data-binary '{}'
	assert_equal "$status_code" 308
	assert_equal "$(hdr location)" https://kiln.test/auth/login
	http GET / -H 'Host: kiln.test'
	assert_equal "$status_code" 308
	assert_equal "$(hdr location)" https://kiln.test/
	# No HSTS over plain HTTP (browsers ignore it there), the other headers yes.
	assert_equal "$(hdr_count strict-transport-security)" 0
	assert_equal "$(hdr x-content-type-options)" nosniff
	# The ACME webroot: a token file is served over HTTP, not redirected.
	mkdir -p "$STACK/acme/.well-known/acme-challenge"
	printf 'tok-%s.thumb\n' "$RANDOM" >"$STACK/acme/.well-known/acme-challenge/tok123"
	http GET /.well-known/acme-challenge/tok123 -H 'Host: kiln.test'
	assert_equal "$status_code" 200
	assert_equal "$body" "$(cat "$STACK/acme/.well-known/acme-challenge/tok123")"
	[[ $(hdr content-type) == text/plain* ]]
	http GET /.well-known/acme-challenge/missing -H 'Host: kiln.test'
	assert_equal "$status_code" 404
	[[ $(hdr content-type) == application/problem+json* ]]
	# Outside the webroot location nothing of the webroot is served.
	printf 'secret\n' >"$STACK/acme/private.txt"
	http GET /private.txt -H 'Host: kiln.test'
	assert_equal "$status_code" 308
}

@test "HSTS and the security headers on every response over TLS, errors included" {
	http GET /health/live
	assert_equal "$status_code" 200
	assert_security_headers
	assert_equal "$(hdr_count x-request-id)" 1
	http GET /nowhere # nginx's own 404
	assert_equal "$status_code" 404
	[[ $(hdr content-type) == application/problem+json* ]]
	assert_security_headers
	http GET /auth/me # the app's 401
	assert_equal "$status_code" 401
	assert_security_headers
	http GET /api/v1/exercises/999999999 # the app's 404
	assert_equal "$status_code" 404
	assert_security_headers
	head -c $((9 << 20)) /dev/zero >"$BATS_TEST_TMPDIR/big"
	http POST /auth/register -H 'Content-Type: application/json' --data-binary @"$BATS_TEST_TMPDIR/big"
	assert_equal "$status_code" 413 # nginx's client_max_body_size
	[[ $(hdr content-type) == application/problem+json* ]]
	assert_security_headers
	http GET /admin/ # the dashboard's own header set
	assert_security_headers
	http GET /health/live -H 'X-Request-ID: tls-e2e-1'
	assert_equal "$(hdr x-request-id)" tls-e2e-1
}

@test "TLS 1.0 and 1.1 are refused by the server, 1.2 and 1.3 accepted" {
	local ss=$STACK/tls/selfsigned sp port
	# Control: this openssl client does speak TLS 1.0 and 1.1 to a server
	# that allows them, so a refusal below comes from nginx.
	port=$(free_port)
	openssl s_server -accept "127.0.0.1:$port" -cert "$ss/cert.pem" -key "$ss/key.pem" \
		-cipher 'DEFAULT:@SECLEVEL=0' -www </dev/null >/dev/null 2>&1 &
	sp=$!
	wait_until 5 bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null
	for v in tls1 tls1_1; do
		run timeout 10 openssl s_client -connect "127.0.0.1:$port" "-$v" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null
		[ "$status" -eq 0 ] || kill "$sp"
		assert_success
		assert_output --regexp 'New, TLSv1\.[01], Cipher is ECDHE'
	done
	kill "$sp"
	for v in tls1 tls1_1; do
		run timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test "-$v" \
			-cipher 'DEFAULT:@SECLEVEL=0' </dev/null
		echo "$v: $output" | grep -E 'alert|New,'
		assert_failure
		assert_output --partial 'alert protocol version'
	done
	for v in tls1_2 tls1_3; do
		run timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test "-$v" \
			-CAfile "$CA" -verify_return_error </dev/null
		assert_success
		assert_output --regexp "New, TLSv1\\.[23], Cipher is (ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)|TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256))"
		assert_output --partial 'Verify return code: 0 (ok)'
	done
	# No CBC or non-forward-secret cipher is offered with TLS 1.2.
	run timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test -tls1_2 \
		-cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-GCM-SHA256' </dev/null
	assert_failure
}

@test "limit_req: a burst of sign-ins from one address gets 429 problem+json from nginx" {
	local url=$BASE/auth/login n=30 t0 t1 passed limited
	local -a urls=()
	for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "$url"); done
	t0=$SECONDS
	run curl -s -w '%{http_code}\n' -H 'Content-Type: application/json' \
		--data-binary '{}' "${urls[@]}"
	t1=$SECONDS
	echo "$output" | sort | uniq -c
	limited=$(grep -c '^429$' <<<"$output" || true)
	passed=$(grep -c '^422$' <<<"$output" || true)
	assert_equal $((limited + passed)) "$n"
	# rate=1r/s, burst=10: at most 1 + 10 + one a second get through.
	[ "$passed" -le $((11 + t1 - t0 + 1)) ]
	[ "$limited" -ge 1 ]
	# The 429 is nginx's: problem+json from kiln-errors.conf, with the
	# headers, and nginx's log names the zone.
	http POST /auth/login -H 'Content-Type: application/json' --data-binary '{}' -H 'X-Request-ID: tls-limit-1'
	assert_equal "$status_code" 429
	[[ $(hdr content-type) == application/problem+json* ]]
	assert_equal "$(json .status)" 429
	assert_equal "$(json .title)" "Too Many Requests"
	assert_equal "$(json .request_id)" tls-limit-1
	assert_security_headers
	grep -q 'limiting requests, excess: .* by zone "kiln_login"' "$STACK/log/nginx-error.log"
	# Another location is not in that zone.
	http GET /health/live
	assert_equal "$status_code" 200
}

@test "limit_req: a burst of api requests gets 429 from nginx's kiln_api zone" {
	local n=150 limited
	local -a urls=()
	for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "$BASE/api/v1/exercises/999999999"); done
	# Parallel on one HTTP/2 connection: all of them arrive within well
	# under a second, whatever the machine's load (rate=20r/s, burst=50).
	run curl -s --no-progress-meter --parallel --parallel-max 50 -w '%{http_code}\n' "${urls[@]}"
	echo "$output" | sort | uniq -c
	limited=$(grep -c '^429$' <<<"$output" || true)
	[ "$limited" -ge 1 ]
	assert_equal $((limited + $(grep -c '^404$' <<<"$output"))) "$n"
	grep -q 'limiting requests, excess: .* by zone "kiln_api"' "$STACK/log/nginx-error.log"
}
