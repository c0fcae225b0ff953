#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2153 # status_code, body, *_TOKEN, ...: set by the helpers
# kiln-api through nginx against real PostgreSQL, Redis, memcached and
# kiln-worker, checked against docs/api.md ("The application API"):
# exercises (representations, roles, ETags, the cache, paging), submissions
# (idempotency, the job beside the row), grading end to end, progress, the
# leaderboard, notifications, maintenance mode, CORS, bad input, Redis and
# memcached outages, and `kilnctl seed`.
#
# setup_file makes one account of each role (ADMIN, AUTHOR, AUTHOR2, ALICE,
# BOB); tests that count something (progress, notifications) make their own
# fresh users, and every test makes its own exercises (in a category of its
# own where it lists them), so the tests do not depend on each other.
# Maintenance mode, the failing-job trigger, the background inserter and
# stopped services are undone in teardown whatever happens. Cache hits are
# read from kiln-api's scoreboard (counter api_cache_hits).

setup_file() {
	load helpers
	load auth-helpers
	load api-helpers
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<-CONF
	[server.api]
	cors_origins = https://app.example https://second.example

	[auth]
	ip_rate = 100000
	ip_period = 60s
	ip_burst = 100000
	argon2_memory = 8M
	argon2_iterations = 1

	[worker]
	poll_interval = 200ms
	CONF
	: >"$BATS_FILE_TMPDIR/secrets"
	: >"$BATS_FILE_TMPDIR/accounts.env"
	KILN_CONF_EXTRA="$BATS_FILE_TMPDIR/extra.conf" stack_up api auth worker
	make_account ADMIN admin "Ada Admin"
	make_account AUTHOR author "Arthur Author"
	make_account AUTHOR2 author "Agatha Author"
	make_account ALICE user "Alice Learner"
	make_account BOB user "Bob Learner"
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
	if [ -e "$BATS_FILE_TMPDIR/maintenance-on" ]; then
		rcli DEL kiln:maintenance >/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/maintenance-on"
	fi
	if [ -e "$BATS_FILE_TMPDIR/trigger-on" ]; then
		psql_kiln "DROP TRIGGER IF EXISTS e2e_fail_grade_job ON jobs" || true
		rm -f "$BATS_FILE_TMPDIR/trigger-on"
	fi
	if [ -e "$BATS_FILE_TMPDIR/services-stopped" ]; then
		stack start redis memcached >/dev/null 2>&1 || true
		rm -f "$BATS_FILE_TMPDIR/services-stopped"
	fi
	if [ -e "$BATS_FILE_TMPDIR/inserter.pid" ]; then
		touch "$BATS_FILE_TMPDIR/inserter.stop"
		kill "$(cat "$BATS_FILE_TMPDIR/inserter.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/inserter.pid"
	fi
}

# sorted_keys a,b,c: the comma list sorted as jq sorts keys.
sorted_keys() {
	tr , '\n' <<<"$1" | LC_ALL=C sort | paste -sd, -
}

# ================================================================ exercises

@test "POST exercise (author): 201, the author's representation with answer and tolerance, Location, ETag" {
	req=$(ex_body numeric '.title = "  Sum of squares  " | .points = 15 | .difficulty = 3 | .category = "math"')
	before=$(date -u +%s)
	create_ex "$AUTHOR_TOKEN" "$req"
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(hdr location)" "/api/v1/exercises/$EX_ID"
	assert_equal "$EX_ETAG" "\"e${EX_ID}v1a\""
	[ -n "$(hdr x-request-id)" ]
	assert_equal "$(keys)" "$(sorted_keys "$EX_PUBLIC_KEYS,answer,tolerance")"
	assert_equal "$(json '.id | type')" number
	assert_equal "$(json .slug)" "$(jq -r .slug <<<"$req")"
	assert_equal "$(json .title)" "Sum of squares"
	assert_equal "$(json .category)" math
	assert_equal "$(json .difficulty)" 3
	assert_equal "$(json .points)" 15
	assert_equal "$(json .body)" "$(printf 'Line one\n\tLine two')"
	assert_equal "$(json .answer_kind)" numeric
	assert_equal "$(json .answer)" 3.14
	assert_equal "$(json .tolerance)" 0.01
	assert_equal "$(json '.tolerance | type')" number
	assert_equal "$(json .choices)" null
	assert_equal "$(json .published)" true
	assert_equal "$(json .created_by)" "$AUTHOR_ID"
	assert_equal "$(json .version)" 1
	assert_rfc3339 "$(json .created_at)"
	assert_rfc3339 "$(json .updated_at)"
	created=$(date -u -d "$(json .created_at)" +%s)
	assert_int_between "$created" $((before - 5)) $(($(date -u +%s) + 5))
	# Stored as sent (title trimmed).
	assert_equal "$(psql_kiln "SELECT title, category, difficulty_level, points, answer_kind, answer, tolerance, published, created_by FROM exercises WHERE id = $EX_ID")" \
		"Sum of squares|math|3|15|numeric|3.14|0.01|t|$AUTHOR_ID"
	# An admin may write exercises too.
	create_ex "$ADMIN_TOKEN" "$(ex_body choice)"
	assert_equal "$(json .created_by)" "$ADMIN_ID"
	assert_equal "$(jsonc .choices)" '["red","blue","green"]'
	assert_equal "$(json .answer)" blue
}

@test "GET exercise: nobody but its author and admins ever sees answer or tolerance, whatever was cached before" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body numeric)"
	id=$EX_ID
	# The author first (a cache must not hand the author's copy to others),
	# then anonymous twice (the second from the cache), then the others.
	for who in AUTHOR - - ALICE ADMIN - BOB AUTHOR2 AUTHOR; do
		tok=-
		[ "$who" = - ] || tok=$(eval echo "\$${who}_TOKEN")
		api GET "/api/v1/exercises/$id" "$tok"
		echo "as $who: $status_code $(hdr etag) $(hdr cache-control) $body" | cut -c1-300
		expect 200
		[[ "$(hdr content-type)" == application/json* ]]
		case $who in
		AUTHOR | ADMIN)
			assert_equal "$(keys)" "$(sorted_keys "$EX_PUBLIC_KEYS,answer,tolerance")"
			assert_equal "$(json .answer)" 3.14
			assert_equal "$(json .tolerance)" 0.01
			assert_equal "$(hdr etag)" "\"e${id}v1a\""
			assert_equal "$(hdr cache-control)" "private, no-cache"
			;;
		*)
			assert_equal "$(keys)" "$EX_PUBLIC_KEYS"
			assert_equal "$(hdr etag)" "\"e${id}v1\""
			assert_equal "$(hdr cache-control)" "public, no-cache"
			;;
		esac
	done
	# choice: the choices are public, the answer is not.
	create_ex "$AUTHOR_TOKEN" "$(ex_body choice)"
	api GET "/api/v1/exercises/$EX_ID" -
	expect 200
	assert_equal "$(keys)" "$EX_PUBLIC_KEYS"
	assert_equal "$(jsonc .choices)" '["red","blue","green"]'
	api GET "/api/v1/exercises/$EX_ID" "$AUTHOR_TOKEN"
	assert_equal "$(json .answer)" blue
	assert_equal "$(json '.tolerance // "absent"')" absent
	# The list never carries answers.
	api GET "/api/v1/exercises?limit=100" "$AUTHOR_TOKEN"
	expect 200
	assert_equal "$(json '[.items[] | select(has("answer") or has("tolerance"))] | length')" 0
}

@test "GET exercise: 404 for an unknown id, id 0 or a non-numeric id" {
	for p in 999999999 0 abc 1x -1 99999999999999999999; do
		api GET "/api/v1/exercises/$p" -
		echo "$p -> $status_code"
		problem 404
	done
}

@test "ETag: If-None-Match with the current tag is 304 with no body; an older tag, or the other representation's, is 200" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	id=$EX_ID
	api GET "/api/v1/exercises/$id" - - -H "If-None-Match: \"e${id}v1\""
	expect 304
	assert_equal "$body" ""
	assert_equal "$(hdr etag)" "\"e${id}v1\""
	api GET "/api/v1/exercises/$id" - - -H "If-None-Match: \"e${id}v0\""
	expect 200
	api GET "/api/v1/exercises/$id" - - -H "If-None-Match: \"e${id}v1a\""
	expect 200
	assert_equal "$(hdr etag)" "\"e${id}v1\""
	# The author's representation has its own tag.
	api GET "/api/v1/exercises/$id" "$AUTHOR_TOKEN" - -H "If-None-Match: \"e${id}v1a\""
	expect 304
	api GET "/api/v1/exercises/$id" "$AUTHOR_TOKEN" - -H "If-None-Match: \"e${id}v1\""
	expect 200
}

# became_cached ID: an anonymous GET of exercise ID was a cache hit.
became_cached() {
	local h0
	h0=$(counter api_cache_hits)
	api GET "/api/v1/exercises/$1" -
	[ "$status_code" = 200 ] && [ "$(counter api_cache_hits)" -gt "$h0" ]
}

@test "PATCH: 428 without If-Match; 200 and a new ETag with the current one; 412 with a stale one; the cached page is invalidated" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.title = "Old title"')"
	id=$EX_ID
	# Read until the page is served from memcached (a fresh write may leave a
	# short tombstone), so the PATCH below has a cached copy to invalidate.
	wait_until 5 became_cached "$id"
	became_cached "$id"
	assert_equal "$(json .title)" "Old title"

	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"title":"New title"}'
	problem 428
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"title":"New title"}' -H "If-Match: \"e${id}v1a\""
	expect 200
	assert_equal "$(hdr etag)" "\"e${id}v2a\""
	assert_equal "$(json .version)" 2
	assert_equal "$(json .title)" "New title"
	assert_equal "$(json .answer)" "Hello  World"
	# tolerance is for numeric exercises only
	assert_equal "$(json '[keys[] | select(. != "tolerance")] | join(",")')" "$(sorted_keys "$EX_PUBLIC_KEYS,answer")"
	assert_equal "$(json '.tolerance // "absent"')" absent
	# The next anonymous read shows the change at once.
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "New title"
	assert_equal "$(json .version)" 2
	assert_equal "$(hdr etag)" "\"e${id}v2\""
	wait_until 5 became_cached "$id"

	# Version 1 is stale now, in either form.
	for tag in "\"e${id}v1\"" "\"e${id}v1a\""; do
		api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"title":"Lost update"}' -H "If-Match: $tag"
		echo "If-Match $tag -> $status_code"
		problem 412
	done
	# The public form of the current tag is accepted too.
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"difficulty":5,"points":99}' -H "If-Match: \"e${id}v2\""
	expect 200
	assert_equal "$(hdr etag)" "\"e${id}v3a\""
	api GET "/api/v1/exercises/$id" -
	assert_equal "$(json '[.title, .difficulty, .points, .version] | join(",")')" "New title,5,99,3"
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"body":"changed"}' -H 'If-Match: *'
	expect 200
	assert_equal "$(hdr etag)" "\"e${id}v4a\""
	api GET "/api/v1/exercises/$id" -
	assert_equal "$(json .body)" changed
	assert_equal "$(psql_kiln "SELECT title, version, updated_at >= created_at FROM exercises WHERE id = $id")" "New title|4|t"
	# 304 follows the new version, not the old one.
	api GET "/api/v1/exercises/$id" - - -H "If-None-Match: \"e${id}v3\""
	expect 200
	api GET "/api/v1/exercises/$id" - - -H "If-None-Match: \"e${id}v4\""
	expect 304
	# Unpublishing a cached page hides it at once; publishing shows it again.
	wait_until 5 became_cached "$id"
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"published":false}' -H "If-Match: \"e${id}v4\""
	expect 200
	api GET "/api/v1/exercises/$id" -
	problem 404
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"published":true}' -H "If-Match: \"e${id}v5\""
	expect 200
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .version)" 6
}

@test "PATCH: 403 for a plain user and for another author, 200 for an admin; 401 without a token; 404; 422 empty or unknown member; 409 slug taken" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	id=$EX_ID
	for who in ALICE AUTHOR2; do
		api PATCH "/api/v1/exercises/$id" "$(eval echo "\$${who}_TOKEN")" '{"title":"Mine now"}' -H "If-Match: \"e${id}v1\""
		echo "$who -> $status_code"
		problem 403
	done
	api PATCH "/api/v1/exercises/$id" - '{"title":"Mine now"}' -H "If-Match: \"e${id}v1\""
	problem 401
	assert_equal "$(psql_kiln "SELECT title, version FROM exercises WHERE id = $id")" "Exercise $(psql_kiln "SELECT slug FROM exercises WHERE id = $id")|1"
	api PATCH "/api/v1/exercises/$id" "$ADMIN_TOKEN" '{"title":"Edited by an admin"}' -H "If-Match: \"e${id}v1\""
	expect 200
	assert_equal "$(json .title)" "Edited by an admin"
	assert_equal "$(json .answer)" "Hello  World"
	assert_equal "$(json .created_by)" "$AUTHOR_ID"
	assert_equal "$(hdr etag)" "\"e${id}v2a\""

	api PATCH /api/v1/exercises/999999999 "$AUTHOR_TOKEN" '{"title":"x"}' -H 'If-Match: "e999999999v1"'
	problem 404
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{}' -H "If-Match: \"e${id}v2\""
	problem 422
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"bogus":1}' -H "If-Match: \"e${id}v2\""
	problem 422 bogus
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"difficulty":9}' -H "If-Match: \"e${id}v2\""
	problem 422 difficulty
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	taken=$(json .slug)
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" "$(jq -cn --arg s "$taken" '{slug:$s}')" -H "If-Match: \"e${id}v2\""
	problem 409 slug
	assert_equal "$(psql_kiln "SELECT version FROM exercises WHERE id = $id")" 2
}

@test "PATCH: the exercise is validated as a whole (answer against kind, tolerance and choices); a refused PATCH changes nothing" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	id=$EX_ID
	v=1
	# patch422 JSON FIELD: refused, naming FIELD.
	patch422() {
		api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" "$1" -H "If-Match: \"e${id}v$v\""
		echo "PATCH $1 -> $status_code $body" | cut -c1-300
		problem 422 "$2"
	}
	patch422 '{"answer_kind":"numeric"}' tolerance
	patch422 '{"answer_kind":"numeric","tolerance":0.5}' answer
	patch422 '{"answer_kind":"choice"}' choices
	patch422 '{"tolerance":0.5}' tolerance
	patch422 '{"choices":["a","b"]}' choices
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"answer_kind":"numeric","answer":"5","tolerance":0.5}' -H "If-Match: \"e${id}v1\""
	expect 200
	assert_equal "$(jsonc '[.answer_kind, .answer, .tolerance, .version]')" '["numeric","5",0.5,2]'
	v=2
	patch422 '{"answer":"five"}' answer
	patch422 '{"tolerance":-1}' tolerance

	create_ex "$AUTHOR_TOKEN" "$(ex_body choice)"
	id=$EX_ID
	v=1
	patch422 '{"answer":"purple"}' answer
	patch422 '{"choices":["x","y"]}' answer
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"choices":["x","y"],"answer":"y"}' -H "If-Match: \"e${id}v1\""
	expect 200
	assert_equal "$(jsonc '[.choices, .answer]')" '[["x","y"],"y"]'

	create_ex "$AUTHOR_TOKEN" "$(ex_body regex)"
	id=$EX_ID
	patch422 '{"answer":"("}' answer
	assert_equal "$(psql_kiln "SELECT answer, version FROM exercises WHERE id = $id")" "[0-9]+ apples|1"
}

@test "POST exercise: 401 without a token ('Bearer'), with a garbage, altered or revoked token (invalid_token); 403 for a plain user" {
	req=$(ex_body exact)
	api POST /api/v1/exercises - "$req"
	problem 401
	assert_equal "$(hdr www-authenticate)" Bearer
	api POST /api/v1/exercises not.a.token "$req"
	assert_invalid_token
	# The last signature character changed.
	last=${AUTHOR_TOKEN: -1}
	[ "$last" = A ] && other=B || other=A
	api POST /api/v1/exercises "${AUTHOR_TOKEN%?}$other" "$req"
	assert_invalid_token
	# A logged-out session's access token is dead at once.
	make_account GONE author "Gone Author"
	load_accounts
	api POST /auth/logout "$GONE_TOKEN"
	expect 204
	api POST /api/v1/exercises "$GONE_TOKEN" "$req"
	assert_invalid_token
	api POST /api/v1/exercises "$ALICE_TOKEN" "$req"
	problem 403
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises WHERE slug = '$(jq -r .slug <<<"$req")'")" 0
}

@test "every endpoint for a signed-in user is 401 without a token" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	for r in "GET /api/v1/me/submissions" "GET /api/v1/me/progress" "GET /api/v1/me/notifications" \
		"POST /api/v1/me/notifications/1/read" "GET /api/v1/submissions/1" \
		"POST /api/v1/exercises/$EX_ID/submissions" "DELETE /api/v1/exercises/$EX_ID"; do
		data=-
		[ "${r% *}" != POST ] || data='{"answer":"x"}'
		api "${r% *}" "${r#* }" - "$data"
		echo "$r -> $status_code $(hdr www-authenticate)"
		problem 401
		assert_equal "$(hdr www-authenticate)" Bearer
		api "${r% *}" "${r#* }" garbage "$data"
		assert_invalid_token
	done
}

@test "DELETE: 403 for others, 412 with a stale If-Match, 204; then 404 for anonymous and users, still visible to its author and admins; the row stays" {
	cat=$(fresh_name c)
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".category = \"$cat\"")"
	id=$EX_ID
	submit "$ALICE_TOKEN" "$id" "hello world"
	expect 202
	sub=$SUB_ID
	api GET "/api/v1/exercises/$id" -
	expect 200
	for who in ALICE AUTHOR2; do
		api DELETE "/api/v1/exercises/$id" "$(eval echo "\$${who}_TOKEN")"
		problem 403
	done
	api DELETE "/api/v1/exercises/$id" "$AUTHOR_TOKEN" - -H "If-Match: \"e${id}v0\""
	problem 412
	api DELETE "/api/v1/exercises/$id" "$AUTHOR_TOKEN"
	expect 204
	assert_equal "$body" ""
	for tok in - "$ALICE_TOKEN" "$AUTHOR2_TOKEN"; do
		api GET "/api/v1/exercises/$id" "$tok"
		problem 404
	done
	for tok in "$AUTHOR_TOKEN" "$ADMIN_TOKEN"; do
		api GET "/api/v1/exercises/$id" "$tok"
		expect 200
		assert_equal "$(json .published)" false
		assert_equal "$(json .answer)" "Hello  World"
	done
	api GET "/api/v1/exercises?category=$cat" -
	expect 200
	assert_equal "$(json '.items | length')" 0
	# Unpublished: no new submissions; the old one and the row stay.
	submit "$BOB_TOKEN" "$id" "hello world"
	problem 404
	assert_equal "$(psql_kiln "SELECT published, (SELECT count(*) FROM submissions WHERE exercise_id = $id) FROM exercises WHERE id = $id")" "f|1"
	api GET "/api/v1/submissions/$sub" "$ALICE_TOKEN"
	expect 200
	api DELETE /api/v1/exercises/999999999 "$AUTHOR_TOKEN"
	problem 404
	# An admin may delete anyone's exercise.
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api DELETE "/api/v1/exercises/$EX_ID" "$ADMIN_TOKEN"
	expect 204
	api GET "/api/v1/exercises/$EX_ID" -
	problem 404
}

# ================================================================ the list

@test "list: published exercises by id with exactly {id, slug, title, category, difficulty, points, updated_at}; category, difficulty and q (case-insensitive substring) filter" {
	cat=$(fresh_name c)
	other=$(fresh_name o)
	tag=$(fresh_name k)
	mk() { # title difficulty [category] [published]
		create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".title = \"$1 $tag\" | .difficulty = $2 | .category = \"${3:-$cat}\" | .published = ${4:-true}")"
		echo "$EX_ID"
	}
	e1=$(mk "Alpha Quadratic Roots" 1)
	e2=$(mk "beta QUADRATIC forms" 3)
	e3=$(mk "Gamma linear" 3)
	e4=$(mk "Delta quadratic hidden" 3 "$cat" false)
	e5=$(mk "Quadratic elsewhere" 3 "$other")
	[ -n "$e5" ]

	api GET "/api/v1/exercises?category=$cat" -
	expect 200
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(json '[.items[].id] | join(",")')" "$e1,$e2,$e3"
	assert_equal "$(json '[.items[] | [keys[]] | sort | join(",")] | unique | join(" ")')" "$EX_ITEM_KEYS"
	assert_equal "$(json .next_cursor)" null
	assert_equal "$(json '.items[0] | [(.slug | type), .title, .category, .difficulty, .points] | join(",")')" \
		"string,Alpha Quadratic Roots $tag,$cat,1,10"
	assert_rfc3339 "$(json '.items[0].updated_at')"

	check() { # query expected-ids
		api GET "/api/v1/exercises?$1" -
		echo "?$1 -> $status_code $(json '[.items[].id] | join(",")')"
		expect 200
		assert_equal "$(json '[.items[].id] | join(",")')" "$2"
	}
	check "category=$cat&difficulty=3" "$e2,$e3"
	check "category=$cat&difficulty=1" "$e1"
	check "category=$cat&difficulty=5" ""
	check "category=$cat&q=quadratic" "$e1,$e2"
	check "category=$cat&q=QuAdRaTiC&difficulty=3" "$e2"
	check "category=$cat&q=adratic%20r" "$e1"
	check "q=${tag^^}" "$e1,$e2,$e3,$e5"
	check "q=quadratic%20elsewhere%20${tag}" "$e5"
	check "category=$other" "$e5"
	check "category=$cat&q=nomatch$RANDOM" ""
	check "category=nosuch$RANDOM" ""
	# A token changes nothing: the list is of published exercises.
	api GET "/api/v1/exercises?category=$cat" "$AUTHOR_TOKEN"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$e1,$e2,$e3"
	# The unpublished one is 404 to the public; its author still reads it.
	api GET "/api/v1/exercises/$e4" -
	problem 404
	api GET "/api/v1/exercises/$e4" "$AUTHOR_TOKEN"
	expect 200
	assert_equal "$(json .published)" false
}

@test "list: limit 1..100 (default 20); limit 0, 101 and bad filters are 422 naming the parameter" {
	cat=$(fresh_name c)
	psql_kiln "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
		SELECT '$cat-' || g, 'Limit ' || g, '$cat', 1, 1, '', 'exact', 'x', $AUTHOR_ID FROM generate_series(1, 25) g"
	api GET "/api/v1/exercises?category=$cat" -
	expect 200
	assert_equal "$(json '.items | length')" 20
	[ "$(json .next_cursor)" != null ]
	api GET "/api/v1/exercises?category=$cat&limit=1" -
	assert_equal "$(json '.items | length')" 1
	api GET "/api/v1/exercises?category=$cat&limit=100" -
	assert_equal "$(json '.items | length')" 25
	assert_equal "$(json .next_cursor)" null
	for bad in limit=0 limit=101 limit=-1 limit=abc limit=1.5 limit= difficulty=0 difficulty=6 difficulty=x \
		"q=$(printf 'q%.0s' $(seq 1 101))" "category=Not%20A%20Slug" "category=a_b" cursor=; do
		api GET "/api/v1/exercises?$bad" -
		echo "?${bad:0:40} -> $status_code $body" | cut -c1-300
		problem 422 "${bad%%=*}"
	done
	# 100 characters of q is the bound itself, also when they take 200 bytes.
	api GET "/api/v1/exercises?q=$(printf 'q%.0s' $(seq 1 100))" -
	expect 200
	api GET "/api/v1/exercises?q=$(printf '%%C3%%A9%.0s' $(seq 1 100))" -
	expect 200
	api GET "/api/v1/exercises?q=$(printf '%%C3%%A9%.0s' $(seq 1 101))" -
	problem 422 q
}

@test "cursor: the next page follows; an altered cursor, or one used with other filters or on another list, is 422 'cursor'" {
	cat=$(fresh_name c)
	psql_kiln "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
		SELECT '$cat-' || g, 'Cursor ' || g, '$cat', 2, 1, '', 'exact', 'x', $AUTHOR_ID FROM generate_series(1, 5) g"
	ids=$(psql_kiln "SELECT string_agg(id::text, ',' ORDER BY id) FROM exercises WHERE category = '$cat'")
	api GET "/api/v1/exercises?category=$cat&limit=3" -
	expect 200
	cur=$(json .next_cursor)
	[ -n "$cur" ] && [ "$cur" != null ]
	first=$(json '[.items[].id] | join(",")')
	api GET "/api/v1/exercises?category=$cat&limit=3&cursor=$cur" -
	expect 200
	assert_equal "$first,$(json '[.items[].id] | join(",")')" "$ids"
	assert_equal "$(json .next_cursor)" null
	# Another limit is not another query.
	api GET "/api/v1/exercises?category=$cat&limit=1&cursor=$cur" -
	expect 200
	assert_equal "$(json '.items[0].id')" "$(cut -d, -f4 <<<"$ids")"

	# Every single-character change of the cursor is refused.
	n=0
	# (Not the last character of a base64url part: it may carry unused bits.)
	for ((i = 0; i < ${#cur} - 1; i += 3)); do
		c=${cur:i:1}
		[ "$c" = A ] && r=B || r=A
		[ "$c" = . ] || [ "${cur:i+1:1}" = . ] && continue
		api GET "/api/v1/exercises?category=$cat&limit=3&cursor=${cur:0:i}$r${cur:i+1}" -
		[ "$status_code" = 422 ] || echo "altered at $i: ${cur:0:i}$r${cur:i+1} -> $status_code $body"
		problem 422 cursor
		n=$((n + 1))
	done
	[ "$n" -gt 3 ]
	for bad in garbage "$cur$cur" "${cur}x" "${cur%.*}" "x.y" ; do
		api GET "/api/v1/exercises?category=$cat&cursor=$bad" -
		problem 422 cursor
	done
	# The same cursor with other filters, or none.
	for q in "category=${cat}x" "category=$cat&difficulty=2" "category=$cat&q=Cursor" "" "difficulty=2"; do
		api GET "/api/v1/exercises?${q}&cursor=$cur" -
		echo "?$q&cursor -> $status_code"
		problem 422 cursor
	done
	# A list cursor on another list.
	api GET "/api/v1/me/submissions?cursor=$cur" "$ALICE_TOKEN"
	problem 422 cursor
	api GET "/api/v1/me/notifications?cursor=$cur" "$ALICE_TOKEN"
	problem 422 cursor
}

# inserter CATEGORY GAPS: insert published exercises of CATEGORY via psql
# until $BATS_FILE_TMPDIR/inserter.stop exists, taking turns between a new
# id (after every row) and a free id from the file GAPS (between rows: what
# a transaction that took its id early and committed late looks like). The
# count goes to inserter.count.
inserter() {
	local i=0 id
	local -a gaps
	mapfile -t gaps < <(shuf "$2")
	while [ ! -e "$BATS_FILE_TMPDIR/inserter.stop" ] && [ "$i" -lt 500 ]; do
		i=$((i + 1))
		if ((i % 2)) && ((${#gaps[@]})); then
			id=${gaps[-1]}
			unset 'gaps[-1]'
			psql_kiln "INSERT INTO exercises (id, slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
				OVERRIDING SYSTEM VALUE
				VALUES ($id, '$1-gap-$i', 'Late $i', '$1', 1, 1, '', 'exact', 'x', $AUTHOR_ID)"
		else
			psql_kiln "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
				VALUES ('$1-late-$i', 'Late $i', '$1', 1, 1, '', 'exact', 'x', $AUTHOR_ID)"
		fi
		echo "$i" >"$BATS_FILE_TMPDIR/inserter.count"
		sleep 0.01
	done
}

@test "paging with limit=7 while exercises are inserted concurrently (after and between rows): no id twice, every id that existed before is seen, in id order" {
	cat=$(fresh_name c)
	# 60 rows with a free id after each (the rows of another category, deleted).
	psql_kiln "INSERT INTO exercises (slug, title, category, difficulty_level, points, body, answer_kind, answer, created_by)
		SELECT '$cat-' || g, 'Paging ' || g, CASE WHEN g % 2 = 0 THEN '$cat' ELSE '$cat-gap' END,
			1 + g % 5, 1, '', 'exact', 'x', $AUTHOR_ID FROM generate_series(1, 120) g"
	psql_kiln "DELETE FROM exercises WHERE category = '$cat-gap' RETURNING id" >"$BATS_TEST_TMPDIR/gaps"
	before=$(psql_kiln "SELECT id FROM exercises WHERE category = '$cat' ORDER BY id")
	assert_equal "$(wc -l <<<"$before")" 60
	rm -f "$BATS_FILE_TMPDIR/inserter.stop" "$BATS_FILE_TMPDIR/inserter.count"
	inserter "$cat" "$BATS_TEST_TMPDIR/gaps" 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/inserter.pid"
	wait_until 5 test -s "$BATS_FILE_TMPDIR/inserter.count"

	seen=$BATS_TEST_TMPDIR/seen
	: >"$seen"
	cursor=
	pages=0
	while :; do
		q="category=$cat&limit=7"
		[ -z "$cursor" ] || q="$q&cursor=$cursor"
		api GET "/api/v1/exercises?$q" -
		expect 200
		[ "$(json '.items | length')" -le 7 ]
		json '.items[].id' >>"$seen"
		cursor=$(json '.next_cursor // empty')
		pages=$((pages + 1))
		[ -n "$cursor" ] || break
		[ "$pages" -lt 200 ]
		sleep 0.02
	done
	touch "$BATS_FILE_TMPDIR/inserter.stop"
	wait "$(cat "$BATS_FILE_TMPDIR/inserter.pid")" || true
	rm -f "$BATS_FILE_TMPDIR/inserter.pid"
	inserted=$(cat "$BATS_FILE_TMPDIR/inserter.count")
	echo "$pages pages, $(wc -l <"$seen") ids seen, $inserted inserted meanwhile"
	# The inserts really overlapped the paging.
	[ "$inserted" -ge 6 ]
	[ "$pages" -ge 9 ]
	assert_equal "$(sort -n "$seen" | uniq -d)" ""
	assert_equal "$(cat "$seen")" "$(sort -n "$seen")"
	assert_equal "$(comm -23 <(sort <<<"$before") <(sort "$seen"))" ""
	# Nothing seen that is not in the category.
	assert_equal "$(comm -13 <(psql_kiln "SELECT id FROM exercises WHERE category = '$cat'" | sort) <(sort "$seen"))" ""
}

# ================================================================ submissions

@test "submit: 202 {id, exercise_id, status queued, submitted_at} with Location; the row and its grade_submission job exist together" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	submit "$ALICE_TOKEN" "$ex" "hello world"
	expect 202
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(hdr location)" "/api/v1/submissions/$SUB_ID"
	assert_equal "$(keys)" "exercise_id,id,status,submitted_at"
	assert_equal "$(json '.id | type')" number
	assert_equal "$(json .exercise_id)" "$ex"
	assert_equal "$(json .status)" queued
	assert_rfc3339 "$(json .submitted_at)"
	assert_equal "$(hdr idempotent-replayed)" ""
	assert_equal "$(psql_kiln "SELECT user_id, exercise_id, answer FROM submissions WHERE id = $SUB_ID")" \
		"$ALICE_ID|$ex|hello world"
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs WHERE kind = 'grade_submission' AND args->>'submission_id' = '$SUB_ID'")" 1
	wait_graded "$ALICE_TOKEN" "$SUB_ID"
}

@test "submit: when the job cannot be written, neither is the submission (one transaction)" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	touch "$BATS_FILE_TMPDIR/trigger-on"
	psql_kiln "CREATE OR REPLACE FUNCTION e2e_fail_grade_job() RETURNS trigger LANGUAGE plpgsql AS
		\$\$ BEGIN RAISE EXCEPTION 'e2e: no grading jobs today'; END \$\$;
		CREATE TRIGGER e2e_fail_grade_job BEFORE INSERT ON jobs FOR EACH ROW
		WHEN (NEW.kind = 'grade_submission') EXECUTE FUNCTION e2e_fail_grade_job()"
	submit "$BOB_TOKEN" "$ex" "hello world" -H "Idempotency-Key: atomic-$ex"
	echo "with the trigger: $status_code $body"
	psql_kiln "DROP TRIGGER e2e_fail_grade_job ON jobs; DROP FUNCTION e2e_fail_grade_job()"
	rm -f "$BATS_FILE_TMPDIR/trigger-on"
	[ "$status_code" -ge 500 ]
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex")" 0
	# The same key afterwards is a first request, not a replay.
	submit "$BOB_TOKEN" "$ex" "hello world" -H "Idempotency-Key: atomic-$ex"
	expect 202
	assert_equal "$(hdr idempotent-replayed)" ""
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions s JOIN jobs j ON j.args->>'submission_id' = s.id::text AND j.kind = 'grade_submission' WHERE s.exercise_id = $ex")" 1
}

@test "Idempotency-Key: a replay returns the same 202 and id with Idempotent-Replayed: true and creates nothing; another request with it is 422; it is per user" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex2=$EX_ID
	key="key-$RANDOM$RANDOM:~!{}"
	submit "$ALICE_TOKEN" "$ex" "hello world" -H "Idempotency-Key: $key"
	expect 202
	id=$SUB_ID
	first_at=$(json .submitted_at)
	[ "$(hdr idempotent-replayed)" != true ]
	for i in 1 2; do
		submit "$ALICE_TOKEN" "$ex" "hello world" -H "Idempotency-Key: $key"
		expect 202
		assert_equal "$SUB_ID" "$id"
		assert_equal "$(hdr idempotent-replayed)" true
		assert_equal "$(hdr location)" "/api/v1/submissions/$id"
		assert_equal "$(json .exercise_id)" "$ex"
		assert_equal "$(json .submitted_at)" "$first_at"
	done
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE user_id = $ALICE_ID AND idempotency_key = '$key'")" 1
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE user_id = $ALICE_ID AND exercise_id = $ex")" 1
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs WHERE kind = 'grade_submission' AND args->>'submission_id' = '$id'")" 1
	# The same key with another answer or exercise.
	submit "$ALICE_TOKEN" "$ex" "another answer" -H "Idempotency-Key: $key"
	problem 422
	submit "$ALICE_TOKEN" "$ex2" "hello world" -H "Idempotency-Key: $key"
	problem 422
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE user_id = $ALICE_ID AND exercise_id IN ($ex, $ex2)")" 1
	# Another user's key space is their own.
	submit "$BOB_TOKEN" "$ex" "hello world" -H "Idempotency-Key: $key"
	expect 202
	[ "$SUB_ID" != "$id" ]
	[ "$(hdr idempotent-replayed)" != true ]
	# Without a key, every request is new.
	submit "$ALICE_TOKEN" "$ex" "hello world"
	expect 202
	[ "$SUB_ID" != "$id" ]
	# Once graded, a replay still returns the first response.
	wait_graded "$ALICE_TOKEN" "$id"
	submit "$ALICE_TOKEN" "$ex" "hello world" -H "Idempotency-Key: $key"
	expect 202
	assert_equal "$(hdr idempotent-replayed)" true
	assert_equal "$(jsonc '[.id, .status, .submitted_at]')" "$(jq -cn --argjson i "$id" --arg t "$first_at" '[$i, "queued", $t]')"
}

@test "Idempotency-Key: 8 concurrent requests with one key get one submission" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	key="race-$RANDOM$RANDOM"
	d=$BATS_TEST_TMPDIR/race
	mkdir -p "$d"
	for i in $(seq 1 8); do
		curl -sS -o "$d/$i.body" -w '%{http_code}\n' --max-time 20 -X POST \
			-H "Authorization: Bearer $ALICE_TOKEN" -H 'Content-Type: application/json' \
			-H "Idempotency-Key: $key" --data '{"answer":"hello world"}' \
			"$BASE/api/v1/exercises/$ex/submissions" >"$d/$i.code" 3>&- &
	done
	wait
	cat "$d"/*.code
	assert_equal "$(cat "$d"/*.code | sort -u)" 202
	assert_equal "$(cat "$d"/*.body | jq -r .id | sort -u | wc -l)" 1
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE user_id = $ALICE_ID AND exercise_id = $ex")" 1
	assert_equal "$(psql_kiln "SELECT count(*) FROM jobs WHERE kind = 'grade_submission' AND args->>'submission_id' = '$(jq -r .id "$d/1.body")'")" 1
}

@test "Idempotency-Key: 255 visible ASCII characters are accepted; empty, 256, a space, a control character or non-ASCII are 422" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	k255="$RANDOM$RANDOM-$(printf 'k%.0s' $(seq 1 255))"
	k255=${k255:0:255}
	submit "$ALICE_TOKEN" "$ex" "a" -H "Idempotency-Key: $k255"
	expect 202
	n=$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex")
	for bad in "${k255}x" "two words" "$(printf 'ctl\001x')" "$(printf 'del\177x')" "clé" "$(printf 'tab\tin')"; do
		submit "$ALICE_TOKEN" "$ex" "a" -H "Idempotency-Key: $bad"
		echo "key '${bad:0:20}' (${#bad}) -> $status_code $body" | cut -c1-200
		problem 422
	done
	# An empty header value is sent as "Idempotency-Key;" by curl.
	submit "$ALICE_TOKEN" "$ex" "a" -H "Idempotency-Key;"
	echo "empty key -> $status_code"
	problem 422
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex")" "$n"
}

@test "submit: 404 for an unknown or unpublished exercise; 422 for an empty, over-long (bytes) or non-string answer or an unknown member" {
	submit "$ALICE_TOKEN" 999999999 "x"
	problem 404
	submit "$ALICE_TOKEN" abc "x"
	problem 404
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.published = false')"
	submit "$ALICE_TOKEN" "$EX_ID" "x"
	problem 404
	# Not even its author may answer an unpublished exercise.
	submit "$AUTHOR_TOKEN" "$EX_ID" "x"
	problem 404
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $EX_ID")" 0

	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	for b in '{}' '{"answer":""}' '{"answer":5}' '{"answer":null}' '{"answer":["x"]}' \
		"$(jq -cn --arg a "$(printf 'x%.0s' $(seq 1 1001))" '{answer:$a}')" \
		"$(jq -cn --arg a "$(printf '€%.0s' $(seq 1 334))" '{answer:$a}')"; do
		api POST "/api/v1/exercises/$ex/submissions" "$ALICE_TOKEN" "$b"
		echo "${b:0:60} -> $status_code"
		problem 422 answer
	done
	api POST "/api/v1/exercises/$ex/submissions" "$ALICE_TOKEN" '{"answer":"x","user_id":1}'
	problem 422 user_id
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $ex")" 0
	# The bounds: 1000 bytes (500 two-byte characters) and 1 byte.
	submit "$ALICE_TOKEN" "$ex" "$(printf 'é%.0s' $(seq 1 500))"
	expect 202
	submit "$ALICE_TOKEN" "$ex" "$(printf 'x%.0s' $(seq 1 1000))"
	expect 202
	submit "$ALICE_TOKEN" "$ex" "x"
	expect 202
	assert_equal "$(psql_kiln "SELECT string_agg(octet_length(answer)::text, ',' ORDER BY id) FROM submissions WHERE exercise_id = $ex")" "1000,1000,1"
}

@test "GET submission: 200 for its owner and admins with exactly the documented fields; 404 for other users, the exercise's author, or an unknown id" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	submit "$ALICE_TOKEN" "$ex" " hello   WORLD "
	expect 202
	id=$SUB_ID
	wait_graded "$ALICE_TOKEN" "$id"
	for tok in "$ALICE_TOKEN" "$ADMIN_TOKEN"; do
		api GET "/api/v1/submissions/$id" "$tok"
		expect 200
		assert_equal "$(keys)" "$SUB_KEYS"
		assert_equal "$(json '[.id, .exercise_id, .user_id, .answer, .status] | join("|")')" \
			"$id|$ex|$ALICE_ID| hello   WORLD |graded"
		assert_rfc3339 "$(json .submitted_at)"
		assert_rfc3339 "$(json .graded_at)"
	done
	for tok in "$BOB_TOKEN" "$AUTHOR_TOKEN"; do
		api GET "/api/v1/submissions/$id" "$tok"
		problem 404
	done
	api GET /api/v1/submissions/999999999 "$ALICE_TOKEN"
	problem 404
	api GET /api/v1/submissions/abc "$ALICE_TOKEN"
	problem 404
}

# ================================================================ grading

@test "grading: correct answers to exact, numeric, regex and choice exercises are graded within 2 s with the exercise's points" {
	cat=$(fresh_name c)
	declare -A by_kind pts
	p=10
	for kind in exact numeric regex choice; do
		create_ex "$AUTHOR_TOKEN" "$(ex_body "$kind" ".category = \"$cat\" | .points = $p")"
		by_kind[$kind]=$EX_ID
		pts[$kind]=$p
		p=$((p + 10))
	done
	fresh_user CAROL "Carol Grader"
	# answer per kind: whitespace and case (exact), within tolerance
	# (numeric), the whole answer matching (regex), trimmed (choice).
	for pair in "exact|  hello   WORLD " "numeric| 3.145 " "regex|12 apples" "choice| blue "; do
		kind=${pair%%|*}
		submit "$CAROL_TOKEN" "${by_kind[$kind]}" "${pair#*|}"
		expect 202
		wait_graded "$CAROL_TOKEN" "$SUB_ID" 2000
		echo "$kind: graded in $GRADE_MS ms: $body"
		assert_equal "$(json '[.status, .score, .feedback] | join(",")')" "graded,${pts[$kind]},correct"
		assert_equal "$(json '.score | type')" number
		assert_rfc3339 "$(json .graded_at)"
	done
}

@test "grading: wrong answers score 0 with feedback 'incorrect' (the regex is anchored, choices are exact)" {
	declare -A by_kind
	for kind in exact numeric regex choice; do
		create_ex "$AUTHOR_TOKEN" "$(ex_body "$kind" '.points = 50')"
		by_kind[$kind]=$EX_ID
	done
	for pair in "exact|hello world!" "exact|helloworld" "numeric|3.16" "numeric|abc" "numeric|0x3" \
		"regex|12 apples and pears" "regex|apples" "regex|x12 apples" "choice|Blue" "choice|red" "choice|blue green"; do
		kind=${pair%%|*}
		submit "$BOB_TOKEN" "${by_kind[$kind]}" "${pair#*|}"
		expect 202
		wait_graded "$BOB_TOKEN" "$SUB_ID" 2000
		echo "$pair: $body"
		assert_equal "$(json '[.status, .score, .feedback] | join(",")')" "graded,0,incorrect"
	done
}

@test "me/submissions: the user's own, newest first, exact fields; exercise_id filters; limit and cursor page; 422 on bad parameters" {
	fresh_user DAVE
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	e1=$EX_ID
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	e2=$EX_ID
	ids=()
	for e in "$e1" "$e2" "$e1" "$e2" "$e1"; do
		submit "$DAVE_TOKEN" "$e" "answer $e"
		expect 202
		ids+=("$SUB_ID")
	done
	submit "$BOB_TOKEN" "$e1" "not dave's"
	newest_first=$(printf '%s\n' "${ids[@]}" | sort -rn | paste -sd, -)
	api GET /api/v1/me/submissions "$DAVE_TOKEN"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$newest_first"
	assert_equal "$(json '[.items[] | [keys[]] | sort | join(",")] | unique | join(" ")')" "$SUB_KEYS"
	assert_equal "$(json '[.items[].user_id] | unique | join(",")')" "$DAVE_ID"
	assert_equal "$(json .next_cursor)" null
	api GET "/api/v1/me/submissions?exercise_id=$e2" "$DAVE_TOKEN"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "${ids[3]},${ids[1]}"
	assert_equal "$(page_all "/api/v1/me/submissions?limit=2" "$DAVE_TOKEN" | paste -sd, -)" "$newest_first"
	assert_equal "$(page_all "/api/v1/me/submissions?limit=1&exercise_id=$e1" "$DAVE_TOKEN" | paste -sd, -)" \
		"${ids[4]},${ids[2]},${ids[0]}"
	# A cursor belongs to its filters.
	api GET "/api/v1/me/submissions?limit=2&exercise_id=$e1" "$DAVE_TOKEN"
	cur=$(json .next_cursor)
	api GET "/api/v1/me/submissions?limit=2&exercise_id=$e2&cursor=$cur" "$DAVE_TOKEN"
	problem 422 cursor
	for bad in limit=0 limit=101 exercise_id=abc exercise_id=0; do
		api GET "/api/v1/me/submissions?$bad" "$DAVE_TOKEN"
		echo "?$bad -> $status_code"
		problem 422 "${bad%%=*}"
	done
	# Bob's list does not hold Dave's.
	api GET /api/v1/me/submissions "$BOB_TOKEN"
	assert_equal "$(json "[.items[] | select(.user_id != $BOB_ID)] | length")" 0
}

@test "progress and leaderboard: completions, best points and attempts per category; the user ranks with the right points" {
	fresh_user ERIN "Erin Climber $RANDOM"
	cat=$(fresh_name c)
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".category = \"$cat\" | .points = 10")"
	ex1=$EX_ID
	create_ex "$AUTHOR_TOKEN" "$(ex_body numeric ".category = \"$cat\" | .points = 20")"
	ex2=$EX_ID
	create_ex "$AUTHOR_TOKEN" "$(ex_body regex ".category = \"$cat\" | .points = 40")"
	ex3=$EX_ID
	# grade TOKEN EX ANSWER: submit and wait for the grade.
	grade() {
		submit "$1" "$2" "$3"
		expect 202
		wait_graded "$1" "$SUB_ID" 2000
	}
	api GET /api/v1/me/progress "$ERIN_TOKEN"
	expect 200
	assert_equal "$(keys)" categories,total
	assert_equal "$(jsonc .categories)" "[]"
	assert_equal "$(jsonc '.total | [.completed, .points, .attempts]')" "[0,0,0]"

	grade "$ERIN_TOKEN" "$ex1" "hello world"
	api GET /api/v1/me/progress "$ERIN_TOKEN"
	assert_equal "$(jsonc '.total | [.completed, .points, .attempts]')" "[1,10,1]"
	# The cached progress must follow each grading.
	grade "$ERIN_TOKEN" "$ex2" "4"
	api GET /api/v1/me/progress "$ERIN_TOKEN"
	assert_equal "$(jsonc '.total | [.completed, .points, .attempts]')" "[1,10,2]"
	grade "$ERIN_TOKEN" "$ex2" "3.14"
	grade "$ERIN_TOKEN" "$ex3" "pears"
	# Correct again: another attempt, no more points.
	grade "$ERIN_TOKEN" "$ex1" "HELLO WORLD"
	api GET /api/v1/me/progress "$ERIN_TOKEN"
	expect 200
	echo "$body"
	assert_equal "$(json '[.categories[] | [keys[]] | sort | join(",")] | unique | join(" ")')" "attempts,category,completed,points"
	assert_equal "$(jsonc '.categories | map({category, completed, points, attempts})')" \
		"[{\"category\":\"$cat\",\"completed\":2,\"points\":30,\"attempts\":5}]"
	assert_equal "$(jsonc '.total | [.completed, .points, .attempts]')" "[2,30,5]"
	assert_equal "$(psql_kiln "SELECT string_agg(exercise_id || ':' || best_score || ':' || attempts || ':' || (completed_at IS NOT NULL), ',' ORDER BY exercise_id) FROM user_progress WHERE user_id = $ERIN_ID")" \
		"$ex1:10:2:true,$ex2:20:2:true,$ex3:0:1:false"

	# The leaderboard: Erin with 30 points, ranks in order.
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	echo "$body" | cut -c1-600
	assert_equal "$(keys)" items
	assert_equal "$(json '[.items[] | [keys[]] | sort | join(",")] | unique | join(" ")')" "display_name,points,rank,user_id"
	assert_equal "$(jsonc ".items[] | select(.user_id == $ERIN_ID) | [.display_name, .points]")" \
		"$(jq -cn --arg n "$(psql_kiln "SELECT display_name FROM users WHERE id = $ERIN_ID")" '[$n, 30]')"
	assert_equal "$(json '[.items[].points] | . == (sort | reverse)')" true
	assert_equal "$(json '[.items[].rank] | . == sort and .[0] == 1')" true
	assert_equal "$(json '[.items[].user_id | type] | unique | join(",")')" number
	# Erin's rank counts those with more points.
	above=$(json "[.items[] | select(.points > 30)] | length")
	rank=$(json ".items[] | select(.user_id == $ERIN_ID) | .rank")
	[ "$rank" -gt "$above" ]
}

@test "leaderboard: after DEL kiln:leaderboard it is rebuilt from PostgreSQL with the same content; limit 1..100 (default 10)" {
	wait_until 10 no_grading_pending
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	before=$(jsonc .items)
	[ "$(json '.items | length')" -gt 0 ]
	[ "$(rcli EXISTS kiln:leaderboard)" = 1 ]
	rcli DEL kiln:leaderboard >/dev/null
	[ "$(rcli EXISTS kiln:leaderboard)" = 0 ]
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	assert_equal "$(jsonc .items)" "$before"
	lb_exists() { [ "$(rcli EXISTS kiln:leaderboard)" = 1 ]; }
	wait_until 3 lb_exists
	api GET "/api/v1/leaderboard?limit=100" -
	assert_equal "$(jsonc .items)" "$before"
	api GET /api/v1/leaderboard -
	expect 200
	assert_equal "$(jsonc .items)" "$(jq -c '.[:10]' <<<"$before")"
	api GET "/api/v1/leaderboard?limit=1" -
	assert_equal "$(jsonc .items)" "$(jq -c '.[:1]' <<<"$before")"
	for bad in 0 101 x; do
		api GET "/api/v1/leaderboard?limit=$bad" -
		problem 422 limit
	done
}

@test "notifications: one submission_graded per grading, newest first; read is 204 (twice); unread=true hides it; another user's is 404" {
	fresh_user FRANK
	create_ex "$AUTHOR_TOKEN" "$(ex_body choice '.points = 25')"
	ex=$EX_ID
	submit "$FRANK_TOKEN" "$ex" "blue"
	s1=$SUB_ID
	wait_graded "$FRANK_TOKEN" "$s1"
	submit "$FRANK_TOKEN" "$ex" "red"
	s2=$SUB_ID
	wait_graded "$FRANK_TOKEN" "$s2"
	notes_are() { [ "$(psql_kiln "SELECT count(*) FROM notifications WHERE user_id = $FRANK_ID")" = "$1" ]; }
	wait_until 3 notes_are 2

	api GET /api/v1/me/notifications "$FRANK_TOKEN"
	expect 200
	echo "$body"
	assert_equal "$(json '.items | length')" 2
	assert_equal "$(json '[.items[] | [keys[]] | sort | join(",")] | unique | join(" ")')" "created_at,id,kind,payload,read_at"
	assert_equal "$(json '[.items[].kind] | unique | join(",")')" submission_graded
	assert_equal "$(json '.items[0].id > .items[1].id')" true
	assert_equal "$(jsonc '.items[0].payload | {submission_id, exercise_id, score, correct}')" \
		"{\"submission_id\":$s2,\"exercise_id\":$ex,\"score\":0,\"correct\":false}"
	assert_equal "$(jsonc '.items[1].payload | {submission_id, exercise_id, score, correct}')" \
		"{\"submission_id\":$s1,\"exercise_id\":$ex,\"score\":25,\"correct\":true}"
	assert_equal "$(json '[.items[] | select(.read_at != null)] | length')" 0
	assert_rfc3339 "$(json '.items[0].created_at')"
	n1=$(json '.items[1].id')
	n2=$(json '.items[0].id')

	api POST "/api/v1/me/notifications/$n1/read" "$FRANK_TOKEN"
	expect 204
	assert_equal "$body" ""
	api POST "/api/v1/me/notifications/$n1/read" "$FRANK_TOKEN"
	expect 204
	api GET "/api/v1/me/notifications?unread=true" "$FRANK_TOKEN"
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$n2"
	api GET /api/v1/me/notifications "$FRANK_TOKEN"
	assert_equal "$(json '[.items[].id] | join(",")')" "$n2,$n1"
	assert_rfc3339 "$(json ".items[] | select(.id == $n1) | .read_at")"
	assert_equal "$(json ".items[] | select(.id == $n2) | .read_at")" null
	# Paging.
	assert_equal "$(page_all "/api/v1/me/notifications?limit=1" "$FRANK_TOKEN" | paste -sd, -)" "$n2,$n1"
	# Not Bob's: 404, and it stays unread.
	api POST "/api/v1/me/notifications/$n2/read" "$BOB_TOKEN"
	problem 404
	api POST /api/v1/me/notifications/999999999/read "$FRANK_TOKEN"
	problem 404
	assert_equal "$(psql_kiln "SELECT read_at IS NULL FROM notifications WHERE id = $n2")" t
	api GET /api/v1/me/notifications "$BOB_TOKEN"
	assert_equal "$(json "[.items[] | select(.id == $n1 or .id == $n2)] | length")" 0
	api GET "/api/v1/me/notifications?limit=0" "$FRANK_TOKEN"
	problem 422 limit
}

# ================================================================ maintenance, CORS

@test "maintenance mode: POST, PATCH and DELETE are 503 with Retry-After and the operator's message; GETs go on; off again, writes work" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	ex=$EX_ID
	submit "$ALICE_TOKEN" "$ex" "hello world"
	wait_graded "$ALICE_TOKEN" "$SUB_ID"
	sub=$SUB_ID
	api GET /api/v1/me/notifications "$ALICE_TOKEN"
	note=$(json '.items[0].id')
	msg="Upgrading the database until 14:00 UTC"
	touch "$BATS_FILE_TMPDIR/maintenance-on"
	rcli SET kiln:maintenance "$msg" >/dev/null
	n=$(psql_kiln "SELECT count(*) FROM exercises")
	writes=("POST /api/v1/exercises $(ex_body exact)"
		"PATCH /api/v1/exercises/$ex {\"title\":\"During maintenance\"}"
		"DELETE /api/v1/exercises/$ex -"
		"POST /api/v1/exercises/$ex/submissions {\"answer\":\"x\"}"
		"POST /api/v1/me/notifications/$note/read -")
	for w in "${writes[@]}"; do
		read -r m p data <<<"$w"
		tok=$AUTHOR_TOKEN
		[[ $p == */submissions || $p == */read ]] && tok=$ALICE_TOKEN
		api "$m" "$p" "$tok" "$data" -H "If-Match: \"e${ex}v1\""
		echo "$m $p -> $status_code $(hdr retry-after) $body"
		problem 503
		assert_equal "$(json .detail)" "$msg"
		assert_int_between "$(hdr retry-after)" 1 86400
	done
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises")" "$n"
	assert_equal "$(psql_kiln "SELECT title, published, version FROM exercises WHERE id = $ex")" \
		"$(psql_kiln "SELECT 'Exercise ' || slug FROM exercises WHERE id = $ex")|t|1"
	for r in /api/v1/exercises "/api/v1/exercises/$ex" /api/v1/leaderboard /api/v1/me/progress \
		/api/v1/me/submissions /api/v1/me/notifications "/api/v1/submissions/$sub"; do
		api GET "$r" "$ALICE_TOKEN"
		echo "GET $r -> $status_code"
		expect 200
	done
	rcli DEL kiln:maintenance >/dev/null
	rm -f "$BATS_FILE_TMPDIR/maintenance-on"
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api PATCH "/api/v1/exercises/$ex" "$AUTHOR_TOKEN" '{"title":"After maintenance"}' -H "If-Match: \"e${ex}v1\""
	expect 200
	submit "$ALICE_TOKEN" "$ex" "x"
	expect 202
	api POST "/api/v1/me/notifications/$note/read" "$ALICE_TOKEN"
	expect 204
}

@test "CORS: an allowed Origin gets Access-Control-Allow-Origin (on errors too); others get none; preflight is 204 with methods and headers" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	for o in https://app.example https://second.example; do
		api GET /api/v1/exercises - - -H "Origin: $o"
		expect 200
		assert_equal "$(hdr access-control-allow-origin)" "$o"
		[[ "$(printf '%s\n' "$headers" | tr -d '\r' | grep -i '^vary:' | tr 'A-Z' 'a-z')" == *origin* ]]
	done
	# An error a browser must be able to read.
	api POST /api/v1/exercises - "$(ex_body exact)" -H 'Origin: https://app.example'
	problem 401
	assert_equal "$(hdr access-control-allow-origin)" https://app.example
	for o in https://evil.example https://app.example.evil.com http://app.example https://APP.example null; do
		api GET "/api/v1/exercises/$EX_ID" - - -H "Origin: $o"
		expect 200
		assert_equal "$(hdr_count access-control-allow-origin)" 0
	done
	api GET /api/v1/exercises -
	assert_equal "$(hdr_count access-control-allow-origin)" 0

	api OPTIONS /api/v1/exercises - - -H 'Origin: https://app.example' \
		-H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: authorization, content-type, idempotency-key'
	echo "$headers"
	expect 204
	assert_equal "$(hdr access-control-allow-origin)" https://app.example
	methods=$(hdr access-control-allow-methods | tr -d ' ')
	[[ ",$methods," == *,POST,* && ",$methods," == *,GET,* ]]
	allow=$(hdr access-control-allow-headers | tr 'A-Z' 'a-z' | tr -d ' ')
	for h in authorization content-type idempotency-key if-match if-none-match; do
		[[ ",$allow," == *",$h,"* ]] || { echo "Allow-Headers lacks $h: $allow"; false; }
	done
	api OPTIONS "/api/v1/exercises/$EX_ID" - - -H 'Origin: https://second.example' \
		-H 'Access-Control-Request-Method: PATCH'
	expect 204
	methods=$(hdr access-control-allow-methods | tr -d ' ')
	[[ ",$methods," == *,PATCH,* && ",$methods," == *,DELETE,* && ",$methods," == *,GET,* ]]
	api OPTIONS /api/v1/exercises - - -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'
	assert_equal "$(hdr_count access-control-allow-origin)" 0
	assert_equal "$(hdr_count access-control-allow-methods)" 0
	assert_equal "$(hdr_count access-control-allow-headers)" 0
}

# ================================================================ bad input

@test "bad input: not application/json is 415; a body that is not a JSON object is 400 with a detail" {
	req=$(ex_body exact)
	for ct in text/plain application/x-www-form-urlencoded application/jsonx "application/json-patch+json"; do
		api POST /api/v1/exercises "$AUTHOR_TOKEN" - -H "Content-Type: $ct" --data-binary "$req"
		echo "$ct -> $status_code"
		problem 415
	done
	api POST /api/v1/exercises "$AUTHOR_TOKEN" - --data-binary "$req" -H 'Content-Type:'
	problem 415
	for b in '{"slug":' '[1,2]' '"str"' 'null' '42' '{"slug":"a",}' '{"slug" "a"}' '{"a":1}x'; do
		api POST /api/v1/exercises "$AUTHOR_TOKEN" "$b"
		echo "'$b' -> $status_code $body"
		problem 400
		[ -n "$(json '.detail // empty')" ]
	done
	api POST /api/v1/exercises "$AUTHOR_TOKEN" - -H 'Content-Type: application/json' --data-binary ''
	problem 400
	# Not UTF-8: not JSON (400), or a title that is not UTF-8 (422).
	api POST /api/v1/exercises "$AUTHOR_TOKEN" "$(ex_body exact | sed 's/"title":"[^"]*"/"title":"\xff\xfe"/')"
	echo "latin-1 title -> $status_code $body"
	[ "$status_code" = 400 ] || [ "$status_code" = 422 ]
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api PATCH "/api/v1/exercises/$EX_ID" "$AUTHOR_TOKEN" '{"title":' -H "If-Match: \"e${EX_ID}v1\""
	problem 400
	api PATCH "/api/v1/exercises/$EX_ID" "$AUTHOR_TOKEN" - -H "If-Match: \"e${EX_ID}v1\"" -H 'Content-Type: text/plain' --data-binary '{"title":"x"}'
	problem 415
	api POST "/api/v1/exercises/$EX_ID/submissions" "$ALICE_TOKEN" - -H 'Content-Type: text/plain' --data-binary '{"answer":"x"}'
	problem 415
	api POST "/api/v1/exercises/$EX_ID/submissions" "$ALICE_TOKEN" '{"answer":'
	problem 400
	# A charset parameter is still JSON.
	api POST /api/v1/exercises "$AUTHOR_TOKEN" - -H 'Content-Type: application/json; charset=utf-8' --data-binary "$(ex_body exact)"
	expect 201
}

@test "bad input: a body over max_body (1 MiB) is 413 problem+json" {
	big=$BATS_TEST_TMPDIR/big.json
	python3 -c 'import json; print(json.dumps({"answer": "x" * (2 << 20)}))' >"$big"
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api POST "/api/v1/exercises/$EX_ID/submissions" "$ALICE_TOKEN" - -H 'Content-Type: application/json' --data-binary @"$big"
	problem 413
	assert_equal "$(psql_kiln "SELECT count(*) FROM submissions WHERE exercise_id = $EX_ID")" 0
}

# The bad exercise bodies: one [field, body] per case, made from a valid
# body of each kind (ex_body's rules) with a fresh slug. jq, so that all of
# them come from one process.
BAD_EXERCISES='
def base($k):
	{slug: "SLUG", title: "Bad input", category: "general", difficulty: 2, points: 10,
	 body: "", answer_kind: $k}
	+ if $k == "exact" then {answer: "Hello  World"}
	  elif $k == "numeric" then {answer: "3.14", tolerance: 0.01}
	  elif $k == "regex" then {answer: "[0-9]+ apples"}
	  else {answer: "blue", choices: ["red", "blue", "green"]} end;
def c($k; $f; g): [$f, (base($k) | g)];
[
	c("exact"; "bogus"; .bogus = 1),
	c("exact"; "slug"; del(.slug)),
	c("exact"; "slug"; .slug = "Bad-Slug"),
	c("exact"; "slug"; .slug = "a--b"),
	c("exact"; "slug"; .slug = "-a"),
	c("exact"; "slug"; .slug = ""),
	c("exact"; "slug"; .slug = "s" * 101),
	c("exact"; "slug"; .slug = 7),
	c("exact"; "title"; del(.title)),
	c("exact"; "title"; .title = ""),
	c("exact"; "title"; .title = "   "),
	c("exact"; "title"; .title = "a\u0001b"),
	c("exact"; "title"; .title = "a\nb"),
	c("exact"; "title"; .title = "a\tb"),
	c("exact"; "title"; .title = "t" * 201),
	c("exact"; "title"; .title = "é" * 101),
	c("exact"; "category"; del(.category)),
	c("exact"; "category"; .category = "Not_A_Slug"),
	c("exact"; "category"; .category = "c" * 51),
	c("exact"; "difficulty"; del(.difficulty)),
	c("exact"; "difficulty"; .difficulty = 0),
	c("exact"; "difficulty"; .difficulty = 6),
	c("exact"; "difficulty"; .difficulty = 2.5),
	c("exact"; "difficulty"; .difficulty = "2"),
	c("exact"; "points"; del(.points)),
	c("exact"; "points"; .points = -1),
	c("exact"; "points"; .points = 1001),
	c("exact"; "points"; .points = true),
	c("exact"; "body"; .body = "b" * 20001),
	c("exact"; "body"; .body = 5),
	c("exact"; "answer_kind"; del(.answer_kind)),
	c("exact"; "answer_kind"; .answer_kind = "fuzzy"),
	c("exact"; "answer_kind"; .answer_kind = "EXACT"),
	c("exact"; "answer"; del(.answer)),
	c("exact"; "answer"; .answer = ""),
	c("exact"; "answer"; .answer = "   "),
	c("exact"; "answer"; .answer = "a" * 501),
	c("exact"; "answer"; .answer = 42),
	c("exact"; "published"; .published = "yes"),
	c("exact"; "tolerance"; .tolerance = 0.5),
	c("exact"; "choices"; .choices = ["a", "b"]),
	c("numeric"; "tolerance"; del(.tolerance)),
	c("numeric"; "tolerance"; .tolerance = -1),
	c("numeric"; "tolerance"; .tolerance = "0.1"),
	c("numeric"; "answer"; .answer = "abc"),
	c("numeric"; "answer"; .answer = "inf"),
	c("numeric"; "answer"; .answer = "nan"),
	c("numeric"; "answer"; .answer = "0x10"),
	c("numeric"; "answer"; .answer = "1e999"),
	c("regex"; "answer"; .answer = "("),
	c("regex"; "answer"; .answer = "a["),
	c("regex"; "answer"; .answer = "a" * 201),
	c("choice"; "answer"; .answer = "purple"),
	c("choice"; "choices"; del(.choices)),
	c("choice"; "choices"; .choices = ["blue"]),
	c("choice"; "choices"; .choices = ["blue", "blue"]),
	c("choice"; "choices"; .choices = ["blue", ""]),
	c("choice"; "choices"; .choices = [range(11) | tostring] + ["blue"]),
	c("choice"; "choices"; .choices = ["blue", "x" * 201]),
	c("choice"; "choices"; .choices = "blue"),
	c("choice"; "choices"; .choices = ["blue", 5])
]
| to_entries[] | .key as $i | .value
| .[1] |= (if .slug == "SLUG" then .slug = "\($pre)-\($i)" else . end)
'

@test "bad input: each invalid or missing exercise field is 422 naming it; nothing is created" {
	n=$(psql_kiln "SELECT count(*) FROM exercises")
	d=$BATS_TEST_TMPDIR/bad
	mkdir -p "$d"
	pre=$(fresh_name bad)
	jq -rn --arg pre "$pre" "$BAD_EXERCISES | .[0]" >"$d/fields"
	jq -cn --arg pre "$pre" "$BAD_EXERCISES | .[1]" >"$d/bodies"
	[ "$(wc -l <"$d/bodies")" -ge 59 ]
	i=0
	while IFS= read -r b; do
		i=$((i + 1))
		printf '%s' "$b" >"$d/req"
		curl -sS -o "$d/$i.json" -w '%{http_code}\n' --max-time 20 -X POST \
			-H "Authorization: Bearer $AUTHOR_TOKEN" -H 'Content-Type: application/json' \
			--data-binary @"$d/req" "$BASE/api/v1/exercises" >>"$d/codes"
		[ -s "$d/$i.json" ] || echo null >"$d/$i.json"
	done <"$d/bodies"
	# One line per case that was not 422 naming its field.
	run jq -rn --rawfile fields "$d/fields" --rawfile codes "$d/codes" --rawfile bodies "$d/bodies" '
		[inputs] as $r | ($fields | split("\n")) as $f | ($codes | split("\n")) as $c
		| ($bodies | split("\n")) as $b
		| range(0; $r | length) as $i
		| select($c[$i] != "422" or ($r[$i] | any(.errors[]?; .field == $f[$i]) | not))
		| "expected 422 naming \($f[$i]) for \($b[$i][0:160]), got \($c[$i]) \($r[$i] | tostring | .[0:300])"' \
		$(seq -f "$d/%g.json" 1 "$i")
	assert_success
	assert_output ""
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises")" "$n"
	# The bounds themselves are fine.
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.title = ("t" * 200) | .difficulty = 5 | .points = 1000 | .body = ("b" * 20000) | .answer = ("a" * 500) | .category = ("c" * 50)')"
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.difficulty = 1 | .points = 0 | .body = "" | .published = false')"
	create_ex "$AUTHOR_TOKEN" "$(ex_body numeric '.tolerance = 0 | .answer = "-12.5"')"
	create_ex "$AUTHOR_TOKEN" "$(ex_body choice '.choices = [range(9) | tostring] + ["blue"]')"
	create_ex "$AUTHOR_TOKEN" "$(ex_body regex '.answer = ("a" * 200)')"
	# 409 for a taken slug.
	req=$(ex_body exact)
	create_ex "$AUTHOR_TOKEN" "$req"
	api POST /api/v1/exercises "$AUTHOR_TOKEN" "$req"
	problem 409 slug
}

@test "SQL-looking input is stored and searched literally; LIKE wildcards in q match only themselves" {
	cat=$(fresh_name c)
	users=$(psql_kiln "SELECT count(*) FROM users")
	title="x'); DROP TABLE exercises;--"
	create_ex "$AUTHOR_TOKEN" "$(jq -cn --arg s "$(fresh_name sql)" --arg t "$title" --arg c "$cat" \
		'{slug:$s, title:$t, category:$c, difficulty:1, points:5, body:"Robert\u0027); DELETE FROM users; --", answer_kind:"exact", answer:"\u0027 OR \u00271\u0027=\u00271"}')"
	id=$EX_ID
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "$title"
	assert_equal "$(json .body)" "Robert'); DELETE FROM users; --"
	api GET "/api/v1/exercises?category=$cat&q=$(jq -rn --arg q "'); DROP TABLE" '$q|@uri')" -
	expect 200
	assert_equal "$(json '[.items[].id] | join(",")')" "$id"
	api GET "/api/v1/exercises?q=$(jq -rn --arg q "' OR '1'='1" '$q|@uri')" -
	expect 200
	assert_equal "$(json '.items | length')" 0
	submit "$ALICE_TOKEN" "$id" "' OR '1'='1"
	wait_graded "$ALICE_TOKEN" "$SUB_ID"
	assert_equal "$(json .feedback)" correct
	submit "$ALICE_TOKEN" "$id" "x' OR 'x'='x"
	wait_graded "$ALICE_TOKEN" "$SUB_ID"
	assert_equal "$(json .feedback)" incorrect
	assert_equal "$(psql_kiln "SELECT to_regclass('public.exercises') IS NOT NULL, (SELECT count(*) FROM users)")" "t|$users"

	mk() {
		create_ex "$AUTHOR_TOKEN" "$(ex_body exact ".category = \"$cat\"" | jq -c --arg t "$1" '.title = $t')" && echo "$EX_ID"
	}
	pct=$(mk "Rate 100% sure")
	nopct=$(mk "Rate 1000 sure")
	us=$(mk "snake_case name")
	nous=$(mk "snakeXcase name")
	bs=$(mk 'back\slash')
	check() { # q(url-encoded) expected-ids
		api GET "/api/v1/exercises?category=$cat&q=$1" -
		echo "q=$1 -> $status_code $(json '[.items[].id] | join(",")')"
		expect 200
		assert_equal "$(json '[.items[].id] | join(",")')" "$2"
	}
	check %25 "$pct"
	check 100%25 "$pct"
	check 0%25%20s "$pct"
	check _ "$us"
	check e_c "$us"
	check %5C "$bs"
	check k%5Cs "$bs"
	check Rate "$pct,$nopct"
	[ -n "$nous" ]
}

# ================================================================ Redis and memcached down

@test "memcached and Redis down: reads and writes go on without the cache, the maintenance flag or the Redis leaderboard" {
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact '.title = "Cached before"')"
	id=$EX_ID
	wait_until 5 became_cached "$id"
	wait_until 10 no_grading_pending
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	board=$(jsonc .items)
	touch "$BATS_FILE_TMPDIR/services-stopped"
	stack stop redis memcached >/dev/null
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "Cached before"
	api PATCH "/api/v1/exercises/$id" "$AUTHOR_TOKEN" '{"title":"Changed without a cache"}' -H "If-Match: \"e${id}v1\""
	expect 200
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "Changed without a cache"
	create_ex "$AUTHOR_TOKEN" "$(ex_body exact)"
	api GET /api/v1/exercises -
	expect 200
	submit "$BOB_TOKEN" "$id" "not the answer"
	expect 202
	wait_graded "$BOB_TOKEN" "$SUB_ID" 5000
	assert_equal "$(json '[.status, .score] | join(",")')" "graded,0"
	api GET /api/v1/me/progress "$BOB_TOKEN"
	expect 200
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	assert_equal "$(jsonc .items)" "$board"

	stack start redis memcached >/dev/null
	rm -f "$BATS_FILE_TMPDIR/services-stopped"
	api GET "/api/v1/exercises/$id" -
	expect 200
	assert_equal "$(json .title)" "Changed without a cache"
	api GET "/api/v1/leaderboard?limit=100" -
	expect 200
	assert_equal "$(jsonc .items)" "$board"
}

# ================================================================ kilnctl seed

@test "kilnctl seed --exercises 50, twice: 50 demo exercises (idempotent), listed by the API" {
	ctl() { "$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" "$@"; }
	psql_kiln "SELECT id FROM exercises ORDER BY id" >"$BATS_TEST_TMPDIR/before"
	run ctl seed --exercises 50
	echo "$output"
	assert_success
	psql_kiln "SELECT id FROM exercises ORDER BY id" >"$BATS_TEST_TMPDIR/after1"
	assert_equal "$(comm -13 "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after1" | wc -l)" 50
	run ctl seed --exercises 50
	assert_success
	psql_kiln "SELECT id FROM exercises ORDER BY id" >"$BATS_TEST_TMPDIR/after2"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/after2")" "$(cat "$BATS_TEST_TMPDIR/after1")"
	# Every demo exercise is published, valid, and in the API's list.
	comm -13 "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after1" | sort >"$BATS_TEST_TMPDIR/new"
	assert_equal "$(psql_kiln "SELECT count(*) FROM exercises WHERE published AND id IN ($(paste -sd, "$BATS_TEST_TMPDIR/new"))")" 50
	page_all "/api/v1/exercises?limit=100" | sort >"$BATS_TEST_TMPDIR/listed"
	assert_equal "$(comm -23 "$BATS_TEST_TMPDIR/new" "$BATS_TEST_TMPDIR/listed")" ""
	# One of them can be answered and graded.
	first=$(head -n 1 "$BATS_TEST_TMPDIR/new")
	api GET "/api/v1/exercises/$first" -
	expect 200
	submit "$ALICE_TOKEN" "$first" "$(psql_kiln "SELECT answer FROM exercises WHERE id = $first")"
	expect 202
	wait_graded "$ALICE_TOKEN" "$SUB_ID"
	assert_equal "$(json .status)" graded
}
