-- Least-privilege PostgreSQL roles for approvald. Run once per database, as a superuser or a
-- role with CREATEROLE that owns the database:
--
--   psql -d app -v owner=approvald_owner -v runtime=approvald_runtime -v schema=approvald \
--        -f deploy/postgres/roles.sql
--
-- (the three variables are optional; those are their defaults). Then set passwords
-- (\password approvald_owner, \password approvald_runtime) or use your own authentication.
--
-- owner:   owns approvald's schema and every object in it; `approvald migrate` runs as it.
-- runtime: what the daemon runs as: reads and writes approvald's tables, runs its functions,
--          and nothing else: it cannot create, alter or drop anything in the schema.
-- The runtime role still needs the rights that the operators' `sql` actions use on the
-- application's tables, for example:
--   GRANT SELECT, UPDATE ON orders TO approvald_runtime;
--   GRANT SELECT, INSERT ON refunds TO approvald_runtime;  -- SELECT for INSERT ... RETURNING
--   GRANT USAGE ON SEQUENCE refunds_id_seq TO approvald_runtime;
\set ON_ERROR_STOP on
\if :{?owner}
\else
  \set owner approvald_owner
\endif
\if :{?runtime}
\else
  \set runtime approvald_runtime
\endif
\if :{?schema}
\else
  \set schema approvald
\endif

SELECT format('CREATE ROLE %I LOGIN', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'runtime')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'runtime') \gexec

CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";
ALTER SCHEMA :"schema" OWNER TO :"owner";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"runtime";

-- What the owner creates in the schema from now on (every migration), and what exists already
-- (a database migrated before the roles).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE ON TABLES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT USAGE, SELECT ON SEQUENCES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT EXECUTE ON FUNCTIONS TO :"runtime";
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA :"schema" TO :"runtime";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"runtime";
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA :"schema" TO :"runtime";
