#!/usr/bin/env bats
# kilnctl backup and restore against the stack's real PostgreSQL and Redis:
# backup -> destroy data -> restore -> the same row counts and the same
# content checksums per table; a tampered dump or a missing checksum is
# refused; a non-empty target needs --force; retention keeps `keep` dumps
# and drops those older than max_age; the Redis snapshot copy.

bats_require_minimum_version 1.5.0

setup_file() {
	load helpers
	stack_up # no app: PostgreSQL, Redis, memcached and nginx
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" seed --exercises 40 --users 6 >/dev/null
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
	BK=$T/backups
	# The stack's config plus a [backup] section of this test's own.
	cp "$STACK/kiln.conf" "$T/kiln.conf"
	printf '\n[backup]\ndir = %s\nkeep = 3\n' "$BK" >>"$T/kiln.conf"
}

ctl() {
	"$KILN_BUILD/kilnctl" -c "$T/kiln.conf" "$@"
}

# q SQL [DB]: one query, unaligned, tuples only.
q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$STACK/sock" -U kiln -d "${2:-kiln}" -c "$1"
}

createdb_for_test() {
	psql -X -q -v ON_ERROR_STOP=1 -h "$STACK/sock" -U postgres -d postgres \
		-c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 OWNER kiln" >/dev/null
}

# fingerprint [DB]: "table rows md5" for every table in public, the md5 over
# all rows in primary-key order (the whole row as text).
fingerprint() {
	local db=${1:-kiln} t pk
	for t in $(q "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE relkind = 'r' AND nspname = 'public' ORDER BY 1" "$db"); do
		pk=$(q "SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.i)
			FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, i)
			JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
			WHERE x.indrelid = 'public.$t'::regclass AND x.indisprimary" "$db")
		echo "$t $(q "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY ${pk:-r::text}), ''))
			FROM public.$t r" "$db")"
	done
}

# The newest dump in $BK.
newest() {
	ls -1 "$BK"/kiln-*.dump | sort | tail -n 1
}

@test "backup writes a custom-format dump named by UTC time with a sha256sum-compatible checksum" {
	run ctl backup
	assert_success
	assert_output --partial "backup $BK/kiln-"
	assert_output --partial "redis copy skipped"
	f=$(newest)
	[[ $(basename "$f") =~ ^kiln-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?\.dump$ ]]
	# pg_dump's custom format starts with PGDMP.
	[ "$(head -c 5 "$f")" = PGDMP ]
	(cd "$BK" && sha256sum -c "$(basename "$f").sha256")
	[ "$(stat -c %a "$BK")" = 700 ]
	[ "$(stat -c %a "$f")" = 600 ]
	# No temporary file stays behind.
	[ -z "$(find "$BK" -name '.*' -type f)" ]
}

@test "backup -> destroy data -> restore --force gives the same row counts and content" {
	before=$(fingerprint)
	[ "$(q 'SELECT count(*) FROM exercises')" -ge 40 ]
	ctl backup
	f=$(newest)
	q "DELETE FROM user_progress; DELETE FROM exercises WHERE id % 2 = 0; DROP TABLE sessions CASCADE"
	[ "$(fingerprint)" != "$before" ]
	run ctl restore "$f"
	assert_failure 1
	assert_output --partial "is not empty"
	run ctl restore "$f" --force
	assert_success
	assert_output --partial "checksum ok"
	assert_output --regexp "public\.exercises +[0-9]+"
	[ "$(fingerprint)" = "$before" ]
	# The report's counts are the real ones.
	n=$(q 'SELECT count(*) FROM users')
	assert_output --regexp "public\.users +$n"$'(\n|$)'
}

@test "restore into an empty database named by --database reports every table" {
	ctl backup
	createdb_for_test restored1
	run ctl restore "$(newest)" --database restored1
	assert_success
	assert_output --partial "restored into restored1"
	[ "$(fingerprint restored1)" = "$(fingerprint)" ]
	ntables=$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
	assert_output --partial "restored into restored1: $ntables tables"
	# --database also takes a conninfo string.
	createdb_for_test restored2
	run ctl restore "$(newest)" --database "host=$STACK/sock user=kiln dbname=restored2"
	assert_success
	[ "$(fingerprint restored2)" = "$(fingerprint)" ]
}

@test "a tampered dump, a tampered checksum and a missing checksum are refused" {
	ctl backup
	f=$(newest)
	createdb_for_test tampered
	cp "$f" "$T/x.dump"
	cp "$f.sha256" "$T/x.dump.sha256"
	printf 'X' | dd of="$T/x.dump" bs=1 seek=2000 conv=notrunc status=none
	run ctl restore "$T/x.dump" --database tampered
	assert_failure 1
	assert_output --partial "checksum mismatch"
	# Nothing reached the database.
	[ "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" tampered)" = 0 ]
	cp "$f" "$T/x.dump"
	first=$(head -c 1 "$T/x.dump.sha256")
	sed -i "s/^./$([ "$first" = 0 ] && echo f || echo 0)/" "$T/x.dump.sha256"
	run ! sh -c 'cd "$1" && sha256sum -c --status x.dump.sha256' sh "$T"
	run ctl restore "$T/x.dump" --database tampered
	assert_failure 1
	assert_output --partial "checksum mismatch"
	rm "$T/x.dump.sha256"
	run ctl restore "$T/x.dump" --database tampered
	assert_failure 1
	assert_output --partial "refusing to restore an unverified dump"
	[ "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" tampered)" = 0 ]
}

@test "retention keeps the newest 'keep' dumps and drops those older than max_age" {
	for i in 1 2 3 4 5; do ctl backup >/dev/null; done
	[ "$(ls "$BK"/kiln-*.dump | wc -l)" = 3 ]
	[ "$(ls "$BK"/kiln-*.dump.sha256 | wc -l)" = 3 ]
	newest_before=$(newest)
	# An old dump (by its name's time) goes by age even within `keep`.
	cp "$newest_before" "$BK/kiln-20000101T000000Z.dump"
	cp "$newest_before.sha256" "$BK/kiln-20000101T000000Z.dump.sha256"
	echo unrelated >"$BK/notes.txt"
	printf 'keep = 10\nmax_age = 24h\n' >"$T/ret"
	sed -i '/^keep = 3$/d' "$T/kiln.conf"
	cat "$T/ret" >>"$T/kiln.conf"
	run ctl backup
	assert_success
	assert_output --partial "removed $BK/kiln-20000101T000000Z.dump"
	[ ! -e "$BK/kiln-20000101T000000Z.dump" ]
	[ ! -e "$BK/kiln-20000101T000000Z.dump.sha256" ]
	[ "$(ls "$BK"/kiln-*.dump | wc -l)" = 4 ]
	# Files that are not backups are never touched.
	[ "$(cat "$BK/notes.txt")" = unrelated ]
}

@test "with [backup] redis_rdb set, a BGSAVE snapshot is copied beside the dump" {
	dir=$(redis-cli -s "$STACK/sock/redis.sock" CONFIG GET dir | sed -n 2p)
	name=$(redis-cli -s "$STACK/sock/redis.sock" CONFIG GET dbfilename | sed -n 2p)
	redis-cli -s "$STACK/sock/redis.sock" SET kiln:backup-test "$BATS_TEST_NUMBER" >/dev/null
	printf 'redis_rdb = %s/%s\n' "$dir" "$name" >>"$T/kiln.conf"
	run ctl backup
	assert_success
	assert_output --partial "redis $BK/kiln-"
	rdb=$(ls -1 "$BK"/kiln-*.rdb | sort | tail -n 1)
	[ "${rdb%.rdb}" = "$(newest | sed 's/\.dump$//')" ]
	[ "$(head -c 5 "$rdb")" = REDIS ]
	grep -q 'kiln:backup-test' "$rdb"
	(cd "$BK" && sha256sum -c "$(basename "$rdb").sha256")
}

@test "the password reaches pg_dump in its environment, never in its argv" {
	# A fake pg_dump first in PATH records its argv and PGPASSWORD, then
	# fails: the backup must fail too and leave nothing behind.
	mkdir -p "$T/bin"
	cat >"$T/bin/pg_dump" <<-EOF
	#!/bin/sh
	printf '%s\n' "\$@" >"$T/argv"
	printf '%s' "\$PGPASSWORD" >"$T/pw"
	exit 3
	EOF
	chmod +x "$T/bin/pg_dump"
	echo 's3cret-pw' >"$T/db.pw"
	KILN_DATABASE_PASSWORD_FILE=$T/db.pw PATH=$T/bin:$PATH run ctl backup
	assert_failure 1
	assert_output --partial "pg_dump exited with status 3"
	[ "$(cat "$T/pw")" = s3cret-pw ]
	run ! grep -q s3cret "$T/argv"
	grep -q -- '--format=custom' "$T/argv"
	[ -z "$(ls -A "$BK" 2>/dev/null)" ]
}
