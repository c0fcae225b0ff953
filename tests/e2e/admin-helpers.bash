# shellcheck shell=bash disable=SC2154,SC2034 # status_code/body/headers come from http
# Helpers for tests/e2e/admin.bats (kiln-admin through nginx, docs/admin.md).
# Load after helpers.bash, auth-helpers.bash and api-helpers.bash.

# Every admin endpoint: "METHOD PATH BODY" (BODY "-" for none); {uid} and
# {jid} are replaced by a user id and a job id.
ADMIN_ENDPOINTS=(
	"GET /admin/api/users -"
	"GET /admin/api/users/{uid} -"
	"POST /admin/api/users/{uid}/lock -"
	"POST /admin/api/users/{uid}/unlock -"
	'PUT /admin/api/users/{uid}/role {"role":"author"}'
	"POST /admin/api/users/{uid}/revoke-sessions -"
	"GET /admin/api/jobs/stats -"
	"GET /admin/api/jobs -"
	"GET /admin/api/jobs/{jid} -"
	"POST /admin/api/jobs/{jid}/retry -"
	"POST /admin/api/jobs/{jid}/discard -"
	"POST /admin/api/cache/flush -"
	"GET /admin/api/maintenance -"
	'PUT /admin/api/maintenance {"enabled":true,"message":"should never be set"}'
	"GET /admin/api/audit -"
	"GET /admin/api/stats -"
)

# each_endpoint UID JID FN: call FN METHOD PATH BODY for every admin endpoint.
each_endpoint() {
	local uid=$1 jid=$2 fn=$3 e m p d
	for e in "${ADMIN_ENDPOINTS[@]}"; do
		read -r m p d <<<"$e"
		p=${p//\{uid\}/$uid}
		p=${p//\{jid\}/$jid}
		"$fn" "$m" "$p" "$d" || return 1
	done
}

# adm METHOD PATH [JSON] [curl args...]: a request as the file's admin.
adm() {
	local m=$1 p=$2
	shift 2
	api "$m" "$p" "$ADMIN_TOKEN" "$@"
}

# audit_count: rows in admin_audit.
audit_count() {
	psql_kiln "SELECT count(*) FROM admin_audit"
}

# audit_last: the newest admin_audit row as compact JSON (ip as text).
audit_last() {
	psql_kiln "SELECT json_build_object('actor_id', actor_id, 'actor_email', actor_email,
		'action', action, 'target_type', target_type, 'target_id', target_id,
		'before', before, 'after', after, 'ip', host(ip), 'request_id', request_id)
		FROM admin_audit ORDER BY id DESC LIMIT 1"
}

# audited ACTION TARGET_TYPE TARGET_ID REQUEST_ID: the newest audit row is
# that action by the file's admin from 127.0.0.1, carrying REQUEST_ID.
audited() {
	local row
	row=$(audit_last)
	printf '%s' "$row" | jq -e --arg a "$1" --arg tt "$2" --arg ti "$3" --arg rid "$4" \
		--argjson actor "$ADMIN_ID" --arg email "$ADMIN_EMAIL" '
		.action == $a and .target_type == $tt and .target_id == $ti
		and .request_id == $rid and .actor_id == $actor and .actor_email == $email
		and .ip == "127.0.0.1"' >/dev/null || {
		echo "newest audit row is not $1 $2 '$3' request_id=$4 by $ADMIN_ID: $row" >&2
		return 1
	}
}

# rid: a fresh request id for X-Request-ID.
rid() {
	echo "adm-${BATS_TEST_NUMBER}-$RANDOM$RANDOM"
}

# outside METHOD PATH [curl args...]: the request from 127.0.0.2, an
# address nginx's allow-list does not hold; sets status_code and body.
outside() {
	local m=$1 p=$2 out
	shift 2
	out=$(mktemp)
	status_code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 20 --interface 127.0.0.2 \
		-X "$m" "$@" "$BASE$p") || status_code=000
	body=$(cat "$out")
	rm -f "$out"
}

# enqueue KIND [ARGS] [kilnctl options...]: a job; prints its id.
enqueue() {
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" jobs enqueue "$@"
}

# job_state ID: the job's state in PostgreSQL.
job_state() {
	psql_kiln "SELECT state FROM jobs WHERE id = $1"
}

# discarded_job: a fail job with one attempt, run by the worker until it is
# discarded; prints its id.
discarded_job() {
	local id
	id=$(enqueue fail --max-attempts 1) || return 1
	wait_until 20 bash -c "[ \"\$(psql 'host=$STACK/sock dbname=kiln user=kiln' -XAtqc \
		'SELECT state FROM jobs WHERE id = $id')\" = discarded ]" || return 1
	echo "$id"
}

# cached_read ID: an anonymous GET of exercise ID through kiln-api was a
# cache hit (its scoreboard's api_cache_hits rose).
cached_read() {
	local h0
	h0=$(counter api_cache_hits)
	api GET "/api/v1/exercises/$1" -
	[ "$status_code" = 200 ] && [ "$(counter api_cache_hits)" -gt "$h0" ]
}
