#!/usr/bin/env bats
# docs/deploy.md, executed: every ```sh block runs, in order, in one bash
# (set -euo pipefail), except those whose first line is
# "# not run in tests: <reason>". The paths of the default layout are moved
# into a DESTDIR tree and the database onto a test stack; the mapping is
# described at the end of docs/deploy.md and implemented by the functions
# in prelude() below.

setup_file() {
	load helpers
	stack_up # PostgreSQL, Redis, memcached (and nginx); no app
}

teardown_file() {
	load helpers
	stack_attach
	stack_down
}

setup() {
	load helpers
	stack_attach
	T=$BATS_TEST_TMPDIR
	D=$T/root
	DOC=$REPO/docs/deploy.md
}

# blocks FILE: every ```sh block as "<start line>\t<first line>", and the
# block's text in $T/blocks/<n>.
blocks() {
	mkdir -p "$T/blocks"
	awk -v dir="$T/blocks" '
		/^```sh$/ { n++; on = 1; start = NR + 1; out = sprintf("%s/%03d", dir, n); first = ""; next }
		on && /^```$/ { on = 0; printf "%d\t%s\n", start, first; close(out); next }
		on { if (first == "") first = $0; print > out }' "$1"
}

# The functions and variables every block runs with (see docs/deploy.md,
# "How tests/e2e/deploy-doc.bats runs this page").
prelude() {
	cat <<-EOF
	set -euo pipefail
	cd "$REPO"
	D="$D"
	export PGHOST="$STACK/sock" PGUSER=postgres
	make() { command make BUILD="$KILN_BUILD" DESTDIR="$D" "\$@"; }
	sudo() {
	    while [ "\${1:-}" = -u ]; do shift 2; done
	    "\$@"
	}
	systemd-sysusers() { command systemd-sysusers --root="$D" "\$@"; }
	systemd-tmpfiles() { command systemd-tmpfiles --root="$D" "\$@"; }
	systemctl() {
	    case \${1:-} in
	    enable | disable) command systemctl --root="$D" "\$@" ;;
	    *) echo "deploy-doc: systemctl \$1 needs systemd as PID 1; mark the block" >&2; return 1 ;;
	    esac
	}
	kilnctl() {
	    local c rc=0 f
	    # Its compiled-in migrations directory is outside the tree.
	    if [ "\${1:-}" = migrate ]; then set -- migrate --dir "$D/usr/local/share/kiln/sql" "\${@:2}"; fi
	    c=\$(mktemp -d)
	    for f in "$D"/etc/kiln/credentials/*; do
	        [ -e "\$f" ] && cp "\$f" "\$c/kiln_\${f##*/}"
	    done
	    CREDENTIALS_DIRECTORY=\$c KILN_BACKUP_DIR="$D/var/lib/kiln/backup" \\
	        "$D/usr/local/bin/kilnctl" -c "$D/etc/kiln/kiln.conf" "\$@" || rc=\$?
	    rm -rf "\$c"
	    return \$rc
	}
	EOF
}

# The block's commands with the default layout moved into $D and
# /run/postgresql onto the stack.
relocate() {
	sed -e 's#/usr/local\([/ ]\|$\)#@D@/usr/local\1#g' \
		-e 's#/etc/\(kiln\|nginx\|apache2\)\([/ ]\|$\)#@D@/etc/\1\2#g' \
		-e 's#/var/lib/kiln#@D@/var/lib/kiln#g' \
		-e "s#/run/postgresql#$STACK/sock#g" \
		-e "s#@D@#$D#g" "$1"
}

@test "every runnable command of docs/deploy.md succeeds, in order" {
	[ "$(id -u)" = 0 ] || skip "systemd-tmpfiles --root gives directories to the kiln user: needs root"
	blocks "$DOC" >"$T/index"
	total=$(wc -l <"$T/index")
	[ "$total" -ge 20 ]
	{
		prelude
		n=0 ran=0
		while IFS=$'\t' read -r line first; do
			n=$((n + 1))
			case $first in
			"# not run in tests:"*) continue ;;
			"# not run"* | "#not run"*)
				echo "deploy-doc: block at docs/deploy.md:$line: malformed skip marker" >&2
				return 1
				;;
			esac
			ran=$((ran + 1))
			printf 'echo "---- docs/deploy.md:%s" >&2\n' "$line"
			relocate "$T/blocks/$(printf %03d "$n")"
		done <"$T/index"
		echo 'echo "---- done" >&2'
	} >"$T/script.sh"
	ran=$(grep -c '^echo "---- docs/deploy.md:' "$T/script.sh")
	[ "$ran" -ge 10 ]
	# Every skipped block says why.
	run grep -c $'\t# not run in tests: [a-z]' "$T/index"
	[ "$output" = "$((total - ran))" ]
	# create-admin reads its password from standard input.
	printf 'Kq7-doc-tangerine-orbit-%s\n' "$RANDOM" >"$T/stdin"
	run bash "$T/script.sh" <"$T/stdin"
	echo "$output" | tail -n 40
	assert_success
	assert_output --partial "---- done"
	# What the blocks did is really there.
	[ -x "$D/usr/local/bin/kilnctl" ]
	grep -q '^kiln:' "$D/etc/passwd"
	[ -s "$D/etc/kiln/credentials/jwt.key" ]
	grep -q '^jwt_key_file = kiln_jwt.key$' "$D/etc/kiln/kiln.conf"
	[ -L "$D/etc/systemd/system/kiln.target.wants/kiln@api.socket" ]
	[ -L "$D/etc/systemd/system/timers.target.wants/kiln-backup.timer" ]
	grep -q 'server_name kiln.example.org' "$D/etc/nginx/sites-available/kiln.conf"
	ls "$D"/var/lib/kiln/backup/kiln-*.dump
	assert_output --partial "restored into kiln_drill"
	[ "$(psql -X -qAt -h "$STACK/sock" -U kiln -d kiln -c \
		"SELECT role FROM users WHERE email = 'admin@example.org'")" = admin ]
	# The drill's scratch database is gone again.
	[ -z "$(psql -X -qAt -h "$STACK/sock" -U postgres -d postgres -c \
		"SELECT 1 FROM pg_database WHERE datname = 'kiln_drill'")" ]
}

@test "a failing command in a runnable block fails the run" {
	printf '# deploy\n\n```sh\ntrue\n```\n\n```sh\nfalse\necho after\n```\n' >"$T/bad.md"
	blocks "$T/bad.md" >"$T/index"
	[ "$(wc -l <"$T/index")" = 2 ]
	{
		prelude
		relocate "$T/blocks/001"
		relocate "$T/blocks/002"
	} >"$T/bad.sh"
	run bash "$T/bad.sh"
	assert_failure
	refute_output --partial after
}

@test "the relocation moves the default layout, and only it" {
	printf '%s\n' 'cat /usr/local/share/x /etc/kiln/kiln.conf /etc/nginx/a /var/lib/kiln/b' \
		'ls /usr/localfoo /etc/kilnx /etc/hosts' 'url = host=/run/postgresql dbname=kiln' >"$T/in"
	run relocate "$T/in"
	assert_line "cat $D/usr/local/share/x $D/etc/kiln/kiln.conf $D/etc/nginx/a $D/var/lib/kiln/b"
	assert_line "ls /usr/localfoo /etc/kilnx /etc/hosts"
	assert_line "url = host=$STACK/sock dbname=kiln"
}
