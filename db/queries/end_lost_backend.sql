-- Settles the transaction of a connection that was lost while its COMMIT was in flight: if
-- that backend ($1 pid, $2 backend_start) still exists, terminate it and wait up to $3 ms for it
-- to exit. Its transaction has then either committed or rolled back, for good. `gone` is false
-- only when it did not exit in time.
SELECT CASE
         WHEN EXISTS (SELECT 1 FROM pg_stat_activity
                      WHERE pid = $1::int AND backend_start = $2::timestamptz
                        AND pid <> pg_backend_pid())
         THEN pg_terminate_backend($1::int, $3::bigint)
         ELSE true
       END AS gone
