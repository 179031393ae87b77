-- Takes the row lock that serialises every decision on one approval, and judges expiry by the
-- database clock.
SELECT *, expires_at <= now() AS is_expired FROM ai_approvals WHERE id = $1::uuid FOR UPDATE
