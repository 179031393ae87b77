-- Newest first. $1: statuses (text[] or NULL), $2: action type or NULL, $3/$4: keyset cursor
-- (created_at micros, id) of the last row already returned, or NULL; $5: limit.
SELECT *, approval_votes_json(id) AS votes FROM ai_approvals
WHERE ($1::text[] IS NULL OR status = ANY ($1::text[]))
  AND ($2::text IS NULL OR action_type = $2::text)
  AND ($3::bigint IS NULL OR
       (created_at, id) < ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5::integer
