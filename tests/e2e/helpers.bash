# Shared setup for the e2e suites: each .bats file starts its own stack
# (PostgreSQL, Redis, memcached, nginx, the apps) in a private directory on
# unix sockets, with nginx on a free loopback port, and stops it at the end.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
export KILN_BUILD=${KILN_BUILD:-$REPO/build/release}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# stack_up [apps...]: start a stack for this file; sets STACK, PORT, BASE.
stack_up() {
	STACK=$(mktemp -d /tmp/kiln-e2e.XXXXXX)
	PORT=$(free_port)
	BASE="http://127.0.0.1:$PORT"
	export STACK PORT BASE
	echo "$STACK" >"$BATS_FILE_TMPDIR/stack"
	KILN_HTTP_PORT=$PORT KILN_APPS="$*" KILN_WORKERS=${KILN_WORKERS:-2} \
		"$REPO/scripts/stack" start "$STACK" >"$BATS_FILE_TMPDIR/stack-start.log" 2>&1 || {
		cat "$BATS_FILE_TMPDIR/stack-start.log" >&3
		return 1
	}
}

# stack_attach: in setup()/teardown_file(), find the stack setup_file started.
stack_attach() {
	STACK=$(cat "$BATS_FILE_TMPDIR/stack")
	PORT=$(. "$STACK/stack.env" && echo "$KILN_HTTP_PORT")
	BASE="http://127.0.0.1:$PORT"
}

stack_down() {
	[ -n "${STACK:-}" ] || return 0
	"$REPO/scripts/stack" stop "$STACK" >/dev/null 2>&1 || true
	# scripts/run-e2e fails the run on any sanitizer report: UBSan writes
	# its own to the apps' stderr, so keep every log that holds one.
	if [ -n "${KILN_SANITIZER_DIR:-}" ]; then
		grep -lE 'runtime error: |Sanitizer' "$STACK"/log/*.log 2>/dev/null |
			while read -r f; do cp "$f" "$KILN_SANITIZER_DIR/${STACK##*/}-${f##*/}"; done
	fi
	rm -rf "$STACK"
}

stack() {
	KILN_HTTP_PORT=$PORT "$REPO/scripts/stack" "$1" "$STACK" "${@:2}"
}

# Master pid of an app started by the stack.
master_pid() {
	cat "$STACK/pid/app-$1.pid"
}

# Worker pids of an app (children of its master).
worker_pids() {
	pgrep -P "$(master_pid "$1")" | sort -n
}

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# http METHOD PATH [curl args...]: sets $status_code, $body, $headers.
http() {
	local method=$1 path=$2
	shift 2
	local out
	out=$(mktemp)
	status_code=$(curl -sS -o "$out" -D "$out.h" -w '%{http_code}' -X "$method" \
		--max-time 20 "$@" "$BASE$path") || status_code=000
	body=$(cat "$out")
	headers=$(cat "$out.h" 2>/dev/null || true)
	rm -f "$out" "$out.h"
}

code_is() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE$2")" = "$1" ]
}

json() {
	printf '%s' "$body" | jq -r "$1"
}
