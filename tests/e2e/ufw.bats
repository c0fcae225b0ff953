#!/usr/bin/env bats
# scripts/ufw-setup and the UFW profile ufw/kiln, checked through Debian's
# real ufw in --dry-run mode: the rules it would apply, the ports it refuses
# to open — and that this machine's firewall is left exactly as it was.
# Profiles that must not be installed here (ufw/kiln, bad ones) are seen by
# ufw through a private mount namespace (unshare -m) in which a copy of
# /etc/ufw/applications.d plus them is bind-mounted over the real one.

setup_file() {
	load helpers
	[ "$(id -u)" -eq 0 ] || skip "ufw needs root, even with --dry-run"
	snapshot >"$BATS_FILE_TMPDIR/before"
}

setup() {
	load helpers
	[ "$(id -u)" -eq 0 ] || skip "ufw needs root, even with --dry-run"
	APPS=$BATS_FILE_TMPDIR/applications.d
	if [ ! -d "$APPS" ]; then
		mkdir -p "$APPS"
		cp /etc/ufw/applications.d/* "$APPS/"
		cp "$REPO/ufw/kiln" "$APPS/kiln"
		printf '[kiln-bad]\ntitle=bad\ndescription=opens PostgreSQL\nports=80,5432/tcp\n' >"$APPS/kiln-bad"
		printf '[kiln-range]\ntitle=bad\ndescription=a range over Redis\nports=443/tcp|6000:7000/tcp\n' \
			>"$APPS/kiln-range"
	fi
}

# Everything of this machine's firewall that ufw-setup could change.
snapshot() {
	find /etc/ufw /etc/default/ufw -type f -print0 | sort -z | xargs -0 md5sum
	iptables -S 2>&1 || true
	ip6tables -S 2>&1 || true
	ufw status verbose 2>&1
}

# with_profiles CMD...: run CMD where ufw also sees ufw/kiln and the bad profiles.
with_profiles() {
	unshare -m --propagation private -- sh -c 'mount --bind "$0" /etc/ufw/applications.d && exec "$@"' \
		"$APPS" "$@"
}

@test "dry run: deny incoming, allow outgoing, limit SSH, allow 'Nginx Full'; enable only printed" {
	run timeout 60 "$REPO/scripts/ufw-setup" --dry-run
	echo "$output"
	assert_success
	assert_equal "$(grep -c '^+ ufw' <<<"$output")" 5
	assert_line "+ ufw --dry-run default deny incoming"
	assert_line "Default incoming policy changed to 'deny'"
	assert_line "+ ufw --dry-run default allow outgoing"
	assert_line "Default outgoing policy changed to 'allow'"
	if ufw app info OpenSSH >/dev/null 2>&1; then
		assert_line "+ ufw --dry-run limit OpenSSH"
		assert_line --regexp '^### tuple ### limit tcp 22 0\.0\.0\.0/0 any 0\.0\.0\.0/0 OpenSSH - in$'
	else
		assert_line "+ ufw --dry-run limit 22/tcp"
		assert_line '### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in'
	fi
	assert_line --regexp '^-A ufw-user-input -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 -j ufw-user-limit$'
	assert_line "+ ufw --dry-run allow Nginx Full"
	assert_line '### tuple ### allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 Nginx%20Full - in'
	assert_line '### tuple ### allow tcp 80,443 ::/0 any ::/0 Nginx%20Full - in'
	assert_line "+ ufw --force enable (not run: --dry-run)"
	# Only SSH and the web ports: no rule names a data store's port.
	run grep -E '^### tuple ###' <<<"$output"
	refute_output --regexp '(5432|6379|11211)'
	assert_equal "$(grep -cvE ' (22|80,443) ' <<<"$output")" 0
}

@test "the kiln profile: 80 and 443 over TCP, usable with --profile kiln" {
	run with_profiles ufw app info kiln
	echo "$output"
	assert_success
	assert_line "Profile: kiln"
	assert_line "  80,443/tcp"
	run with_profiles timeout 60 "$REPO/scripts/ufw-setup" --dry-run --profile kiln --ssh 2222
	echo "$output"
	assert_success
	assert_line '### tuple ### allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 kiln - in'
	assert_line '### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in'
}

@test "refused before any ufw command: profiles or an SSH port opening PostgreSQL, Redis or memcached; unknown profiles; bad usage" {
	run with_profiles "$REPO/scripts/ufw-setup" --dry-run --profile kiln-bad
	assert_failure 1
	assert_output --partial "refusing profile 'kiln-bad'"
	refute_output --partial "+ ufw"
	run with_profiles "$REPO/scripts/ufw-setup" --dry-run --profile kiln-range
	assert_failure 1
	assert_output --partial "refusing profile 'kiln-range'"
	run "$REPO/scripts/ufw-setup" --dry-run --ssh 11211
	assert_failure 1
	assert_output --partial "refusing to open port 11211"
	refute_output --partial "+ ufw"
	run "$REPO/scripts/ufw-setup" --dry-run --profile "No Such Profile"
	assert_failure 1
	assert_output --partial "no UFW application profile"
	run "$REPO/scripts/ufw-setup" --dry-run --ssh abc
	assert_failure 1
	run "$REPO/scripts/ufw-setup" --bogus
	assert_failure 2
}

@test "this machine's firewall is unchanged: ufw files, iptables rules, ufw status" {
	snapshot >"$BATS_TEST_TMPDIR/after"
	diff "$BATS_FILE_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
}
