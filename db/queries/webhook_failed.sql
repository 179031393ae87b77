-- A delivery of event $3 to subscription $1 (lease token $2) failed with $4: tried again after
-- $5 milliseconds, or, once the first failure of this event is $6 milliseconds old, the
-- subscription is dead-lettered at it. No row: the lease is lost.
UPDATE approvald.webhook_subscriptions
SET failing_event_id = $3::bigint,
    attempts = CASE WHEN failing_event_id = $3::bigint THEN attempts + 1 ELSE 1 END,
    first_failed_at = CASE WHEN failing_event_id = $3::bigint
                           THEN coalesce(first_failed_at, now()) ELSE now() END,
    last_error = $4,
    next_attempt_at = now() + $5::bigint * interval '1 millisecond',
    state = CASE WHEN failing_event_id = $3::bigint
                      AND first_failed_at <= now() - $6::bigint * interval '1 millisecond'
                 THEN 'dead_letter' ELSE 'active' END,
    dead_lettered_at = CASE WHEN failing_event_id = $3::bigint
                                 AND first_failed_at <= now() - $6::bigint * interval '1 millisecond'
                            THEN now() END
WHERE name = $1 AND lease_token = $2::uuid AND lease_expires_at > now() AND state = 'active'
RETURNING
    -- @include webhook_columns
