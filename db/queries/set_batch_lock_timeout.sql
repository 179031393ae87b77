-- Bounds each lock wait of a group commit's transaction ($1 milliseconds): a statement that
-- waits longer for a row another transaction holds fails the batch, and then waits alone, so it
-- never holds up the unrelated statements it was grouped with.
SELECT set_config('lock_timeout', $1, true)
