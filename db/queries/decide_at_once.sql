-- Decides approval $1 in one statement, without a separate lock round trip and without calling
-- a handler: for decisions whose every check but the row's own state is known beforehand (see
-- DecideAtOnce in db/approval_store.h). The UPDATE takes the same row lock as
-- lock_approval.sql and, should another decision commit first, re-checks its conditions on the
-- new row, so two decisions can never both apply. It writes the columns of
-- fragments/decision_columns.sql, as record_decision.sql does. Returns no row when any check fails (not
-- found, not pending, expired, another version, a type or requester the caller may not decide
-- at once); the caller then takes the full path, which says why.
-- Parameters:
--   $2 the expected version (0 = any); $3 the final status; $4 the actor; $5 the reason;
--   $6 each type's execution result, a jsonb object by type name (NULL unless approving);
--   $7 types the actor may decide whoever requested them;
--   $8 types the actor may decide unless they requested them;
--   $9 true: only the requester's own approvals, of any type (cancel; $7 and $8 unused);
--   $10 the call's request id, NULL if none. A request id the actor already used is never
--       decided here (the full path answers the first call's outcome); a new one is recorded
--       with the decision (code 0), as insert_decision_request.sql does;
--   $11 the method: 'approve', 'reject' or 'cancel';
--   $12 the call's own token, written into the event's detail: after a commit lost with its
--       connection, it tells whether this call's decision committed.
WITH decided AS (
    UPDATE approvald.approvals
    -- @include decision_columns
        executed_at = CASE WHEN $3 = 'approved' THEN now() END,
        execution_result = $6::jsonb -> action_type,
        execution_error = NULL
    WHERE id = $1::uuid
      AND status = 'pending'
      AND expires_at > now()
      AND ($2::bigint = 0 OR version = $2::bigint)
      AND NOT EXISTS (SELECT FROM approvald.decision_requests r
                      WHERE r.actor = $4 AND r.request_id = $10)
      AND CASE WHEN $9::boolean THEN requested_by = $4
               ELSE action_type = ANY ($7::text[])
                    OR (action_type = ANY ($8::text[]) AND requested_by <> $4) END
    RETURNING *
), votes AS (
    SELECT approvald.approval_votes_json(id) AS list FROM decided  -- once, for event and answer
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, status, $4, version,
           jsonb_strip_nulls(jsonb_build_object('reason', $5::text, 'request_id', $10::text,
                                                'call', $12::text)),
           to_jsonb(decided) || jsonb_build_object('votes', (SELECT list FROM votes))
    FROM decided
    RETURNING id
), recorded AS (
    INSERT INTO approvald.decision_requests (actor, request_id, approval_id, method, code)
    SELECT $4, $10, id, $11, 0 FROM decided WHERE $10::text IS NOT NULL
)
SELECT decided.*, (SELECT id FROM event) AS event_id, (SELECT list FROM votes) AS votes
FROM decided
