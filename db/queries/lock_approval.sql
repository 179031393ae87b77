-- Takes the row lock that serialises every decision on one approval, and judges expiry by the
-- database clock.
SELECT *, expires_at <= now() AS is_expired, approval_votes_json(id) AS votes
FROM ai_approvals WHERE id = $1::uuid FOR UPDATE
