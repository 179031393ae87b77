-- Creates pending approval $8 (a new UUID) and its 'created' event. Returns no row when the
-- requester already used this idempotency key ($5). Expiry: absolute micros since epoch ($6) or a
-- ttl in micros ($7).
WITH inserted AS (
    INSERT INTO approvald.approvals (id, action_type, action_data, summary, requested_by, idempotency_key, expires_at)
    VALUES ($8::uuid, $1, $2::jsonb, $3, $4, $5,
            CASE WHEN $6::bigint IS NOT NULL THEN 'epoch'::timestamptz + $6::bigint * interval '1 microsecond'
                 ELSE now() + $7::bigint * interval '1 microsecond' END)
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, approval)
    SELECT id, 'created', requested_by, version, to_jsonb(inserted) || '{"votes": []}'
    FROM inserted
    RETURNING id
)
SELECT inserted.*, (SELECT id FROM event) AS event_id FROM inserted
