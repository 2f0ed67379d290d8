-- What `next_attempt_at` means for an unfinished, unleased row, so the re-publisher can
-- tell a job that is owed a publish from one that was published and may only be late:
--   publish_due = TRUE: it is when the job is to be published (a retry's backoff, or a
--     job a worker parked for its slow host); the re-publisher publishes it then.
--   publish_due = FALSE: it is the deadline of a publish already made (or of a lease); a
--     row still unfinished past it was lost, or is queued behind consumer lag.
-- parked marks a job a worker parked for its slow host until the worker that takes it
-- again has seen it: such a job goes ahead of jobs that arrived after it.
-- lag_mark is the end offset of the job's partition when that deadline passed while the
-- workers' group lagged there: the job is lost once the group's committed offset reaches
-- it (every message published before the deadline was then consumed), and not before.
ALTER TABLE event_logs
  ADD COLUMN publish_due BOOLEAN NOT NULL DEFAULT FALSE,
  ADD COLUMN parked BOOLEAN NOT NULL DEFAULT FALSE,
  ADD COLUMN lag_mark BIGINT NULL;

-- The re-publisher reads due rows of both unfinished statuses in one range, in deadline
-- order (finished rows have no deadline, leased and postponed ones lie ahead).
ALTER TABLE event_logs ADD INDEX ix_events_deadline (next_attempt_at);
