-- Pending approvals for tests/perf/approve.pgbench: ids md5(:lo..:hi)::uuid, each with its
-- 'created' event like the ones CreateApproval writes. tests/perf/perf.py runs it in chunks
-- (one transaction holds at most 65,535 events) and creates perf_approve_seq, which the
-- pgbench script uses to take them in order.
WITH inserted AS (
    INSERT INTO approvald.approvals (id, action_type, action_data, summary, requested_by, expires_at)
    SELECT md5(g::text)::uuid, 'noop', '{}'::jsonb, 'approval-bench', 'perf', now() + interval '1 day'
    FROM generate_series(:lo, :hi) AS g
    RETURNING *
)
INSERT INTO approvald.events (approval_id, type, actor, version, approval)
SELECT id, 'created', requested_by, version, to_jsonb(inserted) || '{"votes": []}' FROM inserted;
