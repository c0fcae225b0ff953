#!/usr/bin/env bats
# The same kiln-health binary under systemd socket activation, spawn-fcgi
# and --listen, spoken to directly over FastCGI (cgi-fcgi); plus -t,
# sd_notify, max_requests recycling and SIGUSR1 log reopening.

bats_require_minimum_version 1.5.0

setup() {
	load helpers
	D=$(mktemp -d /tmp/kiln-act.XXXXXX)
	cat >"$D/kiln.conf" <<-CONF
	[server]
	workers = 2
	run_dir = $D
	[log]
	level = debug
	[health]
	disk_path = $D
	CONF
	PIDS=()
}

teardown() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$D"
}

# fcgi ADDR PATH: one FastCGI GET request; prints the CGI response.
fcgi() {
	env -i REQUEST_METHOD=GET DOCUMENT_URI="$2" REQUEST_URI="$2" QUERY_STRING= \
		SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 \
		cgi-fcgi -bind -connect "$1"
}

live_ok() {
	fcgi "$1" /health/live 2>/dev/null | grep -q '"status":"pass"'
}

@test "-t accepts a good config and rejects a bad one naming file, line and key" {
	run "$KILN_BUILD/kiln-health" -t -c "$D/kiln.conf"
	assert_success
	printf '[server]\nworkers = many\n' >"$D/bad.conf"
	run "$KILN_BUILD/kiln-health" -t -c "$D/bad.conf"
	assert_failure 1
	assert_output --partial "bad.conf:2"
	assert_output --partial "workers"
}

@test "serves under systemd-socket-activate (LISTEN_FDS)" {
	systemd-socket-activate -l "$D/sa.sock" "$KILN_BUILD/kiln-health" -c "$D/kiln.conf" \
		2>"$D/sa.log" &
	PIDS+=($!)
	wait_until 5 test -S "$D/sa.sock"
	run fcgi "$D/sa.sock" /health/live
	assert_output --partial "Status: 200"
	assert_output --partial '"status":"pass"'
	grep -q '"msg":"started"' "$D/sa.log"
}

@test "serves under spawn-fcgi (socket on fd 0)" {
	spawn-fcgi -n -s "$D/sf.sock" -- "$KILN_BUILD/kiln-health" -c "$D/kiln.conf" 2>"$D/sf.log" &
	PIDS+=($!)
	wait_until 5 live_ok "$D/sf.sock"
	run fcgi "$D/sf.sock" /health/live
	assert_output --partial "Status: 200"
}

@test "serves on --listen HOST:PORT for development" {
	port=$(free_port)
	"$KILN_BUILD/kiln-health" -c "$D/kiln.conf" --listen "127.0.0.1:$port" 2>"$D/l.log" &
	PIDS+=($!)
	wait_until 5 live_ok "127.0.0.1:$port"
}

@test "without any socket it exits 3 with a clear message" {
	run "$KILN_BUILD/kiln-health" -c "$D/kiln.conf" </dev/null
	assert_failure 3
	assert_output --partial "no listening socket"
}

@test "sd_notify: READY=1 and STATUS= when running, STOPPING=1 on SIGTERM" {
	python3 - "$D/notify.sock" >"$D/notify.out" <<-'PY' &
	import socket, sys
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind(sys.argv[1]); s.settimeout(15)
	try:
	    while True:
	        m = s.recv(4096).decode()
	        print(m, flush=True)
	        if "STOPPING=1" in m: break
	except socket.timeout:
	    pass
	PY
	listener=$!
	wait_until 5 test -S "$D/notify.sock"
	NOTIFY_SOCKET="$D/notify.sock" "$KILN_BUILD/kiln-health" -c "$D/kiln.conf" \
		--listen "$D/n.sock" 2>"$D/n.log" &
	app=$!
	PIDS+=($app)
	wait_until 5 grep -q 'READY=1' "$D/notify.out"
	wait_until 5 grep -q 'STATUS=.*idle workers' "$D/notify.out"
	kill -TERM "$app"
	wait "$listener"
	grep -q 'STOPPING=1' "$D/notify.out"
	wait "$app"
}

@test "max_requests recycles a worker after that many requests" {
	printf '[server.health]\nmax_requests = 5\nworkers = 1\n' >>"$D/kiln.conf"
	"$KILN_BUILD/kiln-health" -c "$D/kiln.conf" --listen "$D/r.sock" 2>"$D/r.log" &
	PIDS+=($!)
	wait_until 5 live_ok "$D/r.sock"
	first=$(pgrep -P "$!")
	for i in $(seq 1 12); do wait_until 5 live_ok "$D/r.sock"; done
	wait_until 5 bash -c "[ -n \"\$(pgrep -P $!)\" ] && [ \"\$(pgrep -P $!)\" != '$first' ]"
	run ! grep -q '"msg":"worker died"' "$D/r.log"
}

@test "SIGUSR1 reopens the log file after rotation" {
	printf '[log]\nfile = %s\naccess = on\n' "$D/app.log" >"$D/extra"
	sed -i '/^\[log\]/,/^level/d' "$D/kiln.conf"
	cat "$D/extra" >>"$D/kiln.conf"
	"$KILN_BUILD/kiln-health" -c "$D/kiln.conf" --listen "$D/u.sock" 2>"$D/u.err" &
	PIDS+=($!)
	wait_until 5 live_ok "$D/u.sock"
	wait_until 5 grep -q '"msg":"request"' "$D/app.log"
	mv "$D/app.log" "$D/app.log.1"
	kill -USR1 "$!"
	sleep 0.5
	for i in 1 2 3 4; do live_ok "$D/u.sock"; done
	wait_until 5 grep -q '"msg":"request"' "$D/app.log"
}
