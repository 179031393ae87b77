-- Serialises migrators across replicas for the rest of the transaction.
SELECT pg_advisory_xact_lock(7423021001)
