-- Accounts and their sessions. A session is a refresh-token family: every
-- rotation adds a token to the family; logout revokes the family; reuse of
-- a rotated token outside the grace window revokes it too.

CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email            text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name     text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    password_hash    text        NOT NULL,
    role             text        NOT NULL DEFAULT 'user'
                                 CHECK (role IN ('user', 'author', 'admin')),
    -- Bumped by logout-all and password change: access tokens carrying an
    -- older "sv" claim are rejected.
    session_version  integer     NOT NULL DEFAULT 1,
    -- Set by an administrator; a locked account cannot sign in.
    locked           boolean     NOT NULL DEFAULT false,
    -- Login throttling: consecutive failures, the time before which no
    -- attempt is verified, and the failures of the current hour.
    failed_logins    integer     NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    failure_window   timestamptz,
    window_failures  integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Emails are stored normalised (trimmed, domain lowercased); uniqueness and
-- lookup ignore the case of the local part too.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    user_agent    text        CHECK (length(user_agent) <= 256),
    ip            inet,
    revoked_at    timestamptz,
    revoked_reason text       CHECK (revoked_reason IN
                                  ('logout', 'logout_all', 'password_change', 'reuse',
                                   'revoked', 'admin'))
);

CREATE INDEX sessions_user_active_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are opaque 256-bit values; only their SHA-256 is stored.
CREATE TABLE refresh_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id   bigint      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    rotated_at   timestamptz -- set when a successor was issued
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
