-- Whether committed events after $1 are still held back by an older running transaction.
SELECT EXISTS (SELECT 1 FROM approval_events
               WHERE id > $1::bigint AND xact_id >= pg_snapshot_xmin(pg_current_snapshot()))
       AS held_back
