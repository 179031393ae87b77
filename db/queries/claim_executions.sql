-- Claims up to $2 due executions of the types $1 for worker $3, each under a new lease token
-- for $4 milliseconds, as attempt + 1; their approvals show it, with an event. Executions
-- another claim holds are skipped, so claims never wait for each other. The same statement
-- ends the attempts of up to $5 executions of those types whose lease ran out: each is due
-- again (claimable from the next claim on: one statement sees one snapshot), or fails for good
-- once it has used its max_attempts; its approval follows with an event. One statement: one
-- round trip, its own transaction.
WITH expired AS (
    SELECT id FROM approvald.executions
    WHERE state = 'running' AND action_type = ANY ($1::text[]) AND lease_expires_at <= now()
    ORDER BY lease_expires_at LIMIT $5 FOR UPDATE SKIP LOCKED
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
), reaped AS (
    UPDATE approvald.approvals a
    SET status = CASE WHEN m.state = 'failed' THEN 'failed' ELSE a.status END,
        execution_state = m.state,
        execution_error = m.last_error,
        execution_lease_holder = NULL,
        execution_lease_expires_at = NULL,
        version = a.version + 1
    FROM moved m WHERE a.id = m.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
), reap_events AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, CASE WHEN status = 'failed' THEN 'failed' ELSE 'execution_retry' END, 'approvald',
           version, jsonb_build_object('error', execution_error, 'attempt', execution_attempts),
           to_jsonb(reaped)
    FROM reaped
), due AS (
    SELECT id FROM approvald.executions
    WHERE state = 'queued' AND action_type = ANY ($1::text[]) AND due_at <= now()
    ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
), e AS (
    UPDATE approvald.executions x
    SET state = 'running', attempt = x.attempt + 1, lease_token = gen_random_uuid(),
        lease_holder = $3, lease_expires_at = now() + $4::bigint * interval '1 millisecond'
    FROM due WHERE x.id = due.id
    RETURNING x.*
), attempts AS (
    INSERT INTO approvald.execution_attempts (execution_id, attempt, worker, lease_token)
    SELECT id, attempt, lease_holder, lease_token FROM e
), approval AS (
    UPDATE approvald.approvals a
    SET execution_state = 'running', execution_attempts = e.attempt,
        execution_lease_holder = e.lease_holder, execution_lease_expires_at = e.lease_expires_at,
        version = a.version + 1
    FROM e WHERE a.id = e.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, 'execution_started', $3, version,
           jsonb_build_object('attempt', execution_attempts), to_jsonb(approval)
    FROM approval
)
SELECT
    -- @include execution_columns
    , approval.*
FROM e JOIN approval ON approval.id = e.approval_id
ORDER BY e.due_at, e.id
