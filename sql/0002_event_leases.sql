-- A delivery lease on event rows: the worker that claimed a job writes its name here and
-- keeps `next_attempt_at` (the lease expiry) moving while it holds the job. Another
-- worker given the same job (a redelivery, a rebalance) leaves it alone until the lease
-- runs out; the re-publisher only takes rows whose lease has run out.
ALTER TABLE event_logs ADD COLUMN lease_owner VARCHAR(64) CHARACTER SET ascii NULL AFTER next_attempt_at;
