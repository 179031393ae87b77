SELECT *, approvald.approval_votes_json(id) AS votes FROM approvald.approvals WHERE id = $1::uuid
