-- Listeners poll the event log instead of waiting for NOTIFY.
--
-- A transaction that has called pg_notify takes one lock for the whole cluster at commit and
-- holds it through its WAL flush, so every decision's commit (each writes an event) ran one at
-- a time and never shared a flush with another. approvald's listener now reads the log every
-- 10 ms while streams are open (and the newest id every 100 ms while none are), which needs no
-- trigger.
--
-- During a rolling upgrade, replicas of an older version still LISTEN: they no longer get
-- notifications and deliver on their 500 ms fallback poll until they are replaced.
DROP TRIGGER IF EXISTS approval_events_notify ON approval_events;
DROP FUNCTION IF EXISTS approval_events_notify();
