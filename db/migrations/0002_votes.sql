-- Quorum approvals: one vote per reviewer and approval, and the 'voted' event.

CREATE TABLE approval_votes (
    approval_id uuid NOT NULL REFERENCES ai_approvals (id),
    voter       text NOT NULL CHECK (voter <> ''),
    voted_at    timestamptz NOT NULL DEFAULT now(),
    comment     text NOT NULL DEFAULT '',
    PRIMARY KEY (approval_id, voter)
);

ALTER TABLE approval_events DROP CONSTRAINT approval_events_type_check;
ALTER TABLE approval_events ADD CONSTRAINT approval_events_type_check
    CHECK (type IN ('created', 'voted', 'approved', 'rejected', 'expired', 'cancelled', 'failed'));

-- The votes of one approval as a JSON array, oldest first (returned with every approval row).
CREATE FUNCTION approval_votes_json(approval uuid) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'voter', voter,
               'micros', (extract(epoch FROM voted_at) * 1000000)::bigint,
               'comment', comment) ORDER BY voted_at, voter), '[]'::jsonb)
    FROM approval_votes WHERE approval_id = approval
$$;
