-- Newest first. $1: statuses (text[] or NULL), $2: action type or NULL, $3/$4: keyset cursor
-- (created_at micros, id) of the last row already returned, or NULL; $5: limit; $6: requester
-- or NULL; $7: decider or NULL; $8: execution states (text[] or NULL).
SELECT *, approvald.approval_votes_json(id) AS votes FROM approvald.approvals
WHERE ($1::text[] IS NULL OR status = ANY ($1::text[]))
  AND ($2::text IS NULL OR action_type = $2::text)
  AND ($6::text IS NULL OR requested_by = $6::text)
  AND ($7::text IS NULL OR decided_by = $7::text)
  AND ($8::text[] IS NULL OR execution_state = ANY ($8::text[]))
  AND ($3::bigint IS NULL OR
       (created_at, id) < ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5::integer
