-- Completes execution $1 with result $2 (jsonb) by worker $3, if $4 is its lease token, it is
-- running (or due again after its lease ran out, unclaimed since) and of one of the types $5:
-- its approval is executed, with an event. No row otherwise (the caller finds out why).
WITH e AS (
    UPDATE approvald.executions
    SET state = 'succeeded', result = $2::jsonb, ended_at = now(), last_error = NULL
    WHERE id = $1::uuid AND lease_token = $4::uuid AND state IN ('running', 'queued')
      AND action_type = ANY ($5::text[])
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
