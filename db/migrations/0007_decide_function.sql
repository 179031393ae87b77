-- approval_decide: the one place that writes a decision on an approval (its final status, who
-- decided, when, the action's result or error, the version bump) and appends its event. Every
-- statement that decides calls it: record_decision.sql under the full path's row lock,
-- decide_at_once.sql on the row its own conditions locked, expire_due.sql for each due row.
-- The caller holds the row lock; no row comes back if the version moved.
CREATE FUNCTION approval_decide(
    p_id uuid, p_version bigint, p_status text, p_decided_by text, p_reason text,
    p_result jsonb, p_error text, p_actor text, p_request_id text, p_call text)
RETURNS TABLE (decided ai_approvals, votes jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ai_approvals
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
    INSERT INTO approval_events (approval_id, type, actor, version, detail, approval)
    VALUES (p_id, p_status, p_actor, decided.version,
            jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'error', p_error,
                                                 'request_id', p_request_id, 'call', p_call)),
            to_jsonb(decided) || jsonb_build_object('votes', votes));
    RETURN NEXT;
END $$;
