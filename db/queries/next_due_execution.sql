-- Milliseconds until the next execution of the types $1 is due (a queued one's backoff, or a
-- running one's lease), by the database clock; NULL when there is none.
SELECT (extract(epoch FROM least(
           (SELECT min(due_at) FROM approvald.executions
            WHERE state = 'queued' AND action_type = ANY ($1::text[])),
           (SELECT min(lease_expires_at) FROM approvald.executions
            WHERE state = 'running' AND action_type = ANY ($1::text[]))) - now()) * 1000)::bigint
       AS due_in_ms
