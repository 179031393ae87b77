-- Adds subscription $1 if it is new, starting after the newest deliverable event (a new
-- subscription gets what happens from now on). An existing one keeps its cursor.
INSERT INTO approvald.webhook_subscriptions (name, cursor)
VALUES ($1, coalesce((SELECT id FROM approvald.events
                      WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY id DESC LIMIT 1), 0))
ON CONFLICT (name) DO NOTHING
