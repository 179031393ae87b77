-- approvald's tables take plain names in its own schema (the one --db-schema names, which
-- `approvald migrate` makes the search_path of this transaction; the prefixes kept them apart
-- from an application's tables in public, which the schema now does). Its functions name their
-- tables through this schema whatever search_path their caller has: approvald's connections
-- keep the application's, for the operators' `sql` actions.
ALTER TABLE approvald_settings RENAME TO settings;
ALTER TABLE ai_approvals RENAME TO approvals;
ALTER TABLE approval_events RENAME TO events;
ALTER TABLE approval_votes RENAME TO votes;
ALTER INDEX approvald_settings_pkey RENAME TO settings_pkey;
ALTER INDEX ai_approvals_pkey RENAME TO approvals_pkey;
ALTER INDEX ai_approvals_idempotency RENAME TO approvals_idempotency;
ALTER INDEX ai_approvals_newest RENAME TO approvals_newest;
ALTER INDEX ai_approvals_status_newest RENAME TO approvals_status_newest;
ALTER INDEX ai_approvals_pending_expiry RENAME TO approvals_pending_expiry;
ALTER INDEX ai_approvals_requester_newest RENAME TO approvals_requester_newest;
ALTER INDEX ai_approvals_decider_newest RENAME TO approvals_decider_newest;
ALTER INDEX approval_events_pkey RENAME TO events_pkey;
ALTER INDEX approval_events_by_approval RENAME TO events_by_approval;
ALTER INDEX approval_votes_pkey RENAME TO votes_pkey;
ALTER SEQUENCE approval_events_id_seq RENAME TO events_id_seq;

-- The functions name their tables through the schema (written into their bodies here, rather
-- than a search_path setting of their own, which would cost every call a switch).
DO $do$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.approval_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $b$
        BEGIN
            RAISE EXCEPTION 'approval events are append-only' USING ERRCODE = 'restrict_violation';
        END $b$ $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.approval_votes_json(approval uuid) RETURNS jsonb
            LANGUAGE plpgsql STABLE AS $b$
        BEGIN
            RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                               'voter', voter,
                               'micros', (extract(epoch FROM voted_at) * 1000000)::bigint,
                               'comment', comment) ORDER BY voted_at, voter), '[]'::jsonb)
                    FROM %1$s.votes WHERE approval_id = approval);
        END $b$ $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.approval_events_in_order() RETURNS trigger
            LANGUAGE plpgsql AS $b$
        BEGIN
            IF EXISTS (SELECT FROM %1$s.events
                       WHERE approval_id = NEW.approval_id AND id > NEW.id) THEN
                RAISE EXCEPTION 'approval %% has a newer event than this transaction can write; retry',
                    NEW.approval_id USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN NEW;
        END $b$ $f$, s);
END $do$;
