SELECT * FROM ai_approvals WHERE id = $1::uuid
