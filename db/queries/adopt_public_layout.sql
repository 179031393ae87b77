-- Releases before approvald had a schema of its own kept their tables and functions in public.
-- Run by `approvald migrate` with the search_path set to approvald's schema: if public holds
-- approvald's migration ledger (its columns, beside ai_approvals) and the schema holds none,
-- every object moves into the schema, with its data, ids, indexes, sequences and triggers; the
-- migrations after them then run there. Anything else in public stays as it is.
DO $$
DECLARE
    target text := current_schema();
    item text;
BEGIN
    IF target IS NULL OR target = 'public'
       OR to_regclass(format('%I.schema_migrations', target)) IS NOT NULL
       OR to_regclass('public.ai_approvals') IS NULL
       OR NOT EXISTS (SELECT FROM information_schema.columns
                      WHERE table_schema = 'public' AND table_name = 'schema_migrations'
                        AND column_name = 'name') THEN
        RETURN;
    END IF;
    FOREACH item IN ARRAY ARRAY['schema_migrations', 'approvald_settings', 'ai_approvals',
                                'approval_events', 'decision_requests', 'approval_votes'] LOOP
        IF to_regclass('public.' || item) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE public.%I SET SCHEMA %I', item, target);
        END IF;
    END LOOP;
    FOREACH item IN ARRAY ARRAY['approval_events_append_only()', 'approval_votes_json(uuid)',
                                'approval_event_id()', 'approval_events_in_order()'] LOOP
        IF to_regprocedure('public.' || item) IS NOT NULL THEN
            EXECUTE format('ALTER FUNCTION public.%s SET SCHEMA %I', item, target);
        END IF;
    END LOOP;
END $$
