-- The id of the newest deliverable event (0 if none): where a new live stream starts.
SELECT coalesce((SELECT id FROM approvald.events
                 WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
                 ORDER BY id DESC LIMIT 1), 0) AS head
