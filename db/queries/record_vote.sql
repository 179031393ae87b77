-- A vote that did not reach the quorum: bumps the version of the locked approval ($1, read at
-- version $2) and appends a 'voted' event by $3 with the vote count $4 of $5 required; $6 the
-- request id, $7 the voting call's token (see decide_at_once.sql).
WITH bumped AS (
    UPDATE approvald.approvals SET version = version + 1
    WHERE id = $1::uuid AND version = $2::integer
    RETURNING *
), event AS (
    INSERT INTO approvald.events (approval_id, type, actor, version, detail, approval)
    SELECT id, 'voted', $3, version,
           jsonb_build_object('votes', $4::integer, 'required', $5::integer, 'request_id', $6::text,
                              'call', $7::text),
           to_jsonb(bumped) || jsonb_build_object('votes', approvald.approval_votes_json(bumped.id))
    FROM bumped
    RETURNING id
)
SELECT bumped.*, (SELECT id FROM event) AS event_id, approvald.approval_votes_json(bumped.id) AS votes
FROM bumped
