-- The approval a requester ($1) created with an idempotency key ($2), and whether its payload
-- (action type $3, action data $4, summary $5) equals the new request's.
SELECT *, (action_type = $3 AND action_data = $4::jsonb AND summary = $5) AS same_payload,
       approvald.approval_votes_json(id) AS votes
FROM approvald.approvals
WHERE requested_by = $1 AND idempotency_key = $2
