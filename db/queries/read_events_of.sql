-- The deliverable events of approvals $3 (uuid[]) after $1, in id order, at most $2 (see
-- read_events.sql), by the index on (approval_id, id): a watch of a few approvals never reads
-- the rest of the log. Every row also carries `read_to`, the newest deliverable event id: when
-- fewer than $2 events come back, none of these approvals has a deliverable event between the
-- last one and it. With no event, one row of NULLs but `read_to`.
WITH frontier AS (
    SELECT coalesce((SELECT id FROM approvald.events
                     WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY id DESC LIMIT 1), 0) AS read_to
)
SELECT e.id, e.approval_id, e.type, e.actor, e.at, e.version, e.approval, f.read_to
FROM frontier f
LEFT JOIN LATERAL (
    SELECT * FROM approvald.events
    WHERE approval_id = ANY ($3::uuid[]) AND id > $1::bigint
      AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY id
    LIMIT $2::integer
) e ON true
ORDER BY e.id
