-- Moves a locked approval ($1, read at version $2) to its final status $3 and appends the event
-- (see approval_decide in 0007_decide_function.sql). Returns no row if the version moved, which
-- the caller treats as a bug.
-- $4 decided_by (NULL for expiry), $5 decision reason, $6 execution result (jsonb),
-- $7 execution error, $8 the event's actor, $9 request id, $10 the deciding call's token (see
-- decide_at_once.sql).
SELECT (d.decided).*, d.votes
FROM approvald.approval_decide($1::uuid, $2::bigint, $3, $4, $5, $6::jsonb, $7, $8, $9, $10) d
