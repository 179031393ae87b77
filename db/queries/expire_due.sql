-- Expires a batch of due pending approvals ($1 at most) with their events, and counts them by
-- action type. SKIP LOCKED lets replicas share the work, and a row being decided right now is
-- left to its decision. (The event CTE runs in full although nothing reads it.)
WITH due AS (
    SELECT id FROM approvald.approvals
    WHERE status = 'pending' AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $1::integer
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE approvald.approvals a
    SET status = 'expired', decided_at = now(), version = a.version + 1
    FROM due WHERE a.id = due.id
    RETURNING a.*
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, approval)
    SELECT id, 'expired', 'approvald', version,
           to_jsonb(expired) || jsonb_build_object('votes', approvald.approval_votes_json(expired.id))
    FROM expired
)
SELECT action_type, count(*) AS expired FROM expired GROUP BY action_type
