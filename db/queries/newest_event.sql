-- The id of the newest committed event, deliverable or not (0 if none). Beyond the listener's
-- head, it means an event is held back behind an older transaction that is still running.
SELECT coalesce((SELECT id FROM approvald.events ORDER BY id DESC LIMIT 1), 0) AS newest
