-- Claims up to $2 due executions of the types $1 for worker $3, each under a new lease token
-- for $4 milliseconds, as attempt + 1; their approvals show it, with an event. Executions
-- another claim holds are skipped, so claims never wait for each other.
WITH due AS (
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
