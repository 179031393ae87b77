-- Whether schema $1 exists (approvald migrate creates it only then, so that an owner role
-- without CREATE on the database can migrate a schema made for it, see deploy/postgres).
SELECT to_regnamespace($1::text) IS NOT NULL AS present
