-- Gives up subscription $1's lease (token $2), so that another replica takes it at once.
UPDATE approvald.webhook_subscriptions SET lease_expires_at = now()
WHERE name = $1 AND lease_token = $2::uuid AND lease_expires_at > now()
