# shellcheck shell=bash disable=SC2154,SC2034,SC2016 # status_code/body come from http; WRK_* go to the tests; literal $ in nginx text
# Helpers for tests/e2e/scale.bats: a small data centre on this machine built
# from network namespaces (`ip netns`), one veth pair per host into one
# bridge, addresses $NET.0/24:
#
#   host side of the bridge  $NET.1   (the test itself: curl, wrk, psql)
#   lb    $NET.10  nginx, upstreams of both app hosts (port 80; port 81: app1 only)
#   app1  $NET.11  kiln-api :9001, kiln-auth :9002, kiln-health :9003,
#   app2  $NET.12  kiln-metrics :9004 (--listen), kiln-worker; a Sentinel :26379
#   db1   $NET.21  PostgreSQL primary :5432; a Sentinel :26379
#   db2   $NET.22  PostgreSQL streaming replica :5432 (pg_basebackup -R)
#   rd1   $NET.31  Redis master :6379
#   rd2   $NET.32  Redis replica :6379
#   mc1   $NET.41  memcached :11211
#   mc2   $NET.42  memcached :11211
#   out   $NET.99  nobody's host: the stranger of the allow_from test
#
# Every name carries the run's prefix ($SID, "kt" + the pid in hex), so runs
# never share a namespace, link or directory. Servers run as ordinary
# background processes inside their namespace (`ip netns exec`), with pid
# files in $SC/pid and logs in $SC/log. teardown stops every process in our
# namespaces (`ip netns pids`: only what this run started lives there), then
# deletes the namespaces and the bridge.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
export KILN_BUILD=${KILN_BUILD:-$REPO/build/release}

HOSTS="lb app1 app2 db1 db2 rd1 rd2 mc1 mc2 out"
declare -gA OCTET=([lb]=10 [app1]=11 [app2]=12 [db1]=21 [db2]=22 [rd1]=31 [rd2]=32
	[mc1]=41 [mc2]=42 [out]=99)
APP_HOSTS="app1 app2"
# FastCGI programs of an app host and their ports.
declare -gA APP_PORT=([api]=9001 [auth]=9002 [health]=9003 [metrics]=9004)
SENTINEL_HOSTS="app1 app2 db1"
# nginx upstream failure handling: a server that failed once is left out
# for FAIL_TIMEOUT seconds (max_fails=1).
FAIL_TIMEOUT=3

# ---------------------------------------------------------------- state

# scale_env_save: write the run's names for the later tests and teardown.
scale_env_save() {
	printf 'SID=%q\nNET=%q\nSC=%q\n' "$SID" "$NET" "$SC" >"$BATS_FILE_TMPDIR/scale.env"
}

# scale_env_load: read them back (fails when setup_file never got so far).
scale_env_load() {
	[ -r "$BATS_FILE_TMPDIR/scale.env" ] || return 1
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/scale.env"
	BASE="http://$NET.10"
}

ip_of() {
	echo "$NET.${OCTET[$1]}"
}

ns_of() {
	echo "$SID-$1"
}

# in HOST CMD...: run CMD inside HOST's namespace.
nsx() {
	local h=$1
	shift
	ip netns exec "$(ns_of "$h")" "$@"
}

# netns_possible: can this process make namespaces and links? (root and a
# kernel with netns, veth and bridge support)
netns_possible() {
	[ "$(id -u)" = 0 ] || return 1
	local t="ktp$$"
	ip netns add "$t" 2>/dev/null || return 1
	ip netns del "$t"
	ip link add "${t}b" type bridge 2>/dev/null || return 1
	ip link del "${t}b"
}

# pick_net: a 10.77.X.0/24 no interface of this machine uses.
pick_net() {
	local x i
	for i in $(seq 0 40); do
		x=$((($$ + i) % 200 + 20))
		if ! ip -4 -o addr show | grep -q " 10\\.77\\.$x\\."; then
			echo "10.77.$x"
			return 0
		fi
	done
	return 1
}

# ---------------------------------------------------------------- network

net_up() {
	local h ns v
	ip link add "${SID}br" type bridge || return 1
	ip addr add "$NET.1/24" dev "${SID}br" || return 1
	ip link set "${SID}br" up || return 1
	for h in $HOSTS; do
		ns=$(ns_of "$h")
		v="${SID}${OCTET[$h]}"
		ip netns add "$ns" &&
			ip link add "$v" type veth peer name "${v}p" &&
			ip link set "${v}p" netns "$ns" &&
			ip link set "$v" master "${SID}br" &&
			ip link set "$v" up &&
			ip -n "$ns" link set "${v}p" name eth0 &&
			ip -n "$ns" addr add "$(ip_of "$h")/24" dev eth0 &&
			ip -n "$ns" link set eth0 up &&
			ip -n "$ns" link set lo up || return 1
	done
}

# net_down: stop every process in our namespaces, delete them and the
# bridge. Safe to call twice and after a half-made setup.
net_down() {
	local h ns pids p
	for h in $HOSTS; do
		ns=$(ns_of "$h")
		ip netns list | grep -q "^$ns\\b" || continue
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # a list of pids
		[ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
	done
	for _ in $(seq 50); do
		pids=
		for h in $HOSTS; do
			ns=$(ns_of "$h")
			ip netns list | grep -q "^$ns\\b" || continue
			pids="$pids $(ip netns pids "$ns" 2>/dev/null)"
		done
		[ -n "${pids// /}" ] || break
		sleep 0.1
	done
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	sleep 0.2
	for h in $HOSTS; do
		ns=$(ns_of "$h")
		ip netns list | grep -q "^$ns\\b" && ip netns del "$ns"
	done
	ip link show "${SID}br" >/dev/null 2>&1 && ip link del "${SID}br"
	return 0
}

# ---------------------------------------------------------------- processes

# spawn NAME HOST CMD...: start CMD in HOST's namespace in the background
# (own session, stdin /dev/null, output to $SC/log/NAME.log, bats' fd 3
# closed); its pid goes to $SC/pid/NAME.pid. `ip netns exec` and setsid
# exec, so the pid is the server's own.
spawn() {
	local name=$1 h=$2
	shift 2
	# In a subshell, so that bash never reports the job's end.
	(
		ip netns exec "$(ns_of "$h")" setsid "$@" </dev/null >>"$SC/log/$name.log" 2>&1 3>&- &
		echo $! >"$SC/pid/$name.pid"
	)
}

pid_of() {
	cat "$SC/pid/$1.pid"
}

alive() {
	local p
	p=$(pid_of "$1" 2>/dev/null) || return 1
	kill -0 "$p" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ]
}

# stop NAME [SIGNAL]: signal a spawned server and wait (10 s) until it is gone.
stop() {
	local p
	p=$(pid_of "$1") || return 0
	kill -"${2:-TERM}" "$p" 2>/dev/null || true
	wait_until 10 not_alive "$1"
}

not_alive() {
	! alive "$1"
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

now_ms() {
	echo $((${EPOCHREALTIME/./} / 1000))
}

# ---------------------------------------------------------------- PostgreSQL

pgbin() {
	printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

as_pg() {
	setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$SC" "$@"
}

# pg_start HOST: the cluster in $SC/HOST/pg, listening on HOST's address.
pg_start() {
	local h=$1
	mkdir -p "$SC/$h/sock"
	chown postgres:postgres "$SC/$h/sock"
	spawn "pg-$h" "$h" setpriv --reuid=postgres --regid=postgres --init-groups -- \
		"$(pgbin)/postgres" -D "$SC/$h/pg" -k "$SC/$h/sock" -c listen_addresses="$(ip_of "$h")" \
		-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c hot_standby=on
	wait_until 20 "$(pgbin)/pg_isready" -q -h "$(ip_of "$h")" -U postgres -d postgres
}

primary_create() {
	mkdir -m 0700 "$SC/db1/pg"
	chown postgres:postgres "$SC/db1/pg"
	as_pg "$(pgbin)/initdb" -D "$SC/db1/pg" -U postgres --auth-local=trust --auth-host=reject \
		--encoding=UTF8 --locale=C.UTF-8 --no-sync >>"$SC/log/initdb.log" 2>&1 || return 1
	# The private bridge's hosts only. Trust: a throwaway test network; a
	# real deployment uses scram-sha-256 and per-host lines (docs/scaling.md).
	cat >"$SC/db1/pg/pg_hba.conf" <<-EOF
	local all         all              trust
	host  all         all   $NET.0/24  trust
	host  replication all   $NET.0/24  trust
	EOF
}

replica_create() {
	mkdir -m 0700 "$SC/db2/pg"
	chown postgres:postgres "$SC/db2/pg"
	nsx db2 setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$SC" \
		"$(pgbin)/pg_basebackup" -R -X stream -c fast -D "$SC/db2/pg" -h "$(ip_of db1)" \
		-U postgres >>"$SC/log/basebackup.log" 2>&1
}

# pq HOST SQL: one query as the superuser on HOST's cluster (from the bridge).
pq() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$(ip_of "$1")" -U postgres -d kiln -c "$2"
}

# q SQL: one query as kiln on the primary.
q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$(ip_of db1)" -U kiln -d kiln -c "$1"
}

streaming() {
	[ "$(pq db1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] &&
		[ "$(pq db2 "SELECT pg_is_in_recovery()")" = t ]
}

# caught_up: the replica has replayed everything the primary wrote so far.
caught_up() {
	local lsn
	lsn=$(pq db1 "SELECT pg_current_wal_lsn()")
	[ "$(pq db2 "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ]
}

# ---------------------------------------------------------------- Redis

rc() {
	redis-cli -h "$(ip_of "$1")" -p "${2:-6379}" "${@:3}"
}

# sentinel_master_is HOST: every Sentinel names HOST's address as the master.
sentinel_master_is() {
	local s
	for s in $SENTINEL_HOSTS; do
		[ "$(rc "$s" 26379 SENTINEL get-master-addr-by-name kiln | head -n 1)" = "$(ip_of "$1")" ] ||
			return 1
	done
}

# sentinels_ready: each Sentinel knows the two others and the replica.
sentinels_ready() {
	local s
	for s in $SENTINEL_HOSTS; do
		[ "$(rc "$s" 26379 SENTINEL master kiln | awk 'p { print; exit } $0 == "num-other-sentinels" { p = 1 }')" = 2 ] ||
			return 1
		[ "$(rc "$s" 26379 SENTINEL master kiln | awk 'p { print; exit } $0 == "num-slaves" { p = 1 }')" = 1 ] ||
			return 1
	done
}

# ---------------------------------------------------------------- memcached

# mc_items HOST: curr_items of HOST's memcached.
mc_items() {
	python3 - "$(ip_of "$1")" <<-'PY'
	import socket, sys
	s = socket.create_connection((sys.argv[1], 11211), timeout=2)
	s.sendall(b"stats\r\n")
	buf = b""
	while not buf.endswith(b"END\r\n"):
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    buf += chunk
	for line in buf.decode().split("\r\n"):
	    f = line.split()
	    if len(f) == 3 and f[1] == "curr_items":
	        print(f[2])
	PY
}

# ---------------------------------------------------------------- apps

# app_conf HOST: the host's kiln.conf, as an operator would write it for this
# topology (docs/scaling.md, "Topologies").
app_conf() {
	local h=$1
	cat <<-EOF
	# Generated by tests/e2e/scale.bats for app host $h ($(ip_of "$h")).
	[server]
	workers = 2
	run_dir = $SC/$h/run
	request_timeout = 30s
	allow_from = $(ip_of lb)

	[log]
	format = json
	level = info
	access = on

	[database]
	url = postgresql://kiln@$(ip_of db1):5432/kiln
	replica_urls = postgresql://kiln@$(ip_of db2):5432/kiln
	replica_retry = 2s

	[redis]
	sentinels = $(ip_of app1):26379 $(ip_of app2):26379 $(ip_of db1):26379
	sentinel_master = kiln

	[memcached]
	servers = $(ip_of mc1):11211,$(ip_of mc2):11211

	[health]
	disk_path = $SC/$h

	[metrics]
	cache = 0s

	[auth]
	jwt_key_file = $SC/secrets/jwt.key
	ip_rate = 100000
	ip_period = 60s
	ip_burst = 100000
	argon2_memory = 8M
	argon2_iterations = 1

	[worker]
	listen = on
	poll_interval = 200ms
	heartbeat = 300ms
	lease_ttl = 3s
	test_kinds = on
	EOF
}

# app_start HOST APP: one program of an app host (--listen on the host's
# address; the worker has no socket).
app_start() {
	local h=$1 a=$2
	local -a listen=()
	[ "$a" = worker ] || listen=(--listen "$(ip_of "$h"):${APP_PORT[$a]}")
	spawn "$h-$a" "$h" "$KILN_BUILD/kiln-$a" -c "$SC/$h/kiln.conf" "${listen[@]}"
	wait_until 10 test -e "$SC/$h/run/$a.stats"
}

# fcgi FROM HOST PORT PATH: a FastCGI GET of PATH sent from FROM's namespace
# straight to HOST:PORT (cgi-fcgi), printing what came back (nothing when
# the connection was closed unanswered).
fcgi() {
	local from=$1 h=$2 port=$3 path=$4
	nsx "$from" env -i REQUEST_METHOD=GET DOCUMENT_URI="$path" REQUEST_URI="$path" \
		SCRIPT_NAME="$path" QUERY_STRING= SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR="$(ip_of "$from")" \
		timeout 5 cgi-fcgi -bind -connect "$(ip_of "$h"):$port" 2>/dev/null || true
}

# refused_total HOST: kiln_server_refused_connections_total summed over
# HOST's programs, read from its kiln-metrics (asked from the balancer).
refused_total() {
	fcgi lb "$1" "${APP_PORT[metrics]}" /metrics | tr -d '\r' |
		awk '/^kiln_server_refused_connections_total[ {]/ { s += $NF; n++ } END { if (n) print s + 0; else print "none" }'
}

# ---------------------------------------------------------------- nginx

# lb_render: $SC/lb/nginx.conf — the maps and log format of nginx/kiln.conf
# (limit_req zones keyed on "" so one test client is never throttled), an
# upstream per app over both app hosts, and the production locations of
# nginx/snippets/kiln-locations.conf with each `unix:/run/kiln/<app>.sock`
# replaced by the upstream `kiln_<app>`: exactly the edit docs/scaling.md
# asks of an operator.
lb_render() {
	local d=$SC/lb a h
	mkdir -p "$d/snippets" "$d/tmp"
	for f in "$REPO"/nginx/snippets/*.conf; do
		sed -e 's#unix:/run/kiln/\([a-z]*\)\.sock#kiln_\1#' \
			-e "s#^\\([[:space:]]*include[[:space:]]\\{1,\\}\\)snippets/#\\1$d/snippets/#" \
			-e "s#/usr/local/share/kiln/www/#$REPO/www/#" "$f" >"$d/snippets/${f##*/}"
	done
	{
		cat <<-EOF
		# Generated by tests/e2e/scale.bats. Do not edit.
		user root root;
		daemon off;
		worker_processes 2;
		pid $d/nginx.pid;
		error_log $SC/log/nginx-error.log warn;
		events { worker_connections 1024; }
		http {
		    default_type application/octet-stream;
		    server_tokens off;
		    client_body_temp_path $d/tmp/client_body;
		    fastcgi_temp_path $d/tmp/fastcgi;
		    proxy_temp_path $d/tmp/proxy;
		    uwsgi_temp_path $d/tmp/uwsgi;
		    scgi_temp_path $d/tmp/scgi;
		EOF
		# The http-level part of the production site: maps, log format, zones.
		awk '/^server \{/ { exit } { print }' "$REPO/nginx/kiln.conf" |
			sed -e 's#^\(limit_req_zone[[:space:]]\{1,\}\)\$binary_remote_addr #\1"" #'
		# Which host served: the upstream address and status of every try.
		cat <<-'EOF'
		    log_format scale '$msec|$request_method|$uri|$status|$upstream_addr|$upstream_status';
		EOF
		for a in api auth health metrics admin; do
			echo "    upstream kiln_$a {"
			for h in $APP_HOSTS; do
				echo "        server $(ip_of "$h"):${APP_PORT[$a]:-9005} max_fails=1 fail_timeout=${FAIL_TIMEOUT}s;"
			done
			echo "    }"
		done
		cat <<-EOF
		    # Retry on another host only when the request never reached an
		    # app (connect error) or for idempotent methods (nginx's default
		    # without non_idempotent): a POST that an app may have run is
		    # never sent twice.
		    fastcgi_next_upstream error timeout;
		    fastcgi_next_upstream_tries 2;
		    server {
		        listen $(ip_of lb):80;
		        server_name _;
		        access_log $SC/log/lb-access.log scale;
		        include $d/snippets/kiln-headers.conf;
		        include $d/snippets/kiln-errors.conf;
		        include $d/snippets/kiln-locations.conf;
		    }
		    # The same site over app1 alone: the one-host capacity figure.
		    upstream kiln_api_app1 { server $(ip_of app1):${APP_PORT[api]}; }
		    server {
		        listen $(ip_of lb):81;
		        server_name _;
		        access_log $SC/log/lb1-access.log scale;
		        location /api/ {
		            fastcgi_pass kiln_api_app1;
		            include $d/snippets/kiln-fastcgi.conf;
		        }
		    }
		}
		EOF
	} >"$d/nginx.conf"
}

lb_start() {
	lb_render
	nsx lb nginx -t -q -c "$SC/lb/nginx.conf" -e "$SC/log/nginx-error.log" >>"$SC/log/nginx.log" 2>&1 ||
		return 1
	spawn nginx lb nginx -c "$SC/lb/nginx.conf" -e "$SC/log/nginx-error.log"
	wait_until 10 curl -s -o /dev/null --max-time 1 "http://$(ip_of lb)/health/live"
}

# upstream_counts LOG FROM_MS: "addr count" of the final upstream of each
# request logged since FROM_MS (epoch ms), one line per app host.
upstream_counts() {
	awk -F'|' -v from="$2" '$1 * 1000 >= from {
		n = split($5, t, ", "); c[t[n]]++
	} END { for (k in c) print k, c[k] }' "$1" | sort
}

# ---------------------------------------------------------------- HTTP

# http METHOD PATH [curl args...]: through the balancer; sets status_code, body.
http() {
	local method=$1 path=$2
	shift 2
	local out
	out=$(mktemp)
	status_code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" --max-time 20 "$@" \
		"$BASE$path") || status_code=000
	body=$(cat "$out")
	rm -f "$out"
}

json() {
	printf '%s' "$body" | jq -r "$1"
}

# post_json PATH JSON [TOKEN] [curl args...]
post_json() {
	local path=$1 data=$2 token=${3:--}
	shift 2
	(($# == 0)) || shift
	local -a a=(-H 'Content-Type: application/json' --data-binary "$data")
	[ "$token" = - ] || a+=(-H "Authorization: Bearer $token")
	http POST "$path" "${a[@]}" "$@"
}

# account VAR ROLE: register and sign in through the balancer; appends
# VAR_TOKEN and VAR_ID to $BATS_FILE_TMPDIR/accounts.env.
account() {
	local var=$1 role=$2 email pw id
	email="${var,,}-$$-$RANDOM@example.com"
	pw="Kq7-scale-$(tr -dc 'bcdfghjkmnpqrstvwxz' </dev/urandom | head -c 10)-orbit"
	post_json /auth/register "$(jq -cn --arg e "$email" --arg p "$pw" '{email:$e, password:$p, display_name:"Scale Tester"}')"
	[ "$status_code" = 201 ] || {
		echo "register: HTTP $status_code $body" >&2
		return 1
	}
	id=$(json .id)
	[ "$role" = user ] || q "UPDATE users SET role = '$role' WHERE id = $id" >/dev/null
	post_json /auth/login "$(jq -cn --arg e "$email" --arg p "$pw" '{email:$e, password:$p}')"
	[ "$status_code" = 200 ] || {
		echo "login: HTTP $status_code $body" >&2
		return 1
	}
	printf '%s_TOKEN=%q\n%s_ID=%q\n' "$var" "$(json .access_token)" "$var" "$id" \
		>>"$BATS_FILE_TMPDIR/accounts.env"
}

load_accounts() {
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/accounts.env"
}

# wrk_run SECONDS URL [CONNECTIONS]: a bounded wrk run from the host side of
# the bridge; sets WRK_REQS, WRK_RPS, WRK_NON2XX, WRK_SOCKERR (connect, read,
# write and timeout errors summed) and WRK_OUT.
wrk_run() {
	WRK_OUT=$(wrk -t 2 -c "${3:-8}" -d "$1s" --timeout 5s "$2" 2>&1)
	WRK_REQS=$(awk '/requests in/ { print $1 }' <<<"$WRK_OUT")
	WRK_RPS=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$WRK_OUT")
	WRK_NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$WRK_OUT")
	WRK_NON2XX=${WRK_NON2XX:-0}
	WRK_SOCKERR=$(awk '/Socket errors:/ {
		gsub(/,/, ""); print $4 + $6 + $8 + $10 }' <<<"$WRK_OUT")
	WRK_SOCKERR=${WRK_SOCKERR:-0}
	[ -n "$WRK_REQS" ]
}
