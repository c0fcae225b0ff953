-- The learning platform (kiln-api): exercises written by authors, answers
-- submitted by users and graded by kiln-worker (job kind grade_submission),
-- each user's progress, and their notifications.

-- Trigram indexes for the title search (pg_trgm is a trusted extension since
-- PostgreSQL 13: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE exercises (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug             text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'
                                                        AND length(slug) <= 100),
    title            text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category         text        NOT NULL CHECK (category ~ '^[a-z0-9]+(-[a-z0-9]+)*$'
                                                 AND length(category) <= 50),
    difficulty_level smallint    NOT NULL CHECK (difficulty_level BETWEEN 1 AND 5),
    points           integer     NOT NULL CHECK (points BETWEEN 0 AND 1000),
    body             text        NOT NULL CHECK (length(body) <= 20000),
    -- How an answer is graded (kiln-worker, apps/worker/grade.c):
    --   exact    trimmed, runs of whitespace collapsed, case-insensitive
    --   numeric  |given - answer| <= tolerance
    --   regex    POSIX extended, anchored at both ends
    --   choice   one of choices, exactly (trimmed)
    answer_kind      text        NOT NULL CHECK (answer_kind IN ('exact', 'numeric', 'regex', 'choice')),
    answer           text        NOT NULL CHECK (length(answer) BETWEEN 1 AND 500),
    tolerance        double precision CHECK (tolerance >= 0),
    choices          text[]      CHECK (cardinality(choices) BETWEEN 2 AND 10),
    published        boolean     NOT NULL DEFAULT true,
    created_by       bigint      NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Bumped by every change: the strong ETag, If-Match, and cache keys.
    version          integer     NOT NULL DEFAULT 1,
    CHECK ((answer_kind = 'numeric') = (tolerance IS NOT NULL)),
    CHECK ((answer_kind = 'choice') = (choices IS NOT NULL))
);

-- The list: filters on category and difficulty, keyset on id.
CREATE INDEX exercises_category_difficulty_idx ON exercises (category, difficulty_level, id);
CREATE INDEX exercises_updated_idx ON exercises (updated_at DESC);
-- q: substring search on title (ILIKE '%q%' uses a trigram index).
CREATE INDEX exercises_title_trgm_idx ON exercises USING gin (title gin_trgm_ops);

CREATE TABLE submissions (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exercise_id      bigint      NOT NULL REFERENCES exercises (id),
    answer           text        NOT NULL CHECK (length(answer) <= 1000),
    status           text        NOT NULL DEFAULT 'queued'
                                 CHECK (status IN ('queued', 'graded', 'failed')),
    score            integer,
    feedback         text,
    -- Idempotency-Key of the request that created it, and the SHA-256 of
    -- what that request asked for: a replay with the same key and the same
    -- request gets the same answer, with another request a 422.
    idempotency_key  text        CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea,
    request_id       text,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    graded_at        timestamptz
);

CREATE INDEX submissions_user_exercise_idx
    ON submissions (user_id, exercise_id, submitted_at DESC);
CREATE INDEX submissions_submitted_idx ON submissions (submitted_at DESC);
-- GET /me/submissions: a user's submissions, newest first, keyset on id.
CREATE INDEX submissions_user_id_idx ON submissions (user_id, id DESC);
CREATE UNIQUE INDEX submissions_idempotency_idx ON submissions (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Submissions older than [worker] archive_after, moved here by kiln-worker
-- in batches; same columns, no foreign keys (history outlives its rows).
CREATE TABLE submissions_archive (
    id               bigint      PRIMARY KEY,
    user_id          bigint      NOT NULL,
    exercise_id      bigint      NOT NULL,
    answer           text        NOT NULL,
    status           text        NOT NULL,
    score            integer,
    feedback         text,
    idempotency_key  text,
    request_hash     bytea,
    request_id       text,
    submitted_at     timestamptz NOT NULL,
    graded_at        timestamptz,
    archived_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX submissions_archive_user_idx ON submissions_archive (user_id, id DESC);

CREATE TABLE user_progress (
    user_id          bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exercise_id      bigint      NOT NULL REFERENCES exercises (id),
    best_score       integer     NOT NULL DEFAULT 0,
    attempts         integer     NOT NULL DEFAULT 0,
    -- The first time a graded answer was correct.
    completed_at     timestamptz,
    PRIMARY KEY (user_id, exercise_id)
);

CREATE INDEX user_progress_completed_idx ON user_progress (user_id, best_score, completed_at)
    WHERE completed_at IS NOT NULL;

CREATE TABLE notifications (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             text        NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    payload          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    -- Set for notifications about a submission: grading twice notifies once.
    submission_id    bigint      UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    read_at          timestamptz
);

CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
