-- Commits the transaction (sent in one pipeline with its last statement when possible).
COMMIT
