-- The events of one approval are in the log in the order they happened.
--
-- An event's id comes from its transaction id, which a transaction may take before it waits for
-- the approval's row lock (an UPDATE takes it first; a group-commit batch took it with an
-- earlier statement). Another transaction can then take the lock, commit a newer event for the
-- same approval with a larger id, and this one's event would sort before it: a watcher would
-- see "rejected" and then the vote it was applied on top of. Writers of one approval's events
-- are serialised by its row lock, so the later one sees the earlier one's event here (a fresh
-- snapshot per statement); finding a larger id, it fails with a serialization failure, which
-- approvald retries as a new transaction, with a new, larger transaction id.
CREATE FUNCTION approval_events_in_order() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM approval_events WHERE approval_id = NEW.approval_id AND id > NEW.id) THEN
        RAISE EXCEPTION 'approval % has a newer event than this transaction can write; retry',
            NEW.approval_id USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER approval_events_in_order BEFORE INSERT ON approval_events
    FOR EACH ROW EXECUTE FUNCTION approval_events_in_order();
