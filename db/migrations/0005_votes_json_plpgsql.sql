-- approval_votes_json in PL/pgSQL: same result, its query planned once per session.
--
-- A LANGUAGE sql function that cannot be inlined (this one aggregates) is parsed and planned
-- again at every execution of the statement that calls it; PL/pgSQL keeps its plan for the
-- session.
-- Every read of an approval and every decision calls it.
CREATE OR REPLACE FUNCTION approval_votes_json(approval uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'voter', voter,
                       'micros', (extract(epoch FROM voted_at) * 1000000)::bigint,
                       'comment', comment) ORDER BY voted_at, voter), '[]'::jsonb)
            FROM approval_votes WHERE approval_id = approval);
END
$$;
