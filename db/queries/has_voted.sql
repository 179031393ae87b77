SELECT EXISTS (SELECT 1 FROM approvald.votes WHERE approval_id = $1::uuid AND voter = $2) AS voted
