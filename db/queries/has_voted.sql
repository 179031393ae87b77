SELECT EXISTS (SELECT 1 FROM approval_votes WHERE approval_id = $1::uuid AND voter = $2) AS voted
