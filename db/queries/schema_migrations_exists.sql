-- Whether schema $1 holds approvald's migration ledger. Read from pg_class with a fresh
-- snapshot, not through to_regclass(): the catalog cache would keep answering "absent" after a
-- concurrent migrator created the table.
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = 'schema_migrations' AND c.relkind = 'r'
                 AND n.nspname = $1::text) AS present
