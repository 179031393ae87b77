-- The event listener while nobody watches: no wake-up per commit (a script, never prepared).
UNLISTEN approval_events
