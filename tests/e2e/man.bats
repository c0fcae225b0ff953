#!/usr/bin/env bats
# The man pages kilnctl(1) and kiln.conf(5): they render without a warning
# (man -l, groff -ww, mandoc -T lint), kiln.conf(5) names every key of
# etc/kiln.conf.example, the configuration reference, and kilnctl(1) every
# command and option kilnctl itself knows.

setup() {
	load helpers
	MAN=$REPO/man
}

@test "man -l renders both pages, and groff -ww and mandoc -T lint find nothing" {
	for page in "$MAN/kilnctl.1" "$MAN/kiln.conf.5"; do
		run bash -c "MANWIDTH=80 man -l -Tutf8 '$page' 2>&1 >/dev/null"
		assert_success
		assert_output ""
		run bash -c "man -l '$page' 2>/dev/null | wc -l"
		[ "$output" -gt 50 ]
		run groff -ww -z -man "$page"
		assert_success
		assert_output ""
		run mandoc -T lint -W warning "$page"
		assert_success
		assert_output ""
	done
}

@test "the lint above fails on a broken page" {
	printf '.TH X 1\n.SH NAME\nx \\- y\n.BOGUS\n\\fBunclosed\n' >"$BATS_TEST_TMPDIR/bad.1"
	run mandoc -T lint -W warning "$BATS_TEST_TMPDIR/bad.1"
	assert_failure
	run groff -ww -z -man "$BATS_TEST_TMPDIR/bad.1"
	[ -n "$output" ]
}

@test "kiln.conf(5) names every section and key of etc/kiln.conf.example" {
	# Justified lines may hold several blanks between words: squeeze them.
	man -l -Tutf8 "$MAN/kiln.conf.5" 2>/dev/null | col -bx |
		sed 's/\([^ ]\)  */\1 /g' >"$BATS_TEST_TMPDIR/page"
	# section key, for the keys set in the file and the *_file keys shown
	# commented out.
	awk '/^\[[a-z.]+\]$/ { s = substr($0, 2, length($0) - 2); next }
		/^[a-z_]+ =/ { print s, $1 }
		/^# [a-z_]+_file = / { print s, $2 }' "$REPO/etc/kiln.conf.example" >"$BATS_TEST_TMPDIR/keys"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/keys")" -ge 75 ]
	missing=()
	while read -r sec key; do
		# The page's subsection of that section: from its heading "   [sec]"
		# to the next heading.
		awk -v h="   [$sec]" '$0 == h { on = 1; next } on && /^   [^ ]/ { exit } on' \
			"$BATS_TEST_TMPDIR/page" | grep -qE "(^|[^a-z_])$key = " || missing+=("[$sec] $key")
	done <"$BATS_TEST_TMPDIR/keys"
	[ ${#missing[@]} -eq 0 ] || {
		echo "not in kiln.conf.5: ${missing[*]}"
		false
	}
}

@test "kilnctl(1) documents every command and option of kilnctl help" {
	text=$(man -l -Tutf8 "$MAN/kilnctl.1" 2>/dev/null | col -b)
	help=$("$KILN_BUILD/kilnctl" help)
	missing=()
	for c in $(awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' <<<"$help"); do
		grep -qE "^ +$c( |$)" <<<"$text" || missing+=("$c")
	done
	for o in $(grep -oE -- '--[a-z-]+' <<<"$help" | sort -u) --config --help --version; do
		grep -qF -- "$o" <<<"$text" || missing+=("$o")
	done
	[ "$(awk '/^commands:/ { on = 1; next } on && /^  [a-z]/' <<<"$help" | wc -l)" -ge 9 ]
	[ ${#missing[@]} -eq 0 ] || {
		echo "not in kilnctl.1: ${missing[*]}"
		false
	}
}
