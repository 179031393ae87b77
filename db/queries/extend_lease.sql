-- Moves the lease of locked execution $1 to now + $2 milliseconds; its approval shows the new
-- expiry (no new version: a lease is not a change of the approval).
WITH e AS (
    UPDATE approvald.executions
    SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'
    WHERE id = $1::uuid
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
