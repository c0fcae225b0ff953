#!/usr/bin/env bats
# kilnctl against the stack's real PostgreSQL: migrations (fresh, re-run,
# status, new, edited, missing, failing, concurrent), create-admin,
# gen-secret, check-config. No app runs; each migration test has a
# database of its own, chosen through KILN_DATABASE_URL.

setup_file() {
	load helpers
	stack_up
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
}

# kilnctl with the stack's config.
ctl() {
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" "$@"
}

# fresh_db: a new empty database for this test, used by ctl and q.
fresh_db() {
	DB=m$BATS_TEST_NUMBER
	psql -X -q -v ON_ERROR_STOP=1 -h "$STACK/sock" -U postgres -d postgres \
		-c "CREATE DATABASE $DB OWNER kiln" >/dev/null
	export KILN_DATABASE_URL="host=$STACK/sock dbname=$DB user=kiln"
}

# q SQL: one query in $DB (default the stack's own), unaligned, tuples only.
q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$STACK/sock" -U kiln -d "${DB:-kiln}" -c "$1"
}

# sql_copy: a copy of the repository's sql/ in $T/sql that tests may change.
sql_copy() {
	mkdir -p "$T/sql"
	cp "$REPO"/sql/*.sql "$T/sql/"
}

nfiles() {
	find "$1" -maxdepth 1 -name '*.sql' | wc -l
}

@test "the stack applied every migration of sql/ when it started" {
	assert_equal "$(q 'SELECT count(*) FROM schema_migrations')" "$(nfiles "$REPO/sql")"
	assert_equal "$(q "SELECT to_regclass('users') IS NOT NULL")" t
	grep -q 'applied 001_users' "$STACK/log/migrate.log"
}

@test "on a fresh database every file is applied, one row each with its sha256" {
	fresh_db
	run ctl migrate --dir "$REPO/sql"
	assert_success
	assert_line --regexp '^applied 001_users \([0-9]+ ms\)$'
	assert_line "$(nfiles "$REPO/sql") applied, 0 pending"
	assert_equal "$(q 'SELECT count(*) FROM schema_migrations')" "$(nfiles "$REPO/sql")"
	for f in "$REPO"/sql/*.sql; do
		b=$(basename "$f" .sql)
		assert_equal "$(q "SELECT checksum FROM schema_migrations WHERE name = '$b'")" \
			"$(sha256sum "$f" | cut -d' ' -f1)"
		assert_equal "$(q "SELECT version FROM schema_migrations WHERE name = '$b'")" \
			"$((10#${b%%_*}))"
	done
	[ -n "$(q "SELECT applied_by FROM schema_migrations WHERE version = 1")" ]
}

@test "a second run is a no-op" {
	fresh_db
	run ctl migrate --dir "$REPO/sql"
	assert_success
	before=$(q 'SELECT version, applied_at FROM schema_migrations ORDER BY 1')
	run ctl migrate --dir "$REPO/sql"
	assert_success
	assert_output "nothing to do: $(nfiles "$REPO/sql") applied"
	assert_equal "$(q 'SELECT version, applied_at FROM schema_migrations ORDER BY 1')" "$before"
}

@test "--status lists files as pending, then applied, and changes nothing itself" {
	fresh_db
	run ctl migrate --dir "$REPO/sql" --status
	assert_success
	assert_line --regexp '^001_users +pending$'
	assert_equal "$(q "SELECT to_regclass('schema_migrations') IS NULL")" t
	ctl migrate --dir "$REPO/sql"
	run ctl migrate --dir "$REPO/sql" --status
	assert_success
	assert_line --regexp '^001_users +applied [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'
	refute_output --partial pending
}

@test "a new file in a copy of sql/ is applied and shown by --status" {
	fresh_db
	sql_copy
	ctl migrate --dir "$T/sql"
	echo 'CREATE TABLE test_999 (id int);' >"$T/sql/999_test.sql"
	run ctl migrate --dir "$T/sql/"
	assert_success
	assert_line --regexp '^applied 999_test \([0-9]+ ms\)$'
	assert_line "1 applied, 0 pending"
	assert_equal "$(q "SELECT name FROM schema_migrations WHERE version = 999")" 999_test
	assert_equal "$(q "SELECT to_regclass('test_999') IS NOT NULL")" t
	run ctl migrate --dir "$T/sql" --status
	assert_success
	assert_line --regexp '^999_test +applied '
}

@test "an applied file that was edited is refused and nothing is applied" {
	fresh_db
	sql_copy
	ctl migrate --dir "$T/sql"
	echo '-- an afterthought' >>"$T/sql/001_users.sql"
	echo 'CREATE TABLE test_999 (id int);' >"$T/sql/999_test.sql"
	run ctl migrate --dir "$T/sql"
	assert_failure 1
	assert_output --regexp "^kilnctl: $T/sql/001_users.sql was changed after it was applied \(checksum [0-9a-f]{12}… recorded, [0-9a-f]{12}… now\); migrations are forward-only: add a new file instead$"
	assert_equal "$(q "SELECT count(*) FROM schema_migrations WHERE version = 999")" 0
	assert_equal "$(q "SELECT to_regclass('test_999') IS NULL")" t
	run ctl migrate --dir "$T/sql" --status
	assert_failure 1
	assert_line --regexp '^001_users +CHANGED '
	assert_line --regexp '^999_test +pending$'
}

@test "an applied migration whose file is gone is refused" {
	fresh_db
	sql_copy
	echo 'SELECT 1;' >"$T/sql/400_gone.sql"
	ctl migrate --dir "$T/sql"
	rm "$T/sql/400_gone.sql"
	echo 'CREATE TABLE test_999 (id int);' >"$T/sql/999_test.sql"
	run ctl migrate --dir "$T/sql"
	assert_failure 1
	assert_output --partial "applied migration 400 (400_gone) has no file in $T/sql"
	assert_equal "$(q "SELECT to_regclass('test_999') IS NULL")" t
	run ctl migrate --dir "$T/sql" --status
	assert_failure 1
	assert_line --regexp '^400_gone +MISSING '
}

@test "a failing migration is rolled back and names its file; earlier ones stay" {
	fresh_db
	sql_copy
	echo 'CREATE TABLE good_500 (id int);' >"$T/sql/500_good.sql"
	printf 'CREATE TABLE bad_600 (id int);\nSELEC 1;\n' >"$T/sql/600_bad.sql"
	echo 'CREATE TABLE after_700 (id int);' >"$T/sql/700_after.sql"
	run ctl migrate --dir "$T/sql"
	assert_failure 1
	assert_line --regexp '^applied 500_good '
	assert_line --partial "kilnctl: $T/sql/600_bad.sql failed: syntax error at or near \"SELEC\" (line 2)"
	assert_equal "$(q "SELECT to_regclass('good_500') IS NOT NULL")" t
	assert_equal "$(q "SELECT to_regclass('bad_600') IS NULL")" t
	assert_equal "$(q "SELECT to_regclass('after_700') IS NULL")" t
	# every migration of the repository, then 500; not 600 nor 700
	repo_versions=$(ls "$REPO"/sql/*.sql | sed 's|.*/0*\([0-9][0-9]*\)_.*|\1|' | paste -sd, -)
	assert_equal "$(q "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")" "$repo_versions,500"
}

@test "a stray file or a repeated version is refused before the database is touched" {
	fresh_db
	sql_copy
	touch "$T/sql/README"
	run ctl migrate --dir "$T/sql"
	assert_failure 1
	assert_output --partial "$T/sql/README: not a migration"
	rm "$T/sql/README"
	echo 'SELECT 1;' >"$T/sql/0001_again.sql"
	run ctl migrate --dir "$T/sql"
	assert_failure 1
	assert_output --partial "have the same version 1"
	assert_equal "$(q "SELECT to_regclass('schema_migrations') IS NULL")" t
}

@test "two migrators at once both succeed and apply each migration once" {
	fresh_db
	sql_copy
	# Holds the lock long enough for the other migrator to queue behind it.
	echo 'SELECT pg_sleep(1); CREATE TABLE slow_500 (id int);' >"$T/sql/500_slow.sql"
	ctl migrate --dir "$T/sql" >"$T/a" 2>&1 &
	a=$!
	ctl migrate --dir "$T/sql" >"$T/b" 2>&1 &
	b=$!
	wait "$a" || { cat "$T/a"; false; }
	wait "$b" || { cat "$T/b"; false; }
	cat "$T/a" "$T/b"
	assert_equal "$(cat "$T/a" "$T/b" | grep -c '^applied 500_slow ')" 1
	assert_equal "$(cat "$T/a" "$T/b" | grep -c '^applied 001_users ')" 1
	grep -q 'waiting for another migrator' "$T/a" "$T/b"
	grep -q "nothing to do: $(nfiles "$T/sql") applied" "$T/a" "$T/b"
	assert_equal "$(q 'SELECT count(*), count(DISTINCT version) FROM schema_migrations')" \
		"$(nfiles "$T/sql")|$(nfiles "$T/sql")"
}

@test "create-admin takes the password from stdin, never argv, and stores an argon2id hash" {
	pw="Vb8-stdin-only-Quokka-lantern-7Rz" # fixed: cracklib rejects some digit runs
	{ sleep 1; printf '%s\n' "$pw"; } | "$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" create-admin --email '  Ada@Example.COM ' --name 'Ada Admin' >"$T/out" 2>&1 &
	pid=$!
	# While it waits for stdin: its command line is there, the password is not.
	wait_until 5 grep -q create-admin "/proc/$pid/cmdline"
	run ps -o args= -p "$pid"
	assert_output --partial create-admin
	refute_output --partial "$pw"
	wait "$pid" || { cat "$T/out"; false; }
	run cat "$T/out"
	assert_output --regexp '^created admin [0-9]+ \(Ada@example.com\)$'
	assert_equal "$(q "SELECT role, display_name FROM users WHERE email = 'Ada@example.com'")" "admin|Ada Admin"
	[[ $(q "SELECT password_hash FROM users WHERE email = 'Ada@example.com'") == '$argon2id$v=19$'* ]]
	run grep -rF -- "$pw" "$STACK/log" "$T/out"
	assert_failure 1
}

@test "create-admin promotes an existing user and sets the new password" {
	q "INSERT INTO users (email, display_name, password_hash) VALUES ('bob@example.com', 'Bob', 'x')"
	run ctl create-admin --email BOB@example.com <<<"Vb8-promoted-Quokka-harbour-3Kd"
	assert_success
	assert_output --regexp '^existing user [0-9]+ \(BOB@example.com\) promoted to admin with the new password'
	assert_equal "$(q "SELECT role, display_name, session_version FROM users WHERE email = 'bob@example.com'")" "admin|Bob|2"
	[[ $(q "SELECT password_hash FROM users WHERE email = 'bob@example.com'") == '$argon2id$'* ]]
}

@test "create-admin refuses a short password, a bad email and a missing --email" {
	run ctl create-admin --email short@example.com <<<"tooShort1"
	assert_failure 1
	assert_output "kilnctl: password must be at least 12 bytes"
	assert_equal "$(q "SELECT count(*) FROM users WHERE email = 'short@example.com'")" 0
	run ctl create-admin --email 'not an email' <<<"Vb8-promoted-Quokka-harbour-3Kd"
	assert_failure 1
	assert_output --partial "must be a valid email address"
	run ctl create-admin <<<"Vb8-promoted-Quokka-harbour-3Kd"
	assert_failure 2
	run ctl create-admin --email empty@example.com </dev/null
	assert_failure 1
	assert_output --partial "no password on stdin"
}

@test "gen-secret writes a 0600 base64url key, refuses to overwrite, --force replaces" {
	run ctl gen-secret "$T/k"
	assert_success
	assert_output "$T/k"
	assert_equal "$(stat -c %a "$T/k")" 600
	assert_equal "$(wc -c <"$T/k")" 65 # 48 bytes = 64 characters + newline
	grep -qE '^[A-Za-z0-9_-]{64}$' "$T/k"
	refute_output --partial "$(cat "$T/k")"
	old=$(cat "$T/k")
	run ctl gen-secret "$T/k"
	assert_failure 1
	assert_output --partial "already exists; use --force"
	assert_equal "$(cat "$T/k")" "$old"
	run ctl gen-secret "$T/k" --force --bytes 32
	assert_success
	assert_equal "$(stat -c %a "$T/k")" 600
	assert_equal "$(wc -c <"$T/k")" 44 # 43 characters + newline
	[ "$(cat "$T/k")" != "$old" ]
	[ -z "$(find "$T" -name 'k.tmp.*')" ]
	ln -s "$T/elsewhere" "$T/link"
	run ctl gen-secret "$T/link"
	assert_failure 1
	[ ! -e "$T/elsewhere" ]
	run ctl gen-secret "$T/k2" --bytes 16
	assert_failure 2
	[ ! -e "$T/k2" ]
}

@test "check-config accepts the stack's config and names the error in a bad one" {
	run ctl check-config
	assert_success
	assert_output "configuration $STACK/kiln.conf is valid"
	cp "$STACK/kiln.conf" "$T/bad.conf"
	printf '[server]\nworkerz = 3\n' >>"$T/bad.conf"
	run "$KILN_BUILD/kilnctl" -c "$T/bad.conf" check-config
	assert_failure 1
	assert_output --regexp "^kilnctl: .*bad.conf:[0-9]+: .*workerz"
	run "$KILN_BUILD/kilnctl" -c "$T/nope.conf" check-config
	assert_failure 1
}

@test "usage errors exit 2; help and --version exit 0" {
	run "$KILN_BUILD/kilnctl"
	assert_failure 2
	run "$KILN_BUILD/kilnctl" frobnicate
	assert_failure 2
	assert_output --partial "unknown command 'frobnicate'"
	run ctl migrate --bogus
	assert_failure 2
	run "$KILN_BUILD/kilnctl" --version
	assert_success
	assert_output --regexp '^kilnctl [0-9]+\.[0-9]+\.[0-9]+ '
	run "$KILN_BUILD/kilnctl" help
	assert_success
	assert_line --partial 'create-admin --email EMAIL'
}
