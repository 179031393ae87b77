-- Records a reviewer's vote ($2) on a locked approval ($1); returns the number of votes now.
WITH vote AS (
    INSERT INTO approvald.votes (approval_id, voter, comment) VALUES ($1::uuid, $2, $3)
    RETURNING approval_id
)
SELECT (SELECT count(*) FROM approvald.votes WHERE approval_id = $1::uuid) + 1 AS votes
FROM vote
