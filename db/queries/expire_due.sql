-- Expires a batch of due pending approvals ($1 at most) with their events, and counts them by
-- action type. SKIP LOCKED lets replicas share the work, and a row being decided right now is
-- left to its decision. approval_decide writes each expiry and its event.
WITH due AS (
    SELECT id, version FROM approvald.approvals
    WHERE status = 'pending' AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $1::integer
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT (d.decided).action_type
    FROM due, approvald.approval_decide(due.id, due.version, 'expired', NULL, NULL, NULL, NULL,
                              'approvald', NULL, NULL) d
)
SELECT action_type, count(*) AS expired FROM expired GROUP BY action_type
