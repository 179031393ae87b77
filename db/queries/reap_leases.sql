-- Ends the attempts of executions of the types $1 whose lease ran out (at most $2 of them):
-- each is due again at once, or fails for good once it has used its max_attempts, and its
-- approval follows with an event. Executions locked by a worker's call are skipped.
WITH expired AS (
    SELECT id FROM approvald.executions
    WHERE state = 'running' AND action_type = ANY ($1::text[]) AND lease_expires_at <= now()
    ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE approvald.executions e
    SET state = CASE WHEN e.attempt >= e.max_attempts THEN 'failed' ELSE 'queued' END,
        due_at = now(),
        ended_at = CASE WHEN e.attempt >= e.max_attempts THEN now() END,
        last_error = format('attempt %s: the lease of %s expired', e.attempt, e.lease_holder)
    FROM expired x WHERE e.id = x.id
    RETURNING e.*
), ended AS (
    UPDATE approvald.execution_attempts t
    SET ended_at = now(), outcome = 'lease_expired', error = m.last_error
    FROM moved m WHERE t.execution_id = m.id AND t.attempt = m.attempt
), approval AS (
    UPDATE approvald.approvals a
    SET status = CASE WHEN m.state = 'failed' THEN 'failed' ELSE a.status END,
        execution_state = m.state,
        execution_error = m.last_error,
        execution_lease_holder = NULL,
        execution_lease_expires_at = NULL,
        version = a.version + 1
    FROM moved m WHERE a.id = m.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
)
INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
SELECT id, CASE WHEN status = 'failed' THEN 'failed' ELSE 'execution_retry' END, 'approvald',
       version, jsonb_build_object('error', execution_error, 'attempt', execution_attempts),
       to_jsonb(approval)
FROM approval
RETURNING approval_id, type
