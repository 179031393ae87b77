-- Records the first outcome of a decision call (AIP-155 request id) in the decision's transaction.
INSERT INTO approvald.decision_requests (actor, request_id, approval_id, method, code, reason, message, metadata)
VALUES ($1, $2, $3::uuid, $4, $5::integer, $6, $7, $8::jsonb)
