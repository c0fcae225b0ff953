-- The audit log of kiln-admin: one row per administrator action that
-- changed something (user lock/unlock/role/revoke, job retry/discard, cache
-- flush, maintenance mode). A row is written in the same transaction as the
-- change it records (for Redis changes: committed only after Redis took
-- them), so the log never misses an action nor records one that did not
-- happen. Rows are append-only: the trigger below refuses UPDATE, DELETE and
-- TRUNCATE, whoever asks, so not even a bug in kiln-admin can rewrite history.

CREATE TABLE admin_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- The administrator; kept when their account is deleted later.
    actor_id    bigint      NOT NULL,
    actor_email text        NOT NULL,
    action      text        NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type text        NOT NULL CHECK (target_type IN ('user', 'job', 'cache', 'maintenance')),
    -- The target's id as text ("" for cache and maintenance).
    target_id   text        NOT NULL DEFAULT '' CHECK (length(target_id) <= 64),
    before      jsonb,
    after       jsonb,
    ip          inet,
    request_id  text        CHECK (length(request_id) <= 64)
);

CREATE INDEX admin_audit_actor_idx ON admin_audit (actor_id, id DESC);
CREATE INDEX admin_audit_target_idx ON admin_audit (target_type, target_id, id DESC);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER admin_audit_no_update BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();
