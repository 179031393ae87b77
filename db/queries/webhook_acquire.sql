-- Takes (or renews) the lease of subscription $1 for holder $2, for $3 milliseconds, if it is
-- free, ran out, or is already $2's. A renewal keeps the token; a new lease gets a new one.
-- No row: another holder has it.
UPDATE approvald.webhook_subscriptions
SET lease_token = CASE WHEN lease_holder = $2 AND lease_expires_at > now() THEN lease_token
                       ELSE gen_random_uuid() END,
    lease_holder = $2,
    lease_expires_at = now() + $3::bigint * interval '1 millisecond'
WHERE name = $1 AND (lease_expires_at IS NULL OR lease_expires_at <= now() OR lease_holder = $2)
RETURNING
    -- @include webhook_columns
