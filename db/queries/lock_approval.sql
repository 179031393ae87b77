-- Takes the row lock that serialises every decision on one approval, and judges expiry by the
-- database clock.
SELECT *, expires_at <= now() AS is_expired, approvald.approval_votes_json(id) AS votes
FROM approvald.approvals WHERE id = $1::uuid FOR UPDATE
