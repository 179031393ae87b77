-- An execution's columns, prefixed x_ beside its approval's (see ParseExecutionRow), read
-- from `e`.
e.id AS x_id, e.state AS x_state, e.attempt AS x_attempt, e.max_attempts AS x_max_attempts,
       e.lease_token AS x_lease_token, e.lease_holder AS x_lease_holder,
       e.lease_expires_at AS x_lease_expires_at, e.due_at AS x_due_at,
       e.last_error AS x_last_error, e.result AS x_result
