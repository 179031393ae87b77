-- Pending approvals for tests/perf/approve.pgbench: ids md5(1..:n)::uuid, taken in order by
-- perf_approve_seq, each with its 'created' event like the ones CreateApproval writes.
DROP SEQUENCE IF EXISTS perf_approve_seq;
CREATE SEQUENCE perf_approve_seq;
WITH inserted AS (
    INSERT INTO ai_approvals (id, action_type, action_data, summary, requested_by, expires_at)
    SELECT md5(g::text)::uuid, 'noop', '{}'::jsonb, 'approval-bench', 'perf', now() + interval '1 day'
    FROM generate_series(1, :n) AS g
    RETURNING *
)
INSERT INTO approval_events (approval_id, type, actor, version, approval)
SELECT id, 'created', requested_by, version, to_jsonb(inserted) || '{"votes": []}' FROM inserted;
VACUUM ANALYZE ai_approvals;
VACUUM ANALYZE approval_events;
