#!/usr/bin/env bats
# kiln-worker through a real stack: jobs enqueued with kilnctl are run by
# the executors, woken by LISTEN/NOTIFY or by polling; failures retry with
# backoff and end discarded with every error kept; a killed executor's job
# is rescued; a shutdown never loses a job; two masters share the queue
# without running a job twice and elect one maintenance leader; a
# PostgreSQL restart is survived.

setup_file() {
	load helpers
	# Short intervals so that rescue, leases and polling happen within a test.
	cat >"$BATS_FILE_TMPDIR/extra.conf" <<'EOF'
[server.worker]
workers = 2
request_timeout = 20s
shutdown_timeout = 10s

[worker]
listen = on
poll_interval = 200ms
heartbeat = 300ms
rescue_after = 2s
lease_ttl = 3s
job_timeout = 15s
test_kinds = on
EOF
	export KILN_CONF_EXTRA=$BATS_FILE_TMPDIR/extra.conf
	stack_up worker
	psql -X -q -v ON_ERROR_STOP=1 -h "$STACK/sock" -U kiln -d kiln \
		-c 'CREATE TABLE job_runs (job_id bigint NOT NULL)'
}

teardown_file() {
	load helpers
	stack_attach
	second_master_stop
	stack_down
}

setup() {
	load helpers
	stack_attach
}

# A failed test must not leave its second master working the queue.
teardown() {
	second_master_stop
}

ctl() {
	"$KILN_BUILD/kilnctl" -c "$STACK/kiln.conf" "$@"
}

# q SQL: one query in the stack's database, unaligned, tuples only.
q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -h "$STACK/sock" -U kiln -d kiln -c "$1"
}

state_is() {
	[ "$(q "SELECT state FROM jobs WHERE id = $1")" = "$2" ]
}

# state_attempt_is ID STATE ATTEMPT
state_attempt_is() {
	[ "$(q "SELECT state || ' ' || attempt FROM jobs WHERE id = $1")" = "$2 $3" ]
}

# completed_count_is FIRST LAST N: N jobs with ids in FIRST..LAST are completed.
completed_count_is() {
	[ "$(q "SELECT count(*) FROM jobs WHERE id BETWEEN $1 AND $2 AND state = 'completed'")" = "$3" ]
}

# Milliseconds from enqueue to completion, as PostgreSQL saw them.
latency_ms() {
	q "SELECT round(extract(epoch FROM finalized_at - created_at) * 1000) FROM jobs WHERE id = $1"
}

now_ms() {
	echo $((${EPOCHREALTIME/./} / 1000))
}

gone() {
	! kill -0 "$1" 2>/dev/null
}

# The parent pid of pid (the master of an executor).
ppid_of() {
	ps -o ppid= -p "$1" | tr -d ' '
}

# set_conf KEY VALUE: change a key of the KILN_CONF_EXTRA part of the stack's
# config, then SIGHUP the master and return once every executor was replaced.
set_conf() {
	sed -i "s/^$1 = .*/$1 = $2/" "$STACK/kiln.conf"
	grep -q "^$1 = $2\$" "$STACK/kiln.conf"
	local before
	before=$(grep -c '"msg":"reload complete"' "$STACK/log/worker.log" || true)
	kill -HUP "$(master_pid worker)"
	wait_until 15 reloaded "$before"
}

reloaded() {
	[ "$(grep -c '"msg":"reload complete"' "$STACK/log/worker.log" || true)" -gt "$1" ]
}

# A second kiln-worker master on the same database (as on a second host):
# the same config but its own run_dir, as its scoreboard is its own.
second_master_start() {
	sed "s#^run_dir = .*#run_dir = $STACK/run2#" "$STACK/kiln.conf" >"$STACK/kiln2.conf"
	mkdir -p "$STACK/run2"
	setsid "$KILN_BUILD/kiln-worker" -c "$STACK/kiln2.conf" </dev/null \
		>>"$STACK/log/worker2.log" 2>&1 3>&- &
	echo $! >"$STACK/pid/second-worker.pid"
	wait_until 5 test -e "$STACK/run2/worker.stats"
}

second_master_stop() {
	local f=$STACK/pid/second-worker.pid pid
	[ -r "$f" ] || return 0
	pid=$(cat "$f")
	kill -TERM "$pid" 2>/dev/null || true
	wait_until 15 gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$f"
}

@test "a noop job enqueued with kilnctl completes within 2 s" {
	t0=$(now_ms)
	id=$(ctl jobs enqueue noop)
	wait_until 2 state_is "$id" completed
	echo "noop: $(($(now_ms) - t0)) ms wall (kilnctl included), $(latency_ms "$id") ms in the database"
	[ "$(latency_ms "$id")" -lt 2000 ]
	assert_equal "$(q "SELECT attempt, array_length(errors, 1) IS NULL FROM jobs WHERE id = $id")" "1|t"
}

@test "LISTEN wakes an executor long before the poll interval; with listen off, polling does" {
	set_conf poll_interval 10s
	sleep 0.5 # let the new executors finish their first round
	id=$(ctl jobs enqueue noop)
	wait_until 2 state_is "$id" completed
	echo "listen on, poll 10 s: $(latency_ms "$id") ms"
	[ "$(latency_ms "$id")" -lt 1000 ]

	set_conf listen off
	set_conf poll_interval 500ms
	sleep 0.5
	for i in 1 2 3; do
		id=$(ctl jobs enqueue noop)
		wait_until 3 state_is "$id" completed
		echo "listen off, poll 500 ms: $(latency_ms "$id") ms"
		[ "$(latency_ms "$id")" -lt 900 ]
	done
	grep -q '"msg":"executor started".*"listen":0' "$STACK/log/worker.log"

	set_conf listen on
	set_conf poll_interval 200ms
}

@test "a failing job is retried after about 1 s, then discarded with every error kept" {
	id=$(ctl jobs enqueue fail --max-attempts 2)
	wait_until 10 state_is "$id" discarded
	assert_equal "$(q "SELECT attempt, array_length(errors, 1) FROM jobs WHERE id = $id")" "2|2"
	run q "SELECT e->>'attempt', e->>'error' FROM jobs, unnest(errors) e WHERE id = $id ORDER BY 1"
	assert_output "1|the fail test kind always fails (attempt 1)
2|the fail test kind always fails (attempt 2)"
	# attempt^4 s with ±10 % jitter: 1 s between the two attempts.
	gap=$(q "SELECT round(extract(epoch FROM (errors[2]->>'at')::timestamptz - (errors[1]->>'at')::timestamptz) * 1000) FROM jobs WHERE id = $id")
	echo "gap between attempts: $gap ms"
	[ "$gap" -ge 900 ] && [ "$gap" -lt 2500 ]
	grep -q "\"msg\":\"job discarded\",\"job_id\":$id,\"kind\":\"fail\"" "$STACK/log/worker.log"
}

@test "the delay grows as attempt^4: 16 s after the second failure; kilnctl discards it" {
	id=$(ctl jobs enqueue fail --max-attempts 3)
	wait_until 10 state_attempt_is "$id" retryable 2
	delay=$(q "SELECT round(extract(epoch FROM scheduled_at - (errors[2]->>'at')::timestamptz) * 1000) FROM jobs WHERE id = $id")
	echo "delay after attempt 2: $delay ms"
	[ "$delay" -ge 14400 ] && [ "$delay" -le 17600 ]
	run ctl jobs discard "$id"
	assert_success
	assert_output "job $id: discarded"
	state_is "$id" discarded
	run ctl jobs discard "$id"
	assert_failure 1
	assert_output --partial "job $id is discarded: only available, scheduled, running or retryable"
}

@test "an unknown kind is discarded with 'unknown job kind'; kilnctl retry runs it once more" {
	id=$(ctl jobs enqueue no_such_kind --max-attempts 1)
	wait_until 5 state_is "$id" discarded
	assert_equal "$(q "SELECT errors[1]->>'error' FROM jobs WHERE id = $id")" "unknown job kind"
	run ctl jobs list --state discarded --limit 1000
	assert_success
	assert_line --regexp "^$id +discarded +default +no_such_kind +1/1 .* unknown job kind$"
	run ctl jobs retry "$id"
	assert_success
	assert_output "job $id: available"
	wait_until 5 state_attempt_is "$id" discarded 2
	assert_equal "$(q "SELECT max_attempts, array_length(errors, 1) FROM jobs WHERE id = $id")" "2|2"
	run ctl jobs retry 999999999
	assert_failure 1
	assert_output "kilnctl: no job 999999999"
}

@test "kilnctl cancels a scheduled job, and stats counts jobs by queue and state" {
	id=$(ctl jobs enqueue noop --delay 1h --queue later)
	state_is "$id" scheduled
	run ctl jobs cancel "$id"
	assert_success
	assert_output "job $id: cancelled"
	run ctl jobs cancel "$id"
	assert_failure 1
	run ctl jobs stats
	assert_success
	assert_line --regexp '^later +cancelled +1$'
	assert_line --regexp "^default +completed +$(q "SELECT count(*) FROM jobs WHERE queue = 'default' AND state = 'completed'")\$"
	run ctl jobs enqueue noop '[1]'
	assert_failure 1
	run ctl jobs enqueue
	assert_failure 2
}

@test "a job longer than rescue_after is kept alive by its heartbeat" {
	id=$(ctl jobs enqueue sleep '{"ms": 4000}')
	wait_until 10 state_is "$id" completed
	assert_equal "$(q "SELECT attempt, array_length(errors, 1) IS NULL FROM jobs WHERE id = $id")" "1|t"
}

@test "kill -9 of the executor running a job: the job is rescued and completes on attempt 2" {
	id=$(ctl jobs enqueue sleep '{"ms": 3000}')
	wait_until 5 state_is "$id" running
	by=$(q "SELECT attempted_by FROM jobs WHERE id = $id")
	pid=${by##*:}
	assert_equal "$(ppid_of "$pid")" "$(master_pid worker)"
	kill -KILL "$pid"
	wait_until 30 state_is "$id" completed
	assert_equal "$(q "SELECT attempt, array_length(errors, 1), errors[1]->>'error' FROM jobs WHERE id = $id")" \
		"2|1|rescued: executor stopped heartbeating"
	[ "$(q "SELECT attempted_by FROM jobs WHERE id = $id")" != "$by" ]
	grep -q '"msg":"rescued jobs whose executor stopped heartbeating"' "$STACK/log/worker.log"
}

@test "PostgreSQL restarted mid-run: the executors reconnect and every job completes" {
	before=$(worker_pids worker)
	ids=$(ctl jobs enqueue sleep '{"ms": 20}' --count 300)
	first=$(head -n 1 <<<"$ids")
	last=$(tail -n 1 <<<"$ids")
	sleep 1
	stack stop postgres
	sleep 1
	stack start postgres
	wait_until 60 completed_count_is "$first" "$last" 300
	# The same executors: they reconnected instead of crashing.
	assert_equal "$(worker_pids worker)" "$before"
	grep -qE '"msg":"(cannot fetch jobs; retrying|listen connection unavailable; polling until it is back|heartbeat failed|cannot record the job.s outcome; it will be rescued)"' \
		"$STACK/log/worker.log"
	id=$(ctl jobs enqueue noop)
	wait_until 3 state_is "$id" completed
}

@test "two masters on a burst of 2,000 jobs: each runs exactly once; one maintenance leader" {
	second_master_start
	q "TRUNCATE job_runs"
	ids=$(ctl jobs enqueue count --count 2000)
	first=$(head -n 1 <<<"$ids")
	last=$(tail -n 1 <<<"$ids")
	wait_until 60 completed_count_is "$first" "$last" 2000
	assert_equal "$(q "SELECT count(*), count(DISTINCT job_id), min(job_id), max(job_id) FROM job_runs")" \
		"2000|2000|$first|$last"
	# Both masters' executors took part.
	m1=$(master_pid worker)
	m2=$(cat "$STACK/pid/second-worker.pid")
	declare -A by_master=()
	while read -r who n; do
		p=$(ppid_of "${who##*:}")
		by_master[$p]=$((${by_master[$p]:-0} + n))
	done < <(q "SELECT attempted_by, count(*) FROM jobs WHERE id BETWEEN $first AND $last GROUP BY 1" | tr '|' ' ')
	echo "jobs by master: first ${by_master[$m1]:-0}, second ${by_master[$m2]:-0}"
	[ "${by_master[$m1]:-0}" -gt 0 ] && [ "${by_master[$m2]:-0}" -gt 0 ]
	# One lease, held by an executor of one of the two masters.
	sleep 2 # a few renewals with both masters competing
	assert_equal "$(q "SELECT count(*) FROM job_leader")" 1
	holder=$(q "SELECT holder FROM job_leader WHERE expires_at > now()")
	hm=$(ppid_of "${holder##*:}")
	[ "$hm" = "$m1" ] || [ "$hm" = "$m2" ]
	# Each periodic run ran once, on the host whose insert won.
	assert_equal "$(q "SELECT count(*) = count(DISTINCT (cron_key, run_at)) FROM cron_runs")" t
	# every periodic task ran, once: ANALYZE, archiving, job and token
	# pruning, the leaderboard rebuild
	assert_equal "$(q "SELECT string_agg(DISTINCT cron_key, ',' ORDER BY cron_key) FROM cron_runs")" \
		analyze,archive_submissions,prune_jobs,prune_tokens,rebuild_leaderboard
	runs=$(cat "$STACK/log/worker.log" "$STACK/log/worker2.log" | grep -c '"msg":"periodic job ran"')
	assert_equal "$runs" "$(q "SELECT count(*) FROM cron_runs")"
	second_master_stop
}

@test "kiln-worker -t checks its own keys: a bad queue name is refused" {
	run env KILN_WORKER_QUEUES="default,Bad Queue" "$KILN_BUILD/kiln-worker" -t -c "$STACK/kiln.conf"
	assert_failure 1
	assert_output --partial "queues"
	run "$KILN_BUILD/kiln-worker" -t -c "$STACK/kiln.conf"
	assert_success
}

@test "SIGTERM of the master during a long job: it exits, and the job is never lost" {
	id=$(ctl jobs enqueue sleep '{"ms": 8000}')
	wait_until 5 state_is "$id" running
	m=$(master_pid worker)
	kill -TERM "$m"
	wait_until 12 gone "$m"
	grep -q '"msg":"stopped"' "$STACK/log/worker.log"
	run q "SELECT state, attempt, errors[1]->>'error' FROM jobs WHERE id = $id"
	assert_output --regexp '^(retryable\|1\|interrupted by shutdown|completed\|1\|)$'
	stack start app:worker
	wait_until 30 state_is "$id" completed
}

# ---------------------------------------------------------------- grading
# grade_submission (docs/api.md "Submissions"): rows written with psql the
# way kiln-api writes them (a submission, then its job with
# {"submission_id": N}), so this suite needs no kiln-api.

# grading_user: a user row (no password: it never signs in); prints its id.
grading_user() {
	q "INSERT INTO users (email, display_name, password_hash)
		VALUES ('grader-$RANDOM$RANDOM@example.com', 'Grader', 'x') RETURNING id"
}

# grading_exercise USER KIND ANSWER [TOLERANCE] [CHOICES_SQL]: a published
# exercise worth 7 points; prints its id.
grading_exercise() {
	q "INSERT INTO exercises (slug, title, category, difficulty_level, points, body,
			answer_kind, answer, tolerance, choices, created_by)
		VALUES ('w-$RANDOM$RANDOM', 'Worker grading', 'worker', 1, 7, '',
			'$2', '$3', ${4:-NULL}, ${5:-NULL}, $1) RETURNING id"
}

# grading_submit USER EXERCISE ANSWER: a queued submission and its job, as
# kiln-api writes them; sets SUB and JOB.
grading_submit() {
	SUB=$(q "INSERT INTO submissions (user_id, exercise_id, answer) VALUES ($1, $2, '$3') RETURNING id")
	JOB=$(ctl jobs enqueue grade_submission "{\"submission_id\": $SUB}")
}

sub_is() {
	[ "$(q "SELECT status FROM submissions WHERE id = $1")" = "$2" ]
}

@test "grade_submission: a correct answer is graded with the points, progress and one notification; a wrong one scores 0" {
	u=$(grading_user)
	ex=$(grading_exercise "$u" numeric 2.5 0.1)
	grading_submit "$u" "$ex" " 2.45 "
	wait_until 3 sub_is "$SUB" graded
	wait_until 3 state_is "$JOB" completed
	assert_equal "$(q "SELECT score, feedback, graded_at IS NOT NULL FROM submissions WHERE id = $SUB")" "7|correct|t"
	assert_equal "$(q "SELECT best_score, attempts, completed_at IS NOT NULL FROM user_progress WHERE user_id = $u AND exercise_id = $ex")" "7|1|t"
	assert_equal "$(q "SELECT kind, payload->>'submission_id', payload->>'exercise_id', payload->>'score', payload->>'correct' FROM notifications WHERE user_id = $u")" \
		"submission_graded|$SUB|$ex|7|true"
	done_at=$(q "SELECT completed_at FROM user_progress WHERE user_id = $u AND exercise_id = $ex")
	grading_submit "$u" "$ex" "2.7"
	wait_until 3 sub_is "$SUB" graded
	assert_equal "$(q "SELECT score, feedback FROM submissions WHERE id = $SUB")" "0|incorrect"
	# The best score and the first completion stay; the attempt counts.
	assert_equal "$(q "SELECT best_score, attempts, completed_at FROM user_progress WHERE user_id = $u AND exercise_id = $ex")" "7|2|$done_at"
	assert_equal "$(q "SELECT count(*) FROM notifications WHERE user_id = $u")" 2
}

@test "grade_submission: grading a graded submission again changes nothing" {
	u=$(grading_user)
	ex=$(grading_exercise "$u" choice b "NULL" "ARRAY['a','b','c']")
	grading_submit "$u" "$ex" "b"
	wait_until 3 sub_is "$SUB" graded
	wait_until 3 state_is "$JOB" completed
	before=$(q "SELECT s.status, s.score, s.feedback, s.graded_at, p.best_score, p.attempts, p.completed_at,
		(SELECT count(*) FROM notifications n WHERE n.user_id = $u)
		FROM submissions s JOIN user_progress p ON p.user_id = s.user_id AND p.exercise_id = s.exercise_id
		WHERE s.id = $SUB")
	again=$(ctl jobs enqueue grade_submission "{\"submission_id\": $SUB}")
	wait_until 3 state_is "$again" completed
	assert_equal "$(q "SELECT s.status, s.score, s.feedback, s.graded_at, p.best_score, p.attempts, p.completed_at,
		(SELECT count(*) FROM notifications n WHERE n.user_id = $u)
		FROM submissions s JOIN user_progress p ON p.user_id = s.user_id AND p.exercise_id = s.exercise_id
		WHERE s.id = $SUB")" "$before"
	assert_equal "$(cut -d'|' -f1-3,5-6,8 <<<"$before")" "graded|7|correct|7|1|1"
}

@test "grade_submission: a rule that cannot be applied marks the submission failed with the reason" {
	u=$(grading_user)
	# Written around kiln-api's validation: a regex that does not compile.
	ex=$(grading_exercise "$u" regex "(unclosed")
	grading_submit "$u" "$ex" "unclosed"
	wait_until 5 sub_is "$SUB" failed
	run q "SELECT feedback FROM submissions WHERE id = $SUB"
	echo "feedback: $output"
	[ -n "$output" ]
	assert_equal "$(q "SELECT count(*) FROM user_progress WHERE user_id = $u AND completed_at IS NOT NULL")" 0
}

@test "with LISTEN off, a submission is graded within the poll interval" {
	u=$(grading_user)
	ex=$(grading_exercise "$u" exact "Forty Two")
	set_conf listen off
	set_conf poll_interval 500ms
	sleep 0.5 # let the new executors finish their first round
	for i in 1 2 3; do
		grading_submit "$u" "$ex" "forty   two"
		wait_until 3 sub_is "$SUB" graded
		ms=$(q "SELECT round(extract(epoch FROM s.graded_at - j.created_at) * 1000) FROM submissions s, jobs j WHERE s.id = $SUB AND j.id = $JOB")
		echo "listen off, poll 500 ms: graded $ms ms after the job was written"
		[ "$ms" -lt 900 ]
		assert_equal "$(q "SELECT score, feedback FROM submissions WHERE id = $SUB")" "7|correct"
	done
	grep -q '"msg":"executor started".*"listen":0' "$STACK/log/worker.log"
	set_conf listen on
	set_conf poll_interval 200ms
}

locker_waiting() {
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'e2e-locker' AND query LIKE '%pg_sleep%'")" = 1 ]
}

# A backend of the stack's database waits for a lock (the grader on the row).
grader_blocked() {
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = 'kiln' AND wait_event_type = 'Lock'")" -ge 1 ]
}

@test "kill -9 of the executor mid-grading: the job is rescued, the submission graded once, the attempts recorded" {
	u=$(grading_user)
	ex=$(grading_exercise "$u" exact "locked answer")
	SUB=$(q "INSERT INTO submissions (user_id, exercise_id, answer) VALUES ($u, $ex, 'Locked  Answer') RETURNING id")
	# Hold the submission row so that grading stops inside its transaction.
	PGAPPNAME=e2e-locker psql -X -q -h "$STACK/sock" -U kiln -d kiln >/dev/null 2>&1 3>&- <<-SQL &
	BEGIN;
	SELECT id FROM submissions WHERE id = $SUB FOR UPDATE;
	SELECT pg_sleep(25);
	COMMIT;
	SQL
	locker=$!
	wait_until 5 locker_waiting
	JOB=$(ctl jobs enqueue grade_submission "{\"submission_id\": $SUB}")
	wait_until 5 state_is "$JOB" running
	wait_until 5 grader_blocked
	by=$(q "SELECT attempted_by FROM jobs WHERE id = $JOB")
	pid=${by##*:}
	assert_equal "$(ppid_of "$pid")" "$(master_pid worker)"
	kill -KILL "$pid"
	q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'e2e-locker'" >/dev/null
	wait "$locker" || true
	sub_is "$SUB" queued
	wait_until 30 state_is "$JOB" completed
	assert_equal "$(q "SELECT attempt, array_length(errors, 1), errors[1]->>'error' FROM jobs WHERE id = $JOB")" \
		"2|1|rescued: executor stopped heartbeating"
	assert_equal "$(q "SELECT status, score, feedback FROM submissions WHERE id = $SUB")" "graded|7|correct"
	assert_equal "$(q "SELECT best_score, attempts FROM user_progress WHERE user_id = $u AND exercise_id = $ex")" "7|1"
	assert_equal "$(q "SELECT count(*) FROM notifications WHERE user_id = $u")" 1
}
