-- approvald schema, version 1. Applied by `approvald migrate` in one transaction together with
-- its schema_migrations row.

CREATE TABLE schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Server-wide settings shared by every replica (e.g. the key that signs page tokens).
CREATE TABLE approvald_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO approvald_settings (name, value)
VALUES ('page_token_key',
        replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

CREATE TABLE ai_approvals (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    action_type      text NOT NULL CHECK (action_type ~ '^[a-z][a-z0-9_.]{0,63}$'),
    action_data      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(action_data) = 'object'),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled', 'failed')),
    summary          text NOT NULL DEFAULT '',
    requested_by     text NOT NULL CHECK (requested_by <> ''),
    idempotency_key  text CHECK (idempotency_key <> ''),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text,
    executed_at      timestamptz,
    execution_result jsonb,
    execution_error  text,

    CONSTRAINT expires_after_create CHECK (expires_at > created_at),
    CONSTRAINT pending_is_undecided CHECK (status <> 'pending' OR (
        decided_by IS NULL AND decided_at IS NULL AND decision_reason IS NULL AND
        executed_at IS NULL AND execution_result IS NULL AND execution_error IS NULL)),
    CONSTRAINT approved_is_executed CHECK (status <> 'approved' OR (
        decided_by IS NOT NULL AND decided_at IS NOT NULL AND executed_at IS NOT NULL AND
        execution_error IS NULL)),
    CONSTRAINT rejected_has_reason CHECK (status <> 'rejected' OR (
        decided_by IS NOT NULL AND decided_at IS NOT NULL AND coalesce(decision_reason, '') <> '' AND
        executed_at IS NULL AND execution_result IS NULL AND execution_error IS NULL)),
    CONSTRAINT cancelled_by_requester CHECK (status <> 'cancelled' OR (
        decided_by = requested_by AND decided_at IS NOT NULL AND
        executed_at IS NULL AND execution_result IS NULL AND execution_error IS NULL)),
    CONSTRAINT expired_is_unexecuted CHECK (status <> 'expired' OR (
        decided_at IS NOT NULL AND executed_at IS NULL AND execution_result IS NULL AND
        execution_error IS NULL)),
    CONSTRAINT failed_has_error CHECK (status <> 'failed' OR (
        decided_by IS NOT NULL AND decided_at IS NOT NULL AND coalesce(execution_error, '') <> '' AND
        executed_at IS NULL AND execution_result IS NULL)),
    CONSTRAINT decided_after_create CHECK (decided_at IS NULL OR decided_at >= created_at)
);

CREATE UNIQUE INDEX ai_approvals_idempotency
    ON ai_approvals (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX ai_approvals_newest ON ai_approvals (created_at DESC, id DESC);
CREATE INDEX ai_approvals_status_newest ON ai_approvals (status, created_at DESC, id DESC);
CREATE INDEX ai_approvals_pending_expiry ON ai_approvals (expires_at) WHERE status = 'pending';

-- Append-only audit log: one row per state change, written in the transaction of the change.
CREATE TABLE approval_events (
    id          bigserial PRIMARY KEY,
    approval_id uuid NOT NULL REFERENCES ai_approvals (id),
    type        text NOT NULL
                CHECK (type IN ('created', 'approved', 'rejected', 'expired', 'cancelled', 'failed')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX approval_events_by_approval ON approval_events (approval_id, id);

CREATE FUNCTION approval_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'approval_events is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER approval_events_no_change BEFORE UPDATE OR DELETE ON approval_events
    FOR EACH ROW EXECUTE FUNCTION approval_events_append_only();

-- AIP-155 request ids: the first outcome of a decision call, replayed to its retries.
CREATE TABLE decision_requests (
    actor       text NOT NULL,
    request_id  text NOT NULL,
    approval_id uuid NOT NULL REFERENCES ai_approvals (id),
    method      text NOT NULL,
    code        integer NOT NULL,
    reason      text NOT NULL DEFAULT '',
    message     text NOT NULL DEFAULT '',
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, request_id)
);
