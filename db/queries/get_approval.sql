SELECT *, approval_votes_json(id) AS votes FROM ai_approvals WHERE id = $1::uuid
