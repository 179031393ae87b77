-- Where a stream of the events of approvals $1 (uuid[], no repeats) starts: an event id after
-- which all their events lie. Just before the first event of each (an approval's events are
-- in the log in order, see 0006_event_order.sql); for an id with no event yet, no later than
-- the newest deliverable event, below any event still to commit.
WITH first AS (
    SELECT approval_id, min(id) AS id FROM approvald.events
    WHERE approval_id = ANY ($1::uuid[])
    GROUP BY approval_id
)
SELECT CASE WHEN (SELECT count(*) FROM first) = cardinality($1::uuid[])
            THEN (SELECT min(id) - 1 FROM first)
            ELSE least((SELECT min(id) - 1 FROM first),
                       coalesce((SELECT id FROM approvald.events
                                 WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
                                 ORDER BY id DESC LIMIT 1), 0))
       END AS start
