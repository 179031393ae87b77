-- Opens a transaction (sent in one pipeline with the transaction's first statements).
BEGIN
