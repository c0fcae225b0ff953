-- The durable job queue (River / graphile-worker model; see
-- libcommon/include/kiln/jobs.h). A job is inserted in the transaction of the
-- data it belongs to, so it exists exactly when that data does. Executors
-- claim jobs with FOR UPDATE SKIP LOCKED, so a job is claimed once however
-- many executors poll.
--
-- States: available (runnable now), scheduled (runnable at scheduled_at),
-- running (claimed; heartbeat_at shows the executor is alive), retryable
-- (failed, runnable again at scheduled_at), and the final states completed,
-- discarded (failed max_attempts times) and cancelled.

CREATE TABLE jobs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The library accepts only [a-z0-9_]{1,63} for both; the checks keep
    -- rows written by hand to what an executor can read back.
    queue         text        NOT NULL DEFAULT 'default' CHECK (queue ~ '^[a-z0-9_]{1,63}$'),
    kind          text        NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,63}$'),
    args          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(args) = 'object'),
    state         text        NOT NULL
                              CHECK (state IN ('available', 'scheduled', 'running', 'retryable',
                                               'completed', 'discarded', 'cancelled')),
    -- 1 runs first.
    priority      smallint    NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 4),
    -- Attempts started so far: a fetch counts one, before the job runs, so
    -- an executor that dies mid-job has still used an attempt.
    attempt       integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
    -- Not runnable before this (delayed enqueue, retry backoff).
    scheduled_at  timestamptz NOT NULL DEFAULT now(),
    attempted_at  timestamptz,
    attempted_by  text,
    -- Touched by the executor while running; a stale one means the executor
    -- died and the job is rescued.
    heartbeat_at  timestamptz,
    -- One {"at", "attempt", "error"} object per failed attempt, all kept so
    -- a discarded job shows its whole history.
    errors        jsonb[]     NOT NULL DEFAULT '{}',
    -- At most one non-final job per key (see jobs_unique_key_idx).
    unique_key    text,
    -- The request that enqueued the job, for following it through the logs.
    request_id    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finalized_at  timestamptz
);

-- Fetch: runnable jobs of a queue in the order they are claimed. Partial, so
-- the index stays as small as the backlog however long history grows.
CREATE INDEX jobs_fetch_idx ON jobs (queue, priority, scheduled_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- Rescue: running jobs by heartbeat age.
CREATE INDEX jobs_rescue_idx ON jobs (heartbeat_at) WHERE state = 'running';

-- Deduplication: a second enqueue with the same key is a no-op while the
-- first job has not finished; once final, the key is free again. Enqueue
-- names this predicate in ON CONFLICT, so the two must stay identical.
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable');

-- Pruning of finished jobs by age.
CREATE INDEX jobs_prune_idx ON jobs (finalized_at)
    WHERE state IN ('completed', 'discarded', 'cancelled');

-- Leader lease: periodic work (cron, rescue, pruning) runs in one worker at a
-- time. The holder renews expires_at; another worker takes the row over only
-- once it has expired, so a dead leader is replaced after one lease.
CREATE TABLE job_leader (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- One row per periodic run that was enqueued: the primary key makes a run
-- happen once even when a leader change lets two workers reach the same
-- slot.
CREATE TABLE cron_runs (
    cron_key  text,
    run_at    timestamptz,
    PRIMARY KEY (cron_key, run_at)
);
