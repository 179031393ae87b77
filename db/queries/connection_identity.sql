-- Who this connection is on the server: the backend's pid and start time, which together name
-- it uniquely (a pid alone can be reused, e.g. after a restart).
SELECT pid, backend_start::text AS backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
