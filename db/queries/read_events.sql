-- Events after $1 (id order) that every reader can safely deliver: their transaction is older
-- than every transaction still running, so no event can later appear below them. At most $2.
SELECT id, approval_id, type, actor, at, version, approval
FROM approvald.events
WHERE id > $1::bigint AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY id
LIMIT $2::integer
