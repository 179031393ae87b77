-- Whether approval $1 has an event written by the call whose token is $2 (the `call` of its
-- detail): after a decision's COMMIT was lost with its connection, whether it committed.
SELECT EXISTS (SELECT FROM approvald.events WHERE approval_id = $1::uuid AND detail ->> 'call' = $2)
       AS found
