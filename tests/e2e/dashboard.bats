#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, ADMIN_*, USER_*: set by the helpers
# The admin dashboard (/admin/, docs/admin.md "The dashboard") through
# nginx: its static files come with the headers of
# nginx/snippets/kiln-admin-page.conf and hold no inline script or style;
# addresses outside the allow-list get 403; and in a real browser
# (tests/e2e/browser/dashboard.mjs: Debian's headless Chromium driven by
# playwright-core) an administrator signs in, sees the api's request rate
# rise, turns maintenance on and off, locks a user and reads the audit
# log, then uses the other actions (role, unlock, cache flush, job discard
# and retry, revoking its own sessions), with no console error and no CSP
# violation. Screenshots of every
# step go to build/artifacts/dashboard/.

bats_require_minimum_version 1.5.0

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
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up auth api admin worker
	make_account ADMIN admin "Ada Admin"
	make_account USER user "Uma User"
	load_accounts
	create_ex "$ADMIN_TOKEN" "$(ex_body exact)"
	echo "EXERCISE_ID=$EX_ID" >>"$BATS_FILE_TMPDIR/accounts.env"
	# A job that waits an hour: the browser discards it, then retries it.
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" jobs enqueue dashboard_probe '{}' --delay 1h >/dev/null
	echo "JOB_ID=$(psql_kiln "SELECT id FROM jobs WHERE kind = 'dashboard_probe'")" >>"$BATS_FILE_TMPDIR/accounts.env"
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

# The add_header lines of nginx/snippets/kiln-admin-page.conf as
# "Name<TAB>value" (quotes removed), one a line.
page_headers() {
	sed -n 's/^[[:space:]]*add_header[[:space:]]\{1,\}\([A-Za-z-]*\)[[:space:]]\{1,\}\(.*\)[[:space:]]always;[[:space:]]*$/\1\t\2/p' \
		"$REPO/nginx/snippets/kiln-admin-page.conf" | sed 's/\t"\(.*\)"$/\t\1/'
}

@test "the dashboard's files come with kiln-admin-page.conf's headers, their own types, and no inline script or style" {
	local n name value got
	n=$(page_headers | wc -l)
	[ "$n" -ge 6 ]
	for f in /admin/:text/html /admin/index.html:text/html /admin/app.js:application/javascript \
		/admin/style.css:text/css /admin/charts.js:application/javascript; do
		http GET "${f%%:*}"
		echo "GET ${f%%:*} -> $status_code $(hdr content-type)"
		assert_equal "$status_code" 200
		[[ "$(hdr content-type)" == "${f#*:}"* ]]
		# Every header of the snippet with a fixed value, exactly once and
		# exactly so; X-Request-ID (a variable) present once.
		while IFS=$'\t' read -r name value; do
			if [[ $value == \$kiln_request_id ]]; then
				assert_equal "$(hdr_count "$name")" 1
				[ -n "$(hdr "$name")" ]
			elif [[ $value != *\$* ]]; then
				got=$(hdr "$name")
				echo "  $name: $got"
				assert_equal "$(hdr_count "$name")" 1
				assert_equal "$got" "$value"
			fi
		done < <(page_headers)
		# The page's policy replaces the API's, never joins it.
		assert_equal "$(hdr_count content-security-policy)" 1
	done
	[[ "$(hdr content-security-policy)" == *"script-src 'self'"* ]]
	http GET /admin/index.html
	# Every <script> loads a file; no <style>, no style= or on*= attribute.
	run ! grep -Eiq '<script([^>]*)>[^<[:space:]]' <<<"$body"
	[ "$(grep -Eio '<script[^>]*>' <<<"$body" | grep -vc ' src=')" = 0 ]
	run ! grep -Eiq '<style|[[:space:]]style=|[[:space:]]on[a-z]+=' <<<"$body"
	# Nothing from elsewhere, and no script parses data as HTML.
	run ! grep -Eiq '(src|href)="(https?:)?//' <<<"$body"
	run ! grep -Eq '\.(inner|outer)HTML|insertAdjacentHTML|document\.write|[^a-zA-Z]eval\(' "$REPO"/www/admin/*.js
}

@test "/admin/ and /admin/api/ answer 403 to an address outside the allow-list, 200/401 to loopback" {
	for p in /admin/ /admin/app.js /admin/style.css /admin/api/stats /admin/api/users; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.2 "$BASE$p")
		echo "$p from 127.0.0.2 -> $code"
		assert_equal "$code" 403
	done
	http GET /admin/
	assert_equal "$status_code" 200
	http GET /admin/api/stats
	assert_equal "$status_code" 401
	api GET /admin/api/stats "$ADMIN_TOKEN"
	assert_equal "$status_code" 200
}

@test "in headless Chromium: sign in, see api requests/s rise, maintenance on (503) and off (202), lock a user (403), audit log, every other action, no CSP violation" {
	local dir=$REPO/build/artifacts/dashboard
	[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium: run scripts/install-deps"
	[ -d "$REPO/tests/e2e/browser/node_modules/playwright-core" ] ||
		fail "no playwright-core in tests/e2e/browser/node_modules: run scripts/install-deps"
	rm -rf "$dir"
	mkdir -p "$dir"
	run env KILN_BASE="$BASE" KILN_ARTIFACTS="$dir" \
		KILN_ADMIN_EMAIL="$ADMIN_EMAIL" KILN_ADMIN_PASSWORD="$ADMIN_PASSWORD" KILN_ADMIN_ID="$ADMIN_ID" \
		KILN_USER_EMAIL="$USER_EMAIL" KILN_USER_PASSWORD="$USER_PASSWORD" KILN_USER_ID="$USER_ID" \
		KILN_USER_TOKEN="$USER_TOKEN" KILN_EXERCISE_ID="$EXERCISE_ID" KILN_JOB_ID="$JOB_ID" \
		timeout 300 node "$REPO/tests/e2e/browser/dashboard.mjs"
	echo "$output"
	assert_success
	assert_line --partial 'dashboard: all checks passed'
	# The screenshots of every step are there, and are PNG images.
	ls "$dir"
	[ "$(find "$dir" -name '*.png' | wc -l)" -ge 13 ]
	for f in "$dir"/*.png; do
		[ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
		echo "artifact: $f" >&3
	done
	# What the page did is in PostgreSQL too: one audit row per change, by
	# this admin, in order; the user is an unlocked author again.
	local a=$ADMIN_ID
	assert_equal "$(psql_kiln "SELECT string_agg(action || ':' || actor_id, ' ' ORDER BY id) FROM admin_audit")" \
		"maintenance.on:$a maintenance.off:$a user.lock:$a user.role:$a user.unlock:$a cache.flush:$a job.discard:$a job.retry:$a user.revoke_sessions:$a"
	assert_equal "$(psql_kiln "SELECT role, locked FROM users WHERE id = $USER_ID")" "author|f"
	assert_equal "$(rcli EXISTS kiln:maintenance)" 0
}
