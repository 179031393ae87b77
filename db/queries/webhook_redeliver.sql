-- Takes dead-lettered subscription $1 back to delivering, from the event it stopped at, with a
-- fresh retry budget. No row: no such subscription, or it is not dead-lettered.
UPDATE approvald.webhook_subscriptions
SET state = 'active', attempts = 0, first_failed_at = NULL, next_attempt_at = NULL,
    dead_lettered_at = NULL
WHERE name = $1 AND state = 'dead_letter'
RETURNING
    -- @include webhook_columns
