-- A gap-free event stream.
--
-- bigserial ids are not commit-ordered: a transaction that took id 41 may commit after one that
-- took id 42, and a reader that resumed "after 42" would lose 41. Event ids are therefore
-- (transaction id << 16) + a counter within the transaction, and readers deliver only events
-- whose transaction is older than every transaction still running (the snapshot's xmin). Every
-- transaction that can still add an event has a transaction id >= xmin, so its events get ids
-- above everything delivered so far: "after K" never skips one. Rows written before this
-- migration keep their small ids, which sort before all new ones.
CREATE FUNCTION approval_event_id() RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(nullif(current_setting('approvald.event_seq', true), ''), '0')::integer + 1;
BEGIN
    IF n >= 65536 THEN
        RAISE EXCEPTION 'more than 65535 approval events in one transaction';
    END IF;
    PERFORM set_config('approvald.event_seq', n::text, true);
    RETURN (pg_current_xact_id()::text::bigint << 16) + n;
END $$;

ALTER TABLE approval_events ALTER COLUMN id SET DEFAULT approval_event_id();

-- The approval as it stood right after the event (a row snapshot, for the stream).
ALTER TABLE approval_events ADD COLUMN approval jsonb;

-- Wakes every approvald's listener when events commit (one notification per statement).
CREATE FUNCTION approval_events_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('approval_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER approval_events_notify AFTER INSERT ON approval_events
    FOR EACH STATEMENT EXECUTE FUNCTION approval_events_notify();
