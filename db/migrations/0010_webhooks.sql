-- Event webhooks: each subscription of the config follows the event log from its own cursor
-- (the last event it has handled), delivered by one replica at a time under a lease. A
-- delivery that keeps failing past the subscription's maximum age parks it in 'dead_letter'
-- at that event (order is kept: nothing after it is sent) until an operator redelivers.
CREATE TABLE webhook_subscriptions (
    name             text PRIMARY KEY,
    cursor           bigint NOT NULL,
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'dead_letter')),
    lease_holder     text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    failing_event_id bigint,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    first_failed_at  timestamptz,
    next_attempt_at  timestamptz,
    last_error       text,
    dead_lettered_at timestamptz,
    delivered        bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letter_has_event CHECK (
        state <> 'dead_letter' OR (failing_event_id IS NOT NULL AND dead_lettered_at IS NOT NULL))
);
