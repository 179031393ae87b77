-- The event listener's session (a script: run with the simple protocol, never prepared). Its
-- name tells it apart in pg_stat_activity: one per daemon, however many watchers.
SET application_name = 'approvald-listener'
