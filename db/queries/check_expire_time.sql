-- Judges an absolute expiry ($1, micros since epoch) by the database clock against a maximum ttl
-- ($2, micros).
SELECT t > now() AS in_future, t <= now() + $2::bigint * interval '1 microsecond' AS within_max
FROM (SELECT 'epoch'::timestamptz + $1::bigint * interval '1 microsecond' AS t) AS expiry
