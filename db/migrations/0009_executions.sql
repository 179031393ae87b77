-- External executions: an approved action of a `handler: external` type is enqueued, in the
-- decision's transaction, as one execution that the caller's own workers claim under a lease
-- and complete or fail, fenced by the lease token. The approval mirrors where its execution is
-- (execution_* columns), so that reads, lists and the event stream show it.
CREATE TABLE executions (
    id               uuid PRIMARY KEY,
    approval_id      uuid NOT NULL UNIQUE REFERENCES approvals (id),
    action_type      text NOT NULL,
    state            text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    due_at           timestamptz NOT NULL,
    lease_token      uuid,
    lease_holder     text,
    lease_expires_at timestamptz,
    last_error       text,
    result           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz,
    CONSTRAINT running_is_leased CHECK (state <> 'running' OR (
        lease_token IS NOT NULL AND lease_holder IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT ended_when_final CHECK ((state IN ('succeeded', 'failed')) = (ended_at IS NOT NULL))
);

-- What a claim looks for: queued and due, or running with a lease that has run out.
CREATE INDEX executions_queued ON executions (action_type, due_at) WHERE state = 'queued';
CREATE INDEX executions_leased ON executions (action_type, lease_expires_at)
    WHERE state = 'running';

-- Every attempt and how it ended (the audit of an execution's retries).
CREATE TABLE execution_attempts (
    execution_id uuid NOT NULL REFERENCES executions (id),
    attempt      integer NOT NULL,
    worker       text NOT NULL,
    lease_token  uuid NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    outcome      text CHECK (outcome IN ('succeeded', 'failed', 'retry', 'lease_expired')),
    error        text,
    PRIMARY KEY (execution_id, attempt)
);

ALTER TABLE approvals
    ADD COLUMN execution_id uuid,
    ADD COLUMN execution_state text
        CHECK (execution_state IN ('queued', 'running', 'succeeded', 'failed')),
    ADD COLUMN execution_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN execution_lease_holder text,
    ADD COLUMN execution_lease_expires_at timestamptz;

-- An approved approval is executed, unless its external execution is still under way (then its
-- execution_error is the last failed attempt's).
ALTER TABLE approvals DROP CONSTRAINT approved_is_executed;
ALTER TABLE approvals ADD CONSTRAINT approved_is_executed CHECK (status <> 'approved' OR (
    decided_by IS NOT NULL AND decided_at IS NOT NULL AND
    CASE WHEN execution_state IN ('queued', 'running') THEN executed_at IS NULL
         ELSE executed_at IS NOT NULL AND execution_error IS NULL END));

ALTER TABLE events DROP CONSTRAINT approval_events_type_check;
ALTER TABLE events ADD CONSTRAINT approval_events_type_check
    CHECK (type IN ('created', 'voted', 'approved', 'rejected', 'expired', 'cancelled', 'failed',
                    'execution_started', 'execution_retry', 'executed'));
