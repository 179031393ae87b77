-- Read from pg_class with a fresh snapshot, not through to_regclass(): the catalog cache would
-- keep answering "absent" after a concurrent migrator created the table.
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
               WHERE c.relname = 'schema_migrations' AND c.relkind = 'r'
                 AND pg_catalog.pg_table_is_visible(c.oid)) AS present
