-- A webhook subscription's columns (see ParseSubscriptionRow); times until now in milliseconds
-- by the database clock, so that the caller never compares clocks.
name, cursor, state, lease_holder, lease_token, lease_expires_at, failing_event_id, attempts,
       first_failed_at, next_attempt_at, last_error, dead_lettered_at, delivered,
       greatest(0, extract(epoch FROM next_attempt_at - now()) * 1000)::bigint AS retry_in_ms
