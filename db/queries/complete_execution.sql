-- Completes locked execution $1 with result $2 (jsonb) by worker $3: its approval is executed,
-- with an event.
WITH e AS (
    UPDATE approvald.executions
    SET state = 'succeeded', result = $2::jsonb, ended_at = now(), last_error = NULL
    WHERE id = $1::uuid
    RETURNING *
), ended AS (
    UPDATE approvald.execution_attempts t SET ended_at = now(), outcome = 'succeeded'
    FROM e WHERE t.execution_id = e.id AND t.attempt = e.attempt
), approval AS (
    UPDATE approvald.approvals a
    SET executed_at = now(), execution_result = $2::jsonb, execution_error = NULL,
        execution_state = 'succeeded', execution_lease_holder = NULL,
        execution_lease_expires_at = NULL, version = a.version + 1
    FROM e WHERE a.id = e.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, 'executed', $3, version, jsonb_build_object('attempt', execution_attempts),
           to_jsonb(approval)
    FROM approval
)
SELECT
    -- @include execution_columns
    , approval.*
FROM e JOIN approval ON approval.id = e.approval_id
