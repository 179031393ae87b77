SELECT coalesce(max(version), 0) AS version FROM approvald.schema_migrations
