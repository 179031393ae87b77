-- Subscription $1 has handled every event up to $3, $4 of them delivered, under lease token
-- $2, which is renewed for $5 milliseconds. A failure streak ends once the cursor passes its
-- event. No row: the lease is lost.
UPDATE approvald.webhook_subscriptions
SET cursor = greatest(cursor, $3::bigint), delivered = delivered + $4::bigint,
    failing_event_id = CASE WHEN failing_event_id <= $3::bigint THEN NULL ELSE failing_event_id END,
    attempts = CASE WHEN failing_event_id <= $3::bigint THEN 0 ELSE attempts END,
    first_failed_at = CASE WHEN failing_event_id <= $3::bigint THEN NULL ELSE first_failed_at END,
    next_attempt_at = CASE WHEN failing_event_id <= $3::bigint THEN NULL ELSE next_attempt_at END,
    last_error = CASE WHEN failing_event_id <= $3::bigint THEN NULL ELSE last_error END,
    lease_expires_at = now() + $5::bigint * interval '1 millisecond'
WHERE name = $1 AND lease_token = $2::uuid AND lease_expires_at > now() AND state = 'active'
RETURNING cursor
