#!/usr/bin/env bats
# shellcheck disable=SC2154 # status_code, body, headers: set by the helpers
# The Apache site (apache/kiln.conf) in front of a stack's app sockets: a real
# apache2 started as an ordinary process (-f a config in a private dir, its
# own PidFile, loopback ports) with the site rendered by moving only its
# paths, ports and host name. Health, auth and api smoke tests go through
# its TLS virtual host (https://kiln.test:PORT, curl --resolve/--cacert).
#
# As root, Apache's workers must run as some other user: they run as
# `postgres`, which already shares the stack's socket directory (see
# scripts/stack), and the app sockets get its group — in production they
# are group www-data (systemd/kiln@.socket).

APACHE_MODULES="mpm_event authz_core authz_host headers unique_id setenvif mime alias dir
rewrite ssl socache_shmcb http2 proxy proxy_fcgi"

setup_file() {
	load helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[auth]
	argon2_memory = 8M
	argon2_iterations = 1
	CONF
	KILN_HTTPS_PORT=$(free_port) KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" \
		stack_up health auth api metrics
	: >"$BATS_FILE_TMPDIR/secrets"
	apache_up
}

teardown_file() {
	load helpers
	stack_attach
	apache_down
	stack_down
}

setup() {
	load helpers
	load auth-helpers
	load api-helpers
	stack_attach
	A=$BATS_FILE_TMPDIR/apache
	A_HTTPS=$(cat "$A/https_port")
	A_HTTP=$(cat "$A/http_port")
	BASE=https://kiln.test:$A_HTTPS
	export CURL_HOME=$A/curl
}

# The site with its paths, ports and host name moved to this stack ($1 = out).
render_site() {
	sed -e "s#<VirtualHost \*:80>#<VirtualHost 127.0.0.1:$A_HTTP>#" \
		-e "s#<VirtualHost \*:443>#<VirtualHost 127.0.0.1:$A_HTTPS>#" \
		-e "s#unix:/run/kiln/#unix:$STACK/sock/#g" \
		-e "s#/etc/kiln/tls/#$STACK/tls/#g" \
		-e "s#/var/www/kiln-acme#$STACK/acme#g" \
		-e "s#/usr/local/share/kiln/www/#$REPO/www/#g" \
		-e "s#kiln\.example\.com#kiln.test#g" \
		"$REPO/apache/kiln.conf" >"$1"
}

apache_up() {
	A=$BATS_FILE_TMPDIR/apache
	mkdir -p "$A/run" "$A/log" "$A/curl" "$STACK/acme"
	A_HTTP=$(free_port)
	A_HTTPS=$(free_port)
	echo "$A_HTTP" >"$A/http_port"
	echo "$A_HTTPS" >"$A/https_port"
	render_site "$A/site.conf"
	{
		echo "# apache.bats: a private Apache for the stack in $STACK"
		echo "ServerRoot $A"
		echo "ServerName kiln.test"
		echo "PidFile $A/run/apache2.pid"
		echo "DefaultRuntimeDir $A/run"
		echo "Mutex file:$A/run default"
		echo "ErrorLog $A/log/error.log"
		echo "LogLevel warn"
		echo "Define APACHE_LOG_DIR $A/log"
		echo "Listen 127.0.0.1:$A_HTTP"
		echo "Listen 127.0.0.1:$A_HTTPS https"
		if ((EUID == 0)); then
			echo "User postgres"
			echo "Group postgres"
		fi
		for m in $APACHE_MODULES; do
			echo "LoadModule ${m}_module /usr/lib/apache2/modules/mod_$m.so"
		done
		echo "TypesConfig /etc/mime.types"
		echo "SSLSessionCache shmcb:$A/run/ssl_scache(512000)"
		echo "Include $A/site.conf"
	} >"$A/apache2.conf"
	if ((EUID == 0)); then
		chgrp postgres "$STACK"/sock/{health,auth,api,metrics}.sock
	fi
	printf 'resolve = "kiln.test:%s:127.0.0.1"\ncacert = "%s"\n' "$A_HTTPS" "$STACK/tls/fullchain.pem" \
		>"$A/curl/.curlrc"
	timeout 20 apache2 -f "$A/apache2.conf" -k start || {
		cat "$A/log/error.log" >&3
		return 1
	}
	wait_until 10 curl -q -sk -o /dev/null --resolve "kiln.test:$A_HTTPS:127.0.0.1" \
		"https://kiln.test:$A_HTTPS/health/live" || {
		cat "$A/log/error.log" >&3
		return 1
	}
}

apache_down() {
	local pid
	A=$BATS_FILE_TMPDIR/apache
	pid=$(cat "$A/run/apache2.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
}

# Directive names of an Apache file, comments and blank lines dropped.
directives() {
	sed -e 's/^[[:space:]]*#.*//' "$1" | grep -v '^[[:space:]]*$' | awk '{ print $1 }'
}

@test "apache2 -t accepts the site, rendered with only its paths, ports and host name moved" {
	run apache2 -t -f "$A/apache2.conf"
	echo "$output"
	assert_success
	assert_output --partial "Syntax OK"
	diff <(directives "$REPO/apache/kiln.conf") <(directives "$A/site.conf")
}

@test "health through Apache: /health/ready and /health/live, with the headers" {
	http GET /health/ready
	assert_equal "$status_code" 200
	assert_equal "$(json .status)" pass
	[[ $(hdr content-type) == application/health+json* ]]
	assert_security_headers
	http GET /health/live
	assert_equal "$status_code" 200
	[[ ${headers,,} == "http/2 200"* ]]
}

@test "auth through Apache: register, login, me; Authorization reaches the app" {
	EMAIL=$(new_email apache)
	PASSWORD=$(new_password)
	register_user "$EMAIL" "$PASSWORD"
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/me "$ACCESS"
	assert_equal "$status_code" 200
	assert_equal "$(json .email)" "$EMAIL"
	assert_security_headers
	# Without the header the app says so; with a bad one it judges the token.
	http GET /auth/me
	assert_problem 401
	assert_equal "$(hdr www-authenticate)" Bearer
	authed GET /auth/me "not.a.token"
	assert_problem 401
	[[ $(hdr www-authenticate) == *invalid_token* ]]
}

@test "api through Apache: list and get an exercise, submit an answer" {
	make_account AUTHOR author
	make_account ALICE user
	load_accounts
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api GET "/api/v1/exercises?limit=100" -
	expect 200
	[ "$(json "[.items[] | select(.id == $EX_ID)] | length")" = 1 ]
	api GET "/api/v1/exercises/$EX_ID" -
	expect 200
	assert_equal "$(json .id)" "$EX_ID"
	[ -n "$(hdr etag)" ]
	submit "$ALICE_TOKEN" "$EX_ID" "hello world"
	expect 202
	assert_equal "$(json .status)" queued
	api GET "/api/v1/submissions/$SUB_ID" "$ALICE_TOKEN"
	expect 200
	assert_equal "$(json .exercise_id)" "$EX_ID"
	assert_security_headers
}

@test "X-Request-ID: the client's well-formed id reaches the app and comes back once; a bad one is replaced" {
	http GET /auth/me -H 'X-Request-ID: apache-e2e-1'
	assert_equal "$status_code" 401
	assert_equal "$(hdr x-request-id)" apache-e2e-1
	assert_equal "$(json .request_id)" apache-e2e-1
	assert_security_headers
	http GET /auth/me -H 'X-Request-ID: bad id!'
	[[ $(hdr x-request-id) =~ ^[0-9a-f]{32}$ ]]
	assert_equal "$(json .request_id)" "$(hdr x-request-id)"
	grep -q '"request_id":"apache-e2e-1"' "$A/log/kiln-access.log"
}

@test "Apache's own errors are problem+json with the headers: 404, 413 over 8 MiB; the app's 413 over max_body" {
	http GET /nowhere
	assert_equal "$status_code" 404
	[[ $(hdr content-type) == application/problem+json* ]]
	assert_equal "$(json .status)" 404
	assert_equal "$(json .request_id)" "$(hdr x-request-id)"
	assert_security_headers
	head -c $((9 << 20)) /dev/zero >"$BATS_TEST_TMPDIR/big"
	# HTTP/1.1 with Expect: 100-continue, so the refusal comes before the
	# body is sent (over HTTP/2 Apache resets the stream mid-upload and curl
	# may see only the reset).
	http POST /auth/register -H 'Content-Type: application/json' --http1.1 \
		-H 'Expect: 100-continue' --data-binary @"$BATS_TEST_TMPDIR/big"
	assert_equal "$status_code" 413
	[[ $(hdr content-type) == application/problem+json* ]]
	assert_equal "$(json .title)" "Content Too Large"
	assert_security_headers
	# Under Apache's limit, over the app's max_body (1 MiB): the app answers.
	head -c $((2 << 20)) /dev/zero | tr '\0' a >"$BATS_TEST_TMPDIR/mid"
	http POST /auth/register -H 'Content-Type: application/json' --http1.1 \
		--data-binary @"$BATS_TEST_TMPDIR/mid"
	assert_problem 413
	assert_security_headers
}

@test "Apache: /metrics from an allowed address, the dashboard's own policy, TLS 1.1 refused" {
	http GET /metrics
	assert_equal "$status_code" 200
	[[ $body == *kiln_build_info* ]]
	http GET /admin/
	assert_security_headers
	[[ $(hdr content-security-policy) == *"script-src 'self'"* ]]
	run timeout 10 openssl s_client -connect "127.0.0.1:$A_HTTPS" -servername kiln.test -tls1_1 \
		-cipher 'DEFAULT:@SECLEVEL=0' </dev/null
	assert_failure
	assert_output --partial 'alert protocol version'
	run timeout 10 openssl s_client -connect "127.0.0.1:$A_HTTPS" -servername kiln.test -tls1_2 \
		-CAfile "$STACK/tls/fullchain.pem" -verify_return_error </dev/null
	assert_success
}

@test "Apache port 80: 308 to https except the ACME webroot" {
	BASE=http://127.0.0.1:$A_HTTP
	http GET '/api/v1/exercises?limit=2' -H 'Host: kiln.test'
	assert_equal "$status_code" 308
	assert_equal "$(hdr location)" 'https://kiln.test/api/v1/exercises?limit=2'
	mkdir -p "$STACK/acme/.well-known/acme-challenge"
	echo "apache-token-$RANDOM" >"$STACK/acme/.well-known/acme-challenge/t1"
	http GET /.well-known/acme-challenge/t1 -H 'Host: kiln.test'
	assert_equal "$status_code" 200
	assert_equal "$body" "$(cat "$STACK/acme/.well-known/acme-challenge/t1")"
}
