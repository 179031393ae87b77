-- approvald's tables take plain names in its own schema (the one --db-schema names, which
-- `approvald migrate` makes the search_path of this transaction; the prefixes kept them apart
-- from an application's tables in public, which the schema now does). Its functions name their
-- tables through this schema whatever search_path their caller has: approvald's connections
-- keep the application's, for the operators' `sql` actions.
ALTER TABLE approvald_settings RENAME TO settings;
ALTER TABLE ai_approvals RENAME TO approvals;
ALTER TABLE approval_events RENAME TO events;
ALTER TABLE approval_votes RENAME TO votes;
ALTER INDEX approvald_settings_pkey RENAME TO settings_pkey;
ALTER INDEX ai_approvals_pkey RENAME TO approvals_pkey;
ALTER INDEX ai_approvals_idempotency RENAME TO approvals_idempotency;
ALTER INDEX ai_approvals_newest RENAME TO approvals_newest;
ALTER INDEX ai_approvals_status_newest RENAME TO approvals_status_newest;
ALTER INDEX ai_approvals_pending_expiry RENAME TO approvals_pending_expiry;
ALTER INDEX ai_approvals_requester_newest RENAME TO approvals_requester_newest;
ALTER INDEX ai_approvals_decider_newest RENAME TO approvals_decider_newest;
ALTER INDEX approval_events_pkey RENAME TO events_pkey;
ALTER INDEX approval_events_by_approval RENAME TO events_by_approval;
ALTER INDEX approval_votes_pkey RENAME TO votes_pkey;
ALTER SEQUENCE approval_events_id_seq RENAME TO events_id_seq;

CREATE OR REPLACE FUNCTION approval_events_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION 'approval events are append-only' USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE FUNCTION approval_votes_json(approval uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'voter', voter,
                       'micros', (extract(epoch FROM voted_at) * 1000000)::bigint,
                       'comment', comment) ORDER BY voted_at, voter), '[]'::jsonb)
            FROM votes WHERE approval_id = approval);
END $$;

CREATE OR REPLACE FUNCTION approval_events_in_order() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT FROM events WHERE approval_id = NEW.approval_id AND id > NEW.id) THEN
        RAISE EXCEPTION 'approval % has a newer event than this transaction can write; retry',
            NEW.approval_id USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;

-- As in 0007_decide_function.sql, on the renamed tables.
CREATE OR REPLACE FUNCTION approval_decide(
    p_id uuid, p_version bigint, p_status text, p_decided_by text, p_reason text,
    p_result jsonb, p_error text, p_actor text, p_request_id text, p_call text)
RETURNS TABLE (decided approvals, votes jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE approvals
    SET status = p_status,
        decided_by = p_decided_by,
        decided_at = now(),
        decision_reason = p_reason,
        executed_at = CASE WHEN p_status = 'approved' THEN now() END,
        execution_result = p_result,
        execution_error = p_error,
        version = version + 1
    WHERE id = p_id AND version = p_version
    RETURNING * INTO decided;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    votes := approval_votes_json(p_id);
    INSERT INTO events (approval_id, type, actor, version, detail, approval)
    VALUES (p_id, p_status, p_actor, decided.version,
            jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'error', p_error,
                                                 'request_id', p_request_id, 'call', p_call)),
            to_jsonb(decided) || jsonb_build_object('votes', votes));
    RETURN NEXT;
END $$;
