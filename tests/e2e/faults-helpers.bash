# shellcheck shell=bash disable=SC2154 # STACK, PORT, BASE come from helpers.bash
# Helpers for tests/e2e/faults.bats: bounded load (wrk, and a small python3
# prober that records every request), kills of random workers, a slowloris
# client, and summaries of what the load saw. Load after helpers.bash,
# auth-helpers.bash and api-helpers.bash.
#
# Every background process started here writes its pid to
# $BATS_FILE_TMPDIR/bg/<name>.pid; bg_stop_all (teardown) stops those pids
# and nothing else.

# ---------------------------------------------------------------- background processes

# bg_started NAME PID: remember a background process of this file.
bg_started() {
	mkdir -p "$BATS_FILE_TMPDIR/bg"
	echo "$2" >"$BATS_FILE_TMPDIR/bg/$1.pid"
}

# bg_wait NAME SECONDS: wait for background process NAME to end by itself;
# kill it (by pid) when it outlives SECONDS. Returns 0 when it ended alone.
bg_wait() {
	local f=$BATS_FILE_TMPDIR/bg/$1.pid pid rc=0
	[ -r "$f" ] || return 0
	pid=$(cat "$f")
	wait_until "$2" bg_gone "$pid" || {
		kill -KILL "$pid" 2>/dev/null || true
		rc=1
	}
	rm -f "$f"
	return "$rc"
}

bg_gone() {
	! kill -0 "$1" 2>/dev/null
}

# bg_stop_all: SIGTERM, then SIGKILL, every background process this file
# started and still remembers.
bg_stop_all() {
	local f pid
	for f in "$BATS_FILE_TMPDIR"/bg/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null || true
		wait_until 5 bg_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
}

# ---------------------------------------------------------------- the prober

# The prober: CONC threads send one request each at a time (a new
# connection each, as browsers behind many addresses would) until the stop
# file exists or MAX seconds passed, and write one line per request:
#   start_ms end_ms status content_type request_id
# (wall-clock ms; status 000 for a transport error or a timeout).
write_prober() {
	[ -e "$BATS_FILE_TMPDIR/probe.py" ] && return 0
	cat >"$BATS_FILE_TMPDIR/probe.py" <<'PY'
import http.client, os, sys, threading, time

port, out, stop, max_s, conc, tag, method, path, token, body = sys.argv[1:11]
max_s, conc = float(max_s), int(conc)
deadline = time.time() + max_s
lock = threading.Lock()
lines = []
seq = [0]

def one(n):
    rid = "%s-%d" % (tag, n)
    headers = {"X-Request-ID": rid, "Connection": "close"}
    if token != "-":
        headers["Authorization"] = "Bearer " + token
    data = None
    if body != "-":
        data = body.encode()
        headers["Content-Type"] = "application/json"
    t0 = time.time()
    status, ctype = "000", "-"
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        r.read()
        status, ctype = "%03d" % r.status, (r.getheader("Content-Type") or "-").split(";")[0]
        c.close()
    except Exception as e:
        ctype = type(e).__name__
    t1 = time.time()
    return "%d %d %s %s %s" % (t0 * 1000, t1 * 1000, status, ctype, rid)

def loop():
    while time.time() < deadline and not os.path.exists(stop):
        with lock:
            seq[0] += 1
            n = seq[0]
        line = one(n)
        with lock:
            lines.append(line)

ts = [threading.Thread(target=loop) for _ in range(conc)]
for t in ts:
    t.start()
for t in ts:
    t.join()
with open(out, "w") as f:
    f.write("\n".join(sorted(lines, key=lambda l: int(l.split()[0]))) + "\n")
PY
}

# probe_start NAME CONC METHOD PATH [TOKEN|-] [BODY|-]: start the prober in
# the background (at most 60 s); its lines go to $BATS_TEST_TMPDIR/NAME.tsv
# once probe_stop NAME returns. Request ids are NAME-1, NAME-2, ...
probe_start() {
	local name=$1 conc=$2 method=$3 path=$4 token=${5:--} data=${6:--}
	write_prober
	rm -f "$BATS_TEST_TMPDIR/$name.stop" "$BATS_TEST_TMPDIR/$name.tsv"
	python3 "$BATS_FILE_TMPDIR/probe.py" "$PORT" "$BATS_TEST_TMPDIR/$name.tsv" \
		"$BATS_TEST_TMPDIR/$name.stop" 60 "$conc" "$name" "$method" "$path" "$token" "$data" \
		3>&- &
	bg_started "probe-$name" $!
}

# probe_stop NAME: end the prober and wait for its file (the slowest
# request in flight may take up to its 30 s timeout: that is a hang, and
# the summary shows it).
probe_stop() {
	touch "$BATS_TEST_TMPDIR/$1.stop"
	bg_wait "probe-$1" 40
	[ -s "$BATS_TEST_TMPDIR/$1.tsv" ]
}

# probe_run NAME SECONDS CONC METHOD PATH [TOKEN] [BODY]: probe for SECONDS.
probe_run() {
	local name=$1 secs=$2
	shift 2
	probe_start "$name" "$@"
	sleep "$secs"
	probe_stop "$name"
}

# summary FILE [FROM_MS [TO_MS]]: one line about the requests of FILE that
# started in [FROM_MS, TO_MS): n=, statuses= (status:count,... by status),
# p50_ms= p95_ms= max_ms= (latency), bad_ctype= (error responses that are
# not application/problem+json).
summary() {
	python3 - "$1" "${2:-0}" "${3:-99999999999999}" <<'PY'
import sys
f, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [l.split() for l in open(f) if l.strip()]
rows = [r for r in rows if lo <= int(r[0]) < hi]
if not rows:
    print("n=0 statuses= p50_ms=0 p95_ms=0 max_ms=0 bad_ctype=0")
    sys.exit(0)
st = {}
for r in rows:
    st[r[2]] = st.get(r[2], 0) + 1
d = sorted(int(r[1]) - int(r[0]) for r in rows)
pct = lambda p: d[min(len(d) - 1, int(len(d) * p))]
bad = sum(1 for r in rows if not r[2].startswith("2") and r[3] != "application/problem+json")
print("n=%d statuses=%s p50_ms=%d p95_ms=%d max_ms=%d bad_ctype=%d" % (
    len(rows), ",".join("%s:%d" % kv for kv in sorted(st.items())), pct(0.5), pct(0.95), d[-1], bad))
PY
}

# field NAME LINE: the value of NAME= in a summary line.
field() {
	sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# count_status FILE STATUS [FROM_MS [TO_MS]]: requests of FILE with STATUS.
count_status() {
	awk -v s="$2" -v from="${3:-0}" -v to="${4:-99999999999999}" \
		'$1 >= from && $1 < to && $3 == s { n++ } END { print n + 0 }' "$1"
}

# ---------------------------------------------------------------- wrk

# wrk_load NAME SECONDS CONNS PATH [TOKEN]: wrk (one thread) GETting PATH for
# SECONDS over CONNS keep-alive connections. Leaves one JSON line in
# $BATS_TEST_TMPDIR/NAME.json: {"requests", "errors" (transport errors and
# timeouts), "non2xx", "statuses" ("502:1,..." of the non-2xx), "p50_us",
# "p99_us", "max_us"}. Run it in the background (&, then bg_started).
wrk_load() {
	local name=$1 secs=$2 conns=$3 path=$4 token=${5:-}
	local lua=$BATS_FILE_TMPDIR/count.lua
	[ -e "$lua" ] || cat >"$lua" <<'LUA'
-- Counts the non-2xx responses by status (wrk itself counts only >= 400)
-- in each thread's globals, which done() reads back with thread:get().
local threads = {}
function setup(thread)
	table.insert(threads, thread)
end
local bad = {}
function response(status, headers, body)
	if status < 200 or status > 299 then
		bad[status] = (bad[status] or 0) + 1
		nbad = (nbad or 0) + 1
		local parts = {}
		for s, n in pairs(bad) do table.insert(parts, s .. ":" .. n) end
		statuses = table.concat(parts, ",")
	end
end
function done(summary, latency, requests)
	local nb, st = 0, {}
	for _, t in ipairs(threads) do
		nb = nb + (t:get("nbad") or 0)
		table.insert(st, t:get("statuses") or "")
	end
	io.write(string.format('{"requests":%d,"errors":%d,"non2xx":%d,"statuses":"%s",'
		.. '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
		summary.requests, summary.errors.connect + summary.errors.read
		+ summary.errors.write + summary.errors.timeout, nb, table.concat(st, ","),
		latency:percentile(50), latency:percentile(99), latency.max))
end
LUA
	local -a hdr=()
	[ -z "$token" ] || hdr=(-H "Authorization: Bearer $token")
	wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s -s "$lua" "${hdr[@]}" \
		-H "X-Request-ID: wrk-$name" "$BASE$path" >"$BATS_TEST_TMPDIR/$name.out" 2>&1
	grep '^{' "$BATS_TEST_TMPDIR/$name.out" >"$BATS_TEST_TMPDIR/$name.json"
}

# ---------------------------------------------------------------- kills

# kill_random_worker APP: SIGKILL one random worker of APP's master; prints
# its pid. Fails when APP has no worker.
kill_random_worker() {
	local pid
	pid=$(worker_pids "$1" | shuf -n 1)
	[ -n "$pid" ] || return 1
	kill -KILL "$pid"
	echo "$pid"
}

# workers_are APP N: APP's master has exactly N live workers.
workers_are() {
	[ "$(worker_pids "$1" | wc -l)" -eq "$2" ]
}

# ---------------------------------------------------------------- slow and big clients

# slowloris SECONDS CONNS OUT: CONNS connections to nginx, half sending
# their headers one short line a second, half with complete headers and a
# Content-Length body sent one byte a second, for SECONDS; then writes
# "opened=N open_at_end=M" to OUT (M: connections nginx had not closed).
slowloris() {
	python3 - "$PORT" "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, secs, n, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if i % 2 == 0:
        s.sendall(b"GET /api/v1/exercises HTTP/1.1\r\nHost: kiln.test\r\n")
    else:
        s.sendall(b"POST /api/v1/exercises/1/submissions HTTP/1.1\r\nHost: kiln.test\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    socks.append(s)
end = time.time() + secs
k = 0
while time.time() < end:
    time.sleep(1)
    k += 1
    for i, s in enumerate(socks):
        try:
            s.sendall(b"X-Slow-%d: %d\r\n" % (k, k) if i % 2 == 0 else b" ")
        except OSError:
            pass
still = 0
for s in socks:
    s.setblocking(False)
    try:
        still += 0 if s.recv(1) == b"" else 0
    except BlockingIOError:
        still += 1
    except OSError:
        pass
    s.close()
open(out, "w").write("opened=%d open_at_end=%d\n" % (len(socks), still))
PY
}

# big_body_headers_only PATH BYTES REQUEST_ID: send a POST's headers
# announcing BYTES of body and no body at all; prints "STATUS MS" (the
# status line nginx answered with, and how long it took), or "000 MS" when
# nothing came back within 5 s.
big_body_headers_only() {
	python3 - "$PORT" "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, path, size, rid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
t0 = time.time()
s.sendall(("POST %s HTTP/1.1\r\nHost: kiln.test\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nX-Request-ID: %s\r\nConnection: close\r\n\r\n"
           % (path, size, rid)).encode())
try:
    head = s.recv(4096).split(b"\r\n", 1)[0].decode()
    status = head.split()[1]
except (OSError, IndexError):
    status = "000"
print(status, int((time.time() - t0) * 1000))
PY
}

# failed_logins N: N sign-ins from this address, one after the other, each
# for an account that does not exist; prints one line per answer:
# "STATUS RETRY_AFTER DETAIL" (RETRY_AFTER "-" when absent).
failed_logins() {
	python3 - "$PORT" "$1" "$BATS_TEST_NUMBER" <<'PY'
import http.client, json, random, sys
port, n, t = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    body = json.dumps({"email": "nobody%s-%d-%d@example.com" % (t, i, random.randrange(10**9)),
                       "password": "not the password at all"})
    c.request("POST", "/auth/login", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    try:
        detail = json.loads(data).get("detail", "-")
    except ValueError:
        detail = "-"
    print(r.status, r.getheader("Retry-After") or "-", detail)
    c.close()
PY
}
