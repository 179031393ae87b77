-- The recorded first outcome of a decision call by actor $1 with request id $2.
SELECT approval_id, method, code, reason, message, metadata
FROM approvald.decision_requests WHERE actor = $1 AND request_id = $2
