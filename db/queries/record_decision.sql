-- Moves a locked approval ($1, read at version $2) to its final status $3 and appends the event,
-- in one statement. Returns no row if the version moved, which the caller treats as a bug.
-- $4 decided_by (NULL for expiry), $5 decision reason, $6 execution result (jsonb),
-- $7 execution error, $8 the event's actor, $9 request id, $10 the deciding call's token (see
-- decide_at_once.sql).
WITH decided AS (
    UPDATE ai_approvals
    SET status = $3,
        decided_by = $4,
        decided_at = now(),
        decision_reason = $5,
        executed_at = CASE WHEN $3 = 'approved' THEN now() END,
        execution_result = $6::jsonb,
        execution_error = $7,
        version = version + 1
    WHERE id = $1::uuid AND version = $2::integer
    RETURNING *
), event AS (
    INSERT INTO approval_events (approval_id, type, actor, version, detail, approval)
    SELECT id, status, $8, version,
           jsonb_strip_nulls(jsonb_build_object('reason', $5::text, 'error', $7::text,
                                                'request_id', $9::text, 'call', $10::text)),
           to_jsonb(decided) || jsonb_build_object('votes', approval_votes_json(decided.id))
    FROM decided
    RETURNING id
)
SELECT decided.*, (SELECT id FROM event) AS event_id, approval_votes_json(decided.id) AS votes
FROM decided
