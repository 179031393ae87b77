-- Moves a locked approval ($1, read at version $2) to its final status $3 and appends the event,
-- in one statement. Returns no row if the version moved, which the caller treats as a bug.
-- $4 decided_by (NULL for expiry), $5 decision reason, $6 execution result (jsonb),
-- $7 execution error, $8 the event's actor, $9 request id, $10 the deciding call's token (see
-- decide_at_once.sql), $11 true: an approval of an external type, whose execution is enqueued
-- here (queued, due now; $12 its max_attempts) instead of run. The columns a decision writes
-- are fragments/decision_columns.sql, shared with decide_at_once.sql.
WITH decided AS (
    UPDATE approvald.approvals
    -- @include decision_columns
        executed_at = CASE WHEN $3 = 'approved' AND NOT $11::boolean THEN now() END,
        execution_result = $6::jsonb,
        execution_error = $7,
        execution_id = CASE WHEN $11::boolean THEN gen_random_uuid() END,
        execution_state = CASE WHEN $11::boolean THEN 'queued' END
    WHERE id = $1::uuid AND version = $2::integer
    RETURNING *
), queued AS (
    INSERT INTO approvald.executions (id, approval_id, action_type, state, max_attempts, due_at)
    SELECT execution_id, id, action_type, 'queued', $12::integer, now()
    FROM decided WHERE execution_id IS NOT NULL
), votes AS (
    SELECT approvald.approval_votes_json(id) AS list FROM decided  -- once, for event and answer
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, status, $8, version,
           jsonb_strip_nulls(jsonb_build_object('reason', $5::text, 'error', $7::text,
                                                'request_id', $9::text, 'call', $10::text)),
           to_jsonb(decided) || jsonb_build_object('votes', (SELECT list FROM votes))
    FROM decided
    RETURNING id
)
SELECT decided.*, (SELECT id FROM event) AS event_id, (SELECT list FROM votes) AS votes
FROM decided
