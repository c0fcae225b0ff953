#!/usr/bin/env bats
# Certificate issuance end to end on loopback, against Debian's pebble ACME
# test server: certbot (webroot mode, private config/work/logs dirs) asks
# pebble for kiln.test; pebble resolves kiln.test through
# pebble-challtestsrv's DNS (every name is 127.0.0.1) and fetches the
# http-01 token from the stack's port-80 server (nginx/kiln.conf, ACME
# webroot DIR/acme); certbot's deploy hook (certbot/kiln-deploy-hook) points
# DIR/tls at the new lineage and reloads nginx; nginx's TLS server then
# serves the certificate pebble issued. Every step is time-bound.

setup_file() {
	load helpers
	HTTPS_PORT=$(free_port)
	REDIRECT_PORT=$(free_port)
	KILN_HTTPS_PORT=$HTTPS_PORT KILN_REDIRECT_PORT=$REDIRECT_PORT stack_up health
	pebble_up
}

teardown_file() {
	load helpers
	stack_attach
	local p f
	for f in pebble challtestsrv; do
		p=$(cat "$BATS_FILE_TMPDIR/acme/$f.pid" 2>/dev/null) || continue
		kill "$p" 2>/dev/null || true
	done
	stack_down
}

setup() {
	load helpers
	stack_attach
	P=$BATS_FILE_TMPDIR/acme
	HTTPS_PORT=$(. "$STACK/stack.env" && echo "$KILN_HTTPS_PORT")
	PEBBLE=$(cat "$P/pebble.port")
	PEBBLE_MGMT=$(cat "$P/mgmt.port")
}

# A CA and a certificate for pebble's own HTTPS listener (Debian's package
# ships no test certificates); certbot trusts that CA (REQUESTS_CA_BUNDLE).
pebble_certs() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=kiln-test-pebble-ca -keyout "$P/ca.key" -out "$P/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
		-keyout "$P/pebble.key" -out "$P/pebble.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$P/san.ext"
	openssl x509 -req -in "$P/pebble.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
		-days 2 -extfile "$P/san.ext" -out "$P/pebble.pem" 2>/dev/null
}

pebble_up() {
	P=$BATS_FILE_TMPDIR/acme
	mkdir -p "$P"
	pebble_certs
	local dns mgmt_dns
	PEBBLE=$(free_port)
	PEBBLE_MGMT=$(free_port)
	dns=$(free_port)
	mgmt_dns=$(free_port)
	echo "$PEBBLE" >"$P/pebble.port"
	echo "$PEBBLE_MGMT" >"$P/mgmt.port"
	# http-01 is checked on the stack's port-80 server; tls-alpn-01 goes to
	# a port nothing listens on (certbot only answers http-01 here).
	jq -n --arg l "127.0.0.1:$PEBBLE" --arg m "127.0.0.1:$PEBBLE_MGMT" \
		--arg c "$P/pebble.pem" --arg k "$P/pebble.key" \
		--argjson h "$REDIRECT_PORT" --argjson t "$(free_port)" \
		'{pebble: {listenAddress: $l, managementListenAddress: $m, certificate: $c,
		  privateKey: $k, httpPort: $h, tlsPort: $t, ocspResponderURL: "",
		  externalAccountBindingRequired: false}}' >"$P/pebble.json"
	# The DNS pebble asks: every A query is 127.0.0.1, no AAAA; no challenge
	# servers of its own.
	pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns" \
		-http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$mgmt_dns" \
		</dev/null >"$P/challtestsrv.log" 2>&1 &
	echo $! >"$P/challtestsrv.pid"
	PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
		pebble -config "$P/pebble.json" -dnsserver "127.0.0.1:$dns" </dev/null >"$P/pebble.log" 2>&1 &
	echo $! >"$P/pebble.pid"
	wait_until 20 curl -q -sf -o /dev/null --cacert "$P/ca.pem" "https://127.0.0.1:$PEBBLE/dir" || {
		cat "$P/pebble.log" "$P/challtestsrv.log" >&3
		return 1
	}
}

# The issuer of the certificate nginx serves for kiln.test.
served_issuer() {
	timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test </dev/null 2>/dev/null |
		openssl x509 -noout -issuer
}

@test "before: nginx serves the stack's self-signed certificate" {
	run served_issuer
	assert_success
	assert_output "issuer=CN = kiln.test"
}

@test "certbot obtains a certificate from pebble through kiln's nginx webroot; the deploy hook reloads nginx, which serves it" {
	local le=$P/letsencrypt
	local reload="nginx -t -q -c $STACK/nginx/nginx.conf -p $STACK/nginx/ -e $STACK/log/nginx-error.log && kill -HUP \$(cat $STACK/pid/nginx.pid)"
	run env REQUESTS_CA_BUNDLE="$P/ca.pem" timeout 120 certbot certonly --non-interactive \
		--agree-tos --register-unsafely-without-email --no-random-sleep-on-renew \
		--server "https://127.0.0.1:$PEBBLE/dir" \
		--config-dir "$le" --work-dir "$P/work" --logs-dir "$P/logs" \
		--webroot -w "$STACK/acme" -d kiln.test \
		--deploy-hook "env KILN_TLS_DIR=$STACK/tls KILN_RELOAD_CMD='$reload' $REPO/certbot/kiln-deploy-hook"
	echo "$output"
	[ "$status" -eq 0 ] || { tail -n 40 "$P/logs/letsencrypt.log" "$P/pebble.log"; false; }
	assert_output --partial "Successfully received certificate"
	# pebble fetched the token from nginx's webroot location.
	grep -q '"uri":"/.well-known/acme-challenge/[^"]*","status":200' "$STACK/log/nginx-access.log"
	# The hook ran: the links point at certbot's lineage...
	assert_equal "$(readlink "$STACK/tls/fullchain.pem")" "$le/live/kiln.test/fullchain.pem"
	assert_equal "$(readlink "$STACK/tls/privkey.pem")" "$le/live/kiln.test/privkey.pem"
	grep -q 'kiln-deploy-hook: reloaded' "$P/logs/letsencrypt.log"
	# ...and nginx, reloaded, serves pebble's certificate.
	wait_until 10 bash -c "timeout 5 openssl s_client -connect 127.0.0.1:$HTTPS_PORT -servername kiln.test </dev/null 2>/dev/null | openssl x509 -noout -issuer | grep -q Pebble"
	run served_issuer
	assert_output --partial "Pebble Intermediate CA"
	# The whole chain verifies against pebble's root for the name kiln.test.
	curl -q -sf --cacert "$P/ca.pem" "https://127.0.0.1:$PEBBLE_MGMT/roots/0" >"$P/root.pem"
	run curl -q -sS -o /dev/null -w '%{http_code} %{ssl_verify_result}' --cacert "$P/root.pem" \
		--resolve "kiln.test:$HTTPS_PORT:127.0.0.1" "https://kiln.test:$HTTPS_PORT/health/live"
	assert_success
	assert_output "200 0"
}

@test "the renewal configuration keeps the deploy hook; a forced renewal runs it again" {
	local le=$P/letsencrypt before after
	grep -q '^renew_hook = .*kiln-deploy-hook' "$le/renewal/kiln.test.conf"
	before=$(timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test </dev/null 2>/dev/null |
		openssl x509 -noout -serial)
	run env REQUESTS_CA_BUNDLE="$P/ca.pem" timeout 120 certbot renew --force-renewal --non-interactive \
		--no-random-sleep-on-renew --config-dir "$le" --work-dir "$P/work" --logs-dir "$P/logs"
	echo "$output"
	assert_success
	wait_until 10 bash -c "[ \"\$(timeout 5 openssl s_client -connect 127.0.0.1:$HTTPS_PORT -servername kiln.test </dev/null 2>/dev/null | openssl x509 -noout -serial)\" != '$before' ]"
	after=$(timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername kiln.test </dev/null 2>/dev/null |
		openssl x509 -noout -serial)
	echo "before $before, after $after"
	[ "$before" != "$after" ]
}

@test "the deploy hook refuses an incomplete lineage, leaves other certificates alone, fails with the reload" {
	local links
	links=$(readlink "$STACK/tls/fullchain.pem")
	run env -u RENEWED_LINEAGE KILN_TLS_DIR="$STACK/tls" KILN_RELOAD_CMD=true "$REPO/certbot/kiln-deploy-hook"
	assert_failure
	assert_output --partial "RENEWED_LINEAGE is not set"
	mkdir -p "$BATS_TEST_TMPDIR/half"
	: >"$BATS_TEST_TMPDIR/half/fullchain.pem"
	# (a first issuance: the links do not point at a lineage yet)
	run env RENEWED_LINEAGE="$BATS_TEST_TMPDIR/half" KILN_TLS_DIR="$BATS_TEST_TMPDIR/tls" \
		KILN_RELOAD_CMD=true "$REPO/certbot/kiln-deploy-hook"
	assert_failure
	assert_output --partial "privkey.pem"
	[ ! -e "$BATS_TEST_TMPDIR/tls/fullchain.pem" ]
	# Another certificate of the host (the hook also runs from
	# renewal-hooks/deploy/ for those): nothing is done, and that is success.
	mkdir -p "$BATS_TEST_TMPDIR/live/other.example"
	: >"$BATS_TEST_TMPDIR/live/other.example/fullchain.pem"
	: >"$BATS_TEST_TMPDIR/live/other.example/privkey.pem"
	run env RENEWED_LINEAGE="$BATS_TEST_TMPDIR/live/other.example" KILN_TLS_DIR="$STACK/tls" \
		KILN_RELOAD_CMD=false "$REPO/certbot/kiln-deploy-hook"
	assert_success
	assert_output --partial "is not kiln's certificate"
	assert_equal "$(readlink "$STACK/tls/fullchain.pem")" "$links"
	# A failing reload command is the hook's failure.
	run env RENEWED_LINEAGE="$(dirname "$links")" KILN_TLS_DIR="$STACK/tls" KILN_RELOAD_CMD=false \
		"$REPO/certbot/kiln-deploy-hook"
	assert_failure
	assert_output --partial "reload command failed"
}
