-- Moves the lease of execution $1 to now + $2 milliseconds, if $3 is its lease token, it is
-- running and of one of the types $4; its approval shows the new expiry (no new version: a
-- lease is not a change of the approval). No row otherwise (the caller finds out why).
WITH e AS (
    UPDATE approvald.executions
    SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'
    WHERE id = $1::uuid AND lease_token = $3::uuid AND state = 'running'
      AND action_type = ANY ($4::text[])
    RETURNING *
), approval AS (
    UPDATE approvald.approvals a SET execution_lease_expires_at = e.lease_expires_at
    FROM e WHERE a.id = e.approval_id
    RETURNING a.*, approvald.approval_votes_json(a.id) AS votes
)
SELECT
    -- @include execution_columns
    , approval.*
FROM e JOIN approval ON approval.id = e.approval_id
