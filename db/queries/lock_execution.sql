-- Locks execution $1 for a worker's call and reads it with its approval.
SELECT
    -- @include execution_columns
    , a.*, approvald.approval_votes_json(a.id) AS votes
FROM approvald.executions e JOIN approvald.approvals a ON a.id = e.approval_id
WHERE e.id = $1::uuid
FOR UPDATE OF e
