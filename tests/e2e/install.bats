#!/usr/bin/env bats
# shellcheck disable=SC2154 # status_code, body: set by the helpers
# `make install` / `make uninstall` into a DESTDIR: the tree, a kept config,
# an exact uninstall; the installed systemd units pass `systemd-analyze
# verify` and rate 2.5 or lower in `systemd-analyze security --offline`;
# the installed programs, started with the installed units' command lines
# under systemd-socket-activate (and spawn-fcgi for kiln-spawn@.service),
# serve the health, auth and api smoke through the stack's nginx.

bats_require_minimum_version 1.5.0

setup_file() {
	load helpers
	T=$(mktemp -d /tmp/kiln-inst.XXXXXX)
	echo "$T" >"$BATS_FILE_TMPDIR/t"
	# One install shared by the read-only tests below.
	make -C "$REPO" BUILD="$KILN_BUILD" install DESTDIR="$T/d" prefix=/usr/local \
		>"$T/install.log" 2>&1 || {
		tail -n 30 "$T/install.log" >&3
		return 1
	}
}

teardown_file() {
	load helpers
	T=$(cat "$BATS_FILE_TMPDIR/t")
	stack_attach 2>/dev/null && stack_down
	for f in "$T"/pid.*; do
		[ -e "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
	done
	sleep 0.5
	for f in "$T"/pid.*; do
		[ -e "$f" ] || continue
		kill -9 "$(cat "$f")" 2>/dev/null || true
	done
	rm -rf "$T"
}

setup() {
	load helpers
	T=$(cat "$BATS_FILE_TMPDIR/t")
	D=$T/d
	UNITS=$D/usr/local/lib/systemd/system
}

# make install/uninstall into DESTDIR $1 (extra make arguments follow).
mk() {
	local dest=$1 target=$2
	shift 2
	make -C "$REPO" BUILD="$KILN_BUILD" "$target" DESTDIR="$dest" prefix=/usr/local "$@"
}

# Every file and symlink under $1, relative, sorted.
tree() {
	(cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
}

# The tree `make install DESTDIR=X prefix=/usr/local` must produce.
expected_tree() {
	local a f
	{
		for a in $(cd "$REPO/apps" && ls -d */ | tr -d /); do
			[ "$a" = ctl ] || echo "usr/local/libexec/kiln/kiln-$a"
		done
		echo usr/local/bin/kilnctl
		echo usr/local/libexec/kiln/ufw-setup
		echo etc/kiln/kiln.conf
		echo usr/local/share/kiln/kiln.conf.example
		for f in "$REPO"/sql/*.sql; do echo "usr/local/share/kiln/sql/${f##*/}"; done
		(cd "$REPO" && find www -type f ! -name '.*') | sed 's|^|usr/local/share/kiln/|'
		for f in "$REPO"/systemd/*.service "$REPO"/systemd/*.socket "$REPO"/systemd/*.target \
			"$REPO"/systemd/*.timer; do
			echo "usr/local/lib/systemd/system/${f##*/}"
		done
		echo usr/local/lib/sysusers.d/kiln.conf
		echo usr/local/lib/tmpfiles.d/kiln.conf
		for f in "$REPO"/nginx/*.conf "$REPO"/apache/*.conf; do
			[ -e "$f" ] && echo "usr/local/share/kiln/${f#"$REPO"/}"
		done
		for f in "$REPO"/nginx/snippets/*.conf; do echo "etc/nginx/snippets/${f##*/}"; done
		for f in "$REPO"/ufw/*; do [ -e "$f" ] && echo "etc/ufw/applications.d/${f##*/}"; done
		for f in "$REPO"/certbot/*; do
			[ -e "$f" ] && echo "etc/letsencrypt/renewal-hooks/deploy/${f##*/}"
		done
		for f in "$REPO"/README.md "$REPO"/docs/*.md; do echo "usr/local/share/doc/kiln/${f##*/}"; done
		echo usr/local/share/man/man1/kilnctl.1
		echo usr/local/share/man/man5/kiln.conf.5
	} | sort
}

@test "make install DESTDIR=... prefix=/usr/local produces the production tree" {
	tree "$D" >"$T/got"
	expected_tree >"$T/want"
	diff -u "$T/want" "$T/got"
	# The units this change ships are all there.
	for u in kiln@.socket kiln@.service kiln-worker.service kiln.target kiln-backup.service \
		kiln-backup.timer kiln-spawn@.service; do
		[ -f "$UNITS/$u" ]
	done
	[ "$(stat -c %a "$D/usr/local/libexec/kiln/kiln-health")" = 755 ]
	[ "$(stat -c %a "$D/usr/local/bin/kilnctl")" = 755 ]
	[ "$(stat -c %a "$D/etc/kiln/kiln.conf")" = 640 ]
	[ "$(stat -c %a "$D/etc/kiln/credentials")" = 700 ]
	[ "$(stat -c %a "$UNITS/kiln@.service")" = 644 ]
	# The config starts as the example, every key at its default.
	cmp "$D/etc/kiln/kiln.conf" "$REPO/etc/kiln.conf.example"
	"$D/usr/local/bin/kilnctl" -c "$D/etc/kiln/kiln.conf" check-config
	# The man pages are the repository's and render.
	man -l "$D/usr/local/share/man/man5/kiln.conf.5" >/dev/null
}

@test "the installed units, tmpfiles.d and kilnctl follow libexecdir, sysconfdir and runstatedir" {
	# Another layout, built in a copy of the build directory: kilnctl carries
	# its default config and migrations directory.
	cp -a "$KILN_BUILD" "$T/build"
	make -C "$REPO" BUILD="$T/build" install DESTDIR="$T/alt" prefix=/usr sysconfdir=/etc/alt \
		runstatedir=/var/run localstatedir=/srv >"$T/alt.log" 2>&1 || {
		tail -n 20 "$T/alt.log"
		false
	}
	u=$T/alt/usr/lib/systemd/system
	grep -q '^ExecStart=/usr/libexec/kiln/kiln-%i -c /etc/alt/kiln/kiln.conf$' "$u/kiln@.service"
	grep -q '^ListenStream=/var/run/kiln/%i.sock$' "$u/kiln@.socket"
	grep -q '^ExecStart=/usr/bin/kilnctl -c /etc/alt/kiln/kiln.conf backup$' "$u/kiln-backup.service"
	grep -q '^LoadCredential=kiln:/etc/alt/kiln/credentials$' "$u/kiln-worker.service"
	grep -qE '^d +/var/run/kiln ' "$T/alt/usr/lib/tmpfiles.d/kiln.conf"
	grep -qE '^d +/srv/lib/kiln/backup ' "$T/alt/usr/lib/tmpfiles.d/kiln.conf"
	grep -q '^run_dir = /var/run/kiln$' "$T/alt/etc/alt/kiln/kiln.conf"
	grep -q '^dir = /srv/lib/kiln/backup$' "$T/alt/etc/alt/kiln/kiln.conf"
	# /var/run/kiln is right here; /run/kiln alone (after = or a space) is not.
	run ! grep -rqE '/usr/local|/etc/kiln|(^|[^a-z])/run/kiln' "$u" "$T/alt/usr/lib/tmpfiles.d"
	run "$T/build/kilnctl" help
	assert_output --partial "else /etc/alt/kiln/kiln.conf"
}

@test "a second install keeps an edited config and refreshes the rest" {
	I=$T/again
	mk "$I" install >/dev/null
	printf '\n# edited by the admin\n' >>"$I/etc/kiln/kiln.conf"
	cp "$I/etc/kiln/kiln.conf" "$T/edited"
	echo stale >"$I/usr/local/share/kiln/kiln.conf.example"
	mk "$I" install >/dev/null
	cmp "$I/etc/kiln/kiln.conf" "$T/edited"
	cmp "$I/usr/local/share/kiln/kiln.conf.example" "$REPO/etc/kiln.conf.example"
}

@test "make uninstall removes what install added and nothing else" {
	U=$T/un
	mkdir -p "$U/usr/local/bin" "$U/usr/local/share/kiln" "$U/etc/nginx/snippets"
	echo other >"$U/usr/local/bin/other-tool"
	echo notes >"$U/usr/local/share/kiln/local-notes"
	echo mine >"$U/etc/nginx/snippets/site-own.conf"
	tree "$U" >"$T/before"
	mk "$U" install >/dev/null
	[ "$(tree "$U" | wc -l)" -gt 30 ]
	run mk "$U" uninstall
	assert_success
	tree "$U" >"$T/after"
	diff -u "$T/before" "$T/after"
	# kiln's own directories are gone, unless something else is in them.
	[ ! -e "$U/usr/local/libexec/kiln" ]
	[ ! -e "$U/usr/local/share/doc/kiln" ]
	[ ! -e "$U/etc/kiln" ]
	[ -d "$U/usr/local/share/kiln" ]
	[ -z "$(find "$U/usr/local/share/kiln" -mindepth 1 ! -name local-notes)" ]
}

@test "make uninstall keeps an edited config and the secrets" {
	U=$T/keep
	mk "$U" install >/dev/null
	echo '# mine' >>"$U/etc/kiln/kiln.conf"
	echo secret >"$U/etc/kiln/credentials/jwt.key"
	echo '# mine' >>"$U/etc/nginx/snippets/kiln-headers.conf"
	run mk "$U" uninstall
	assert_success
	assert_output --partial "kept $U/etc/kiln/kiln.conf (changed since install)"
	tail -n 1 "$U/etc/kiln/kiln.conf" | grep -q '^# mine$'
	[ "$(cat "$U/etc/kiln/credentials/jwt.key")" = secret ]
	[ -f "$U/etc/nginx/snippets/kiln-headers.conf" ]
	[ ! -e "$U/usr/local/bin/kilnctl" ]
	[ "$(tree "$U" | wc -l)" = 3 ]
}

@test "a DESTDIR install works as an unprivileged user" {
	[ "$(id -u)" = 0 ] || skip "already unprivileged: every install here ran as $(id -un)"
	N=$T/nobody
	chmod 0711 "$T"
	mkdir -m 0777 "$N"
	# nobody may read the build, never write it: install must not rebuild.
	run setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		make -C "$REPO" BUILD="$KILN_BUILD" install DESTDIR="$N/d" prefix=/usr/local
	assert_success
	tree "$N/d" >"$T/nobody.tree"
	diff -u <(expected_tree) "$T/nobody.tree"
	[ "$(stat -c %U "$N/d/usr/local/bin/kilnctl")" = nobody ]
	run setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		make -C "$REPO" BUILD="$KILN_BUILD" uninstall DESTDIR="$N/d" prefix=/usr/local
	assert_success
	[ -z "$(tree "$N/d")" ]
}

# ---------------------------------------------------------------- systemd

# A root for systemd-analyze --root: the installed tree, the host's own
# system units (sysinit.target, ...) and the programs the units run that
# are not kiln's, copied (links would point outside the root).
analyze_root() {
	R=$T/root
	[ -d "$R" ] && return 0
	cp -a "$D" "$R"
	mkdir -p "$R/usr/lib/systemd"
	cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/"
	for b in /usr/bin/spawn-fcgi /bin/chgrp /bin/rm /bin/kill; do
		install -D -m 0755 "$(readlink -f "$b")" "$R$b"
	done
}

# The installed units, templates as instances.
installed_units() {
	local f n
	for f in "$UNITS"/*; do
		n=${f##*/}
		echo "${n/@./@health.}"
	done
}

@test "systemd-analyze verify is clean on every installed unit" {
	analyze_root
	mapfile -t units < <(installed_units)
	[ "${#units[@]}" -ge 7 ]
	run systemd-analyze verify --root="$R" --man=no "${units[@]}"
	assert_success
	assert_output ""
	# The check is real: a misspelt key and a missing program are reported.
	cp -a "$R" "$T/broken"
	sed -i 's/^PrivateTmp=yes/PrivateTmpp=yes/' "$T/broken/usr/local/lib/systemd/system/kiln-worker.service"
	run systemd-analyze verify --root="$T/broken" --man=no kiln-worker.service
	assert_output --partial "Unknown key 'PrivateTmpp'"
	rm "$T/broken/usr/local/libexec/kiln/kiln-api"
	run systemd-analyze verify --root="$T/broken" --man=no kiln@api.service
	assert_failure
	assert_output --partial "kiln-api is not executable"
}

# exposure UNIT [ROOT]: the "Overall exposure level" systemd-analyze
# security --offline gives UNIT.
exposure() {
	systemd-analyze security --offline=true --root="${2:-$R}" "$1" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}

@test "systemd-analyze security --offline rates every installed service 2.5 or lower" {
	analyze_root
	n=0
	for u in $(installed_units | grep '\.service$'); do
		level=$(exposure "$u")
		echo "$u $level"
		[ -n "$level" ]
		awk -v l="$level" 'BEGIN { exit !(l <= 2.5) }'
		n=$((n + 1))
	done
	[ "$n" -ge 4 ]
	# The parse and the bound are real: an unhardened service rates above.
	printf '[Service]\nExecStart=/bin/kill -0 1\n' >"$R/usr/local/lib/systemd/system/plain.service"
	level=$(exposure plain.service)
	rm "$R/usr/local/lib/systemd/system/plain.service"
	awk -v l="$level" 'BEGIN { exit !(l > 2.5) }'
}

# ---------------------------------------------------------------- running

# unit_value UNIT KEY: the value of KEY= in an installed unit (first one),
# %i replaced by $APP.
unit_value() {
	sed -n "s/^$2=//p" "$UNITS/$1" | head -n 1 | sed "s/%i/$APP/g"
}

# in_destdir WORDS...: the words of a unit's command line, with every
# absolute path that exists in the DESTDIR tree moved into it.
in_destdir() {
	local w
	for w in "$@"; do
		if [[ $w == /* && -e $D$w ]]; then printf '%s\n' "$D$w"; else printf '%s\n' "$w"; fi
	done
}

# start_socket_activated APP: kiln@APP.socket's ListenStream and
# kiln@APP.service's ExecStart under systemd-socket-activate, with the
# environment systemd would give it (LoadCredential= -> CREDENTIALS_DIRECTORY).
start_socket_activated() {
	local APP=$1 sock
	local -a cmd
	sock=$D$(unit_value kiln@.socket ListenStream)
	mapfile -t cmd < <(in_destdir $(unit_value kiln@.service ExecStart))
	[ "${cmd[0]}" = "$D/usr/local/libexec/kiln/kiln-$APP" ]
	# systemd-socket-activate passes on only the variables given by -E.
	local -a envargs=()
	local e
	for e in "${RUNENV[@]}"; do envargs+=(-E "$e"); done
	systemd-socket-activate "${envargs[@]}" -l "$sock" "${cmd[@]}" 2>>"$T/$APP.log" &
	echo $! >"$T/pid.$APP"
	ln -sf "$sock" "$STACK/sock/$APP.sock"
}

@test "the installed programs under the installed units' command lines serve the smoke through nginx" {
	load auth-helpers
	stack_up # PostgreSQL, Redis, memcached, nginx; no app of the stack's own
	echo "$STACK" >"$BATS_FILE_TMPDIR/stack"
	# Migrations from the installed tree: the stack applied the same ones.
	run "$D/usr/local/bin/kilnctl" -c "$STACK/kiln.conf" migrate --dir "$D/usr/local/share/kiln/sql" --status
	assert_success
	refute_output --partial pending
	# The installed config as installed, pointed at the stack by the
	# environment; the signing key as a credential, as LoadCredential= does.
	mkdir -p "$D/run/kiln" "$T/creds"
	cp "$STACK/secrets/jwt.key" "$T/creds/kiln_jwt.key"
	RUNENV=(KILN_DATABASE_URL="host=$STACK/sock dbname=kiln user=kiln"
		KILN_REDIS_ADDRESS="$STACK/sock/redis.sock" KILN_MEMCACHED_SERVERS="$STACK/sock/memcached.sock"
		KILN_SERVER_RUN_DIR="$D/run/kiln" KILN_SERVER_WORKERS=2 KILN_HEALTH_DISK_PATH="$T"
		KILN_AUTH_ARGON2_MEMORY=8M KILN_AUTH_ARGON2_ITERATIONS=1
		CREDENTIALS_DIRECTORY="$T/creds" KILN_AUTH_JWT_KEY_FILE=kiln_jwt.key)
	for app in health auth api; do start_socket_activated "$app"; done
	# kiln-spawn@.service's command line for kiln-metrics: spawn-fcgi -n.
	APP=metrics
	mapfile -t cmd < <(in_destdir $(unit_value kiln-spawn@.service ExecStart))
	for i in "${!cmd[@]}"; do [ "${cmd[i]}" != /run/kiln/metrics.sock ] || cmd[i]=$D/run/kiln/metrics.sock; done
	[ "${cmd[0]}" = spawn-fcgi ] || [ "${cmd[0]}" = /usr/bin/spawn-fcgi ]
	env "${RUNENV[@]}" "${cmd[@]}" 2>>"$T/metrics.log" &
	echo $! >"$T/pid.metrics"
	ln -sf "$D/run/kiln/metrics.sock" "$STACK/sock/metrics.sock"
	# kiln-worker.service's command line (no socket).
	mapfile -t cmd < <(in_destdir $(unit_value kiln-worker.service ExecStart))
	env "${RUNENV[@]}" "${cmd[@]}" 2>>"$T/worker.log" &
	echo $! >"$T/pid.worker"

	# health: socket activation starts kiln-health on the first request.
	wait_until 20 code_is 200 /health/ready || {
		tail -n 5 "$T"/*.log "$STACK/log/nginx-error.log"
		false
	}
	http GET /health/ready
	[ "$status_code" = 200 ]
	[ "$(json .status)" = pass ]
	# auth: register, sign in, who am I.
	EMAIL=$(new_email inst)
	PASSWORD=$(new_password)
	register_user "$EMAIL" "$PASSWORD"
	login "$EMAIL" "$PASSWORD"
	authed GET /auth/me "$ACCESS"
	[ "$status_code" = 200 ]
	[ "$(json .email)" = "$EMAIL" ]
	# api: the exercise list, and the signed-in user's progress.
	http GET '/api/v1/exercises?limit=5'
	[ "$status_code" = 200 ]
	authed GET /api/v1/me/progress "$ACCESS"
	[ "$status_code" = 200 ]
	# metrics under spawn-fcgi sees every program's scoreboard in run_dir.
	wait_until 10 code_is 200 /metrics
	http GET /metrics
	[[ $body == *'program="health"'* || $body == *'app="health"'* ]]
	# The worker is up: its scoreboard is there, its master alive.
	wait_until 10 test -e "$D/run/kiln/worker.stats"
	kill -0 "$(cat "$T/pid.worker")"
	# Every app really runs from the DESTDIR tree.
	for app in health auth api metrics; do
		pid=$(cat "$T/pid.$app")
		exe=$(readlink "/proc/$pid/exe")
		[ "$exe" = "$D/usr/local/libexec/kiln/kiln-$app" ] || {
			echo "$app: pid $pid runs $exe"
			false
		}
	done
}
