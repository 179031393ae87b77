-- Fails the attempt of locked execution $1 with error $2, by worker $5: $3 true, due again in
-- $4 milliseconds; false, for good, and the approval is FAILED. Either with an event.
WITH e AS (
    UPDATE approvald.executions
    SET state = CASE WHEN $3::boolean THEN 'queued' ELSE 'failed' END,
        due_at = now() + $4::bigint * interval '1 millisecond',
        last_error = $2,
        ended_at = CASE WHEN $3::boolean THEN NULL ELSE now() END
    WHERE id = $1::uuid
    RETURNING *
), ended AS (
    UPDATE approvald.execution_attempts t
    SET ended_at = now(), outcome = CASE WHEN $3::boolean THEN 'retry' ELSE 'failed' END,
        error = $2
    FROM e WHERE t.execution_id = e.id AND t.attempt = e.attempt
), approval AS (
    UPDATE approvald.approvals a
    SET status = CASE WHEN $3::boolean THEN a.status ELSE 'failed' END,
        execution_state = e.state, execution_error = $2, execution_lease_holder = NULL,
        execution_lease_expires_at = NULL, version = a.version + 1
    FROM e WHERE a.id = e.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, CASE WHEN $3::boolean THEN 'execution_retry' ELSE 'failed' END, $5, version,
           jsonb_build_object('error', $2::text, 'attempt', execution_attempts),
           to_jsonb(approval)
    FROM approval
)
SELECT
    -- @include execution_columns
    , approval.*
FROM e JOIN approval ON approval.id = e.approval_id
