# shellcheck shell=bash disable=SC2154,SC2034 # status_code/body/headers come from http; ACCESS etc. go to the tests
# Helpers for tests/e2e/auth.bats (kiln-auth through nginx): JSON requests,
# register/login shortcuts, problem+json assertions, and hand-made JWTs
# signed with the stack's own key (DIR/secrets/jwt.key) for the token
# attacks. Load after helpers.bash (uses http, json, $STACK, $BASE).
#
# Every password sent and every token received is appended to
# $BATS_FILE_TMPDIR/secrets so the last test can prove none reached a log.

# ---------------------------------------------------------------- bookkeeping

# remember VALUE...: note secrets that must never appear in a log.
remember() {
	local v
	for v in "$@"; do
		[ -n "$v" ] && printf '%s\n' "$v" >>"$BATS_FILE_TMPDIR/secrets"
	done
	return 0
}

# new_email [tag]: an address no other test uses.
new_email() {
	echo "u${BATS_TEST_NUMBER}-${1:-x}-$RANDOM$RANDOM@example.com"
}

# new_password: a unique password of 30-odd bytes that passes the policy.
# A fresh strong password. Random consonants, not random digits: cracklib
# calls some digit runs "too simplistic/systematic" (10 in 3,000 samples
# were refused that way; 0 in 3,000 of these).
new_password() {
	local rnd
	rnd=$(tr -dc 'bcdfghjkmnpqrstvwxz' </dev/urandom | head -c 8)
	local pw="Kq7-${BATS_TEST_NUMBER}-$rnd-tangerine-orbit"
	remember "$pw"
	echo "$pw"
}

# ---------------------------------------------------------------- requests

# post_json PATH JSON [curl args...]: POST a JSON body (sets status_code, body, headers).
post_json() {
	local path=$1 data=$2
	shift 2
	local f
	f=$(mktemp)
	printf '%s' "$data" >"$f"
	http POST "$path" -H 'Content-Type: application/json' --data-binary @"$f" "$@"
	rm -f "$f"
}

# authed METHOD PATH TOKEN [curl args...]: a request with a Bearer token.
authed() {
	local method=$1 path=$2 token=$3
	shift 3
	http "$method" "$path" -H "Authorization: Bearer $token" "$@"
}

# hdr NAME: the value of response header NAME (last one, CR stripped).
hdr() {
	printf '%s\n' "$headers" | tr -d '\r' | sed -n "s/^$1:[[:space:]]*//Ip" | tail -n 1
}

# hdr_count NAME: how many response headers NAME there are.
hdr_count() {
	printf '%s\n' "$headers" | tr -d '\r' | grep -ci "^$1:" || true
}

# assert_security_headers: the TLS sites' headers on the last response
# ($headers of http), nginx's and Apache's alike: X-Request-ID exactly once,
# nosniff, no-referrer, DENY, a CSP forbidding framing, HSTS.
assert_security_headers() {
	local h=${headers,,} want
	for want in "x-request-id: " "x-content-type-options: nosniff" "referrer-policy: no-referrer" \
		"x-frame-options: deny" "content-security-policy: " "strict-transport-security: max-age=63072000"; do
		if [[ $h != *$'\n'"$want"* ]]; then
			printf 'no "%s" in the %s response:\n%s\n' "$want" "$status_code" "$headers" >&2
			return 1
		fi
	done
	[[ $h == *"frame-ancestors 'none'"* ]] || {
		printf 'no frame-ancestors in the %s response:\n%s\n' "$status_code" "$headers" >&2
		return 1
	}
	[ "$(hdr_count x-request-id)" = 1 ] || {
		printf 'X-Request-ID not exactly once:\n%s\n' "$headers" >&2
		return 1
	}
}

# register_user EMAIL PASSWORD [DISPLAY_NAME]: 201 or fail; sets USER_ID.
register_user() {
	local email=$1 pw=$2 name=${3:-Test User}
	remember "$pw"
	post_json /auth/register "$(jq -cn --arg e "$email" --arg p "$pw" --arg n "$name" \
		'{email:$e, password:$p, display_name:$n}')"
	if [ "$status_code" != 201 ]; then
		echo "register $email: HTTP $status_code $body" >&2
		return 1
	fi
	USER_ID=$(json .id)
}

# login_req EMAIL PASSWORD [curl args...]: POST /auth/login, no assertion.
login_req() {
	local email=$1 pw=$2
	shift 2
	remember "$pw"
	post_json /auth/login "$(jq -cn --arg e "$email" --arg p "$pw" '{email:$e, password:$p}')" "$@"
	remember_tokens
}

# login EMAIL PASSWORD [curl args...]: 200 or fail; sets ACCESS, REFRESH.
login() {
	login_req "$@"
	if [ "$status_code" != 200 ]; then
		echo "login $1: HTTP $status_code $body" >&2
		return 1
	fi
	ACCESS=$(json .access_token)
	REFRESH=$(json .refresh_token)
}

# new_user [tag]: register a fresh user and log in; sets EMAIL, PASSWORD,
# USER_ID, ACCESS, REFRESH.
new_user() {
	EMAIL=$(new_email "${1:-x}")
	PASSWORD=$(new_password)
	register_user "$EMAIL" "$PASSWORD" || return 1
	login "$EMAIL" "$PASSWORD"
}

# refresh_req TOKEN: POST /auth/refresh, no assertion.
refresh_req() {
	remember "$1"
	post_json /auth/refresh "$(jq -cn --arg t "$1" '{refresh_token:$t}')"
	remember_tokens
}

# Note the tokens of a token response in $body.
remember_tokens() {
	local a r
	a=$(printf '%s' "$body" | jq -r '.access_token // empty' 2>/dev/null || true)
	r=$(printf '%s' "$body" | jq -r '.refresh_token // empty' 2>/dev/null || true)
	remember "$a" "$r"
}

# ---------------------------------------------------------------- assertions

# assert_problem STATUS: the response is an RFC 9457 problem of that status
# with a request id.
assert_problem() {
	assert_equal "$status_code" "$1"
	[[ "$(hdr content-type)" == application/problem+json* ]] || {
		echo "content-type: $(hdr content-type), body: $body" >&2
		return 1
	}
	assert_equal "$(json .status)" "$1"
	[ -n "$(json '.type // empty')" ]
	[ -n "$(json '.title // empty')" ]
	[ -n "$(json '.request_id // empty')" ]
}

# assert_field_error FIELD: errors[] names FIELD.
assert_field_error() {
	printf '%s' "$body" | jq -e --arg f "$1" '.errors | type == "array" and any(.[]; .field == $f)' >/dev/null || {
		echo "errors[] does not name '$1': $body" >&2
		return 1
	}
}

# assert_invalid_token: 401 problem+json with WWW-Authenticate: Bearer error="invalid_token".
assert_invalid_token() {
	assert_problem 401
	local w
	w=$(hdr www-authenticate)
	[[ "$w" == Bearer* && "$w" == *'error="invalid_token"'* ]] || {
		echo "WWW-Authenticate: '$w'" >&2
		return 1
	}
}

# assert_rfc3339 VALUE: a UTC RFC 3339 time with Z.
assert_rfc3339() {
	[[ "$1" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] || {
		echo "not RFC 3339 UTC with Z: '$1'" >&2
		return 1
	}
}

# assert_int_between VALUE LO HI: VALUE is an integer in [LO, HI].
assert_int_between() {
	if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt "$2" ] || [ "$1" -gt "$3" ]; then
		echo "'$1' is not an integer in [$2, $3]" >&2
		return 1
	fi
}

# assert_token_response TTL: a login/refresh token response.
assert_token_response() {
	assert_equal "$status_code" 200
	[[ "$(hdr content-type)" == application/json* ]]
	assert_equal "$(json .token_type)" Bearer
	assert_equal "$(json .expires_in)" "$1"
	assert_equal "$(json '.expires_in | type')" number
	assert_equal "$(json '[keys[]] | sort | join(",")')" "access_token,expires_in,refresh_token,token_type"
	[[ "$(json .access_token)" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]
	[[ "$(json .refresh_token)" =~ ^[A-Za-z0-9_-]{43}$ ]]
}

# ---------------------------------------------------------------- JWTs

# b64url: stdin to base64url without padding.
b64url() {
	basenc --base64url -w0 | tr -d '='
}

# b64url_decode STRING: base64url (unpadded) to bytes on stdout.
b64url_decode() {
	local s=$1
	case $((${#s} % 4)) in
	2) s="$s==" ;;
	3) s="$s=" ;;
	esac
	printf '%s' "$s" | basenc --base64url -d
}

# jwt_part TOKEN N: part N (1 header, 2 payload) of a JWT as compact JSON.
jwt_part() {
	b64url_decode "$(printf '%s' "$1" | cut -d. -f"$2")" | jq -c .
}

# The signing key as hex: the file's bytes without trailing CR/LF, exactly
# as kiln reads a key file.
jwt_key_hex() {
	python3 -c 'import sys; print(open(sys.argv[1],"rb").read().rstrip(b"\r\n").hex())' \
		"${1:-$STACK/secrets/jwt.key}"
}

# sign ALG INPUT [KEYFILE]: base64url HMAC of INPUT (HS256 or HS512).
sign() {
	local alg=$1 input=$2 key=${3:-$STACK/secrets/jwt.key} dg
	case ${alg^^} in
	HS256) dg=sha256 ;;
	HS512) dg=sha512 ;;
	*) return 1 ;;
	esac
	printf '%s' "$input" | openssl dgst -"$dg" -mac HMAC -macopt hexkey:"$(jwt_key_hex "$key")" -binary | b64url
}

# craft_jwt HEADER_JSON PAYLOAD_JSON [KEYFILE]: a token signed with the
# header's alg, in any case (HS256/HS512; "none" gets an empty signature).
craft_jwt() {
	local h p alg input
	h=$(printf '%s' "$1" | b64url)
	p=$(printf '%s' "$2" | b64url)
	input="$h.$p"
	alg=$(printf '%s' "$1" | jq -r .alg)
	if [ "${alg,,}" = none ]; then
		echo "$input."
	else
		echo "$input.$(sign "$alg" "$input" "${3:-}")"
	fi
}

# ---------------------------------------------------------------- misc

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# reload_auth SED_EXPR: edit DIR/kiln.conf with sed, SIGHUP kiln-auth's
# master and wait until it logs the reload as complete.
reload_auth() {
	local n
	n=$(grep -c '"msg":"reload complete"' "$STACK/log/auth.log" || true)
	sed -i "$1" "$STACK/kiln.conf"
	kill -HUP "$(master_pid auth)"
	wait_until 15 bash -c "[ \"\$(grep -c '\"msg\":\"reload complete\"' '$STACK/log/auth.log')\" -gt $n ]"
}

# psql_kiln SQL: run SQL on the stack's database.
psql_kiln() {
	psql "host=$STACK/sock dbname=kiln user=kiln" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}
