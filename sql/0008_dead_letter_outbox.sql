-- The dead-letter copy of a final failure is an outbox entry, like every other publish:
-- the worker sets dlq_due_at in the transaction that stores the failure and clears it
-- once Kafka has the copy. A crash in between leaves it set, and the scheduler's
-- re-publisher sends the copy when it comes due: a copy may go out twice, never not at
-- all. The index keeps that lookup off the whole table (almost every row is NULL).
-- One ALTER, so the column and its index appear together (MySQL's DDL is atomic).
ALTER TABLE event_logs
  ADD COLUMN dlq_due_at DATETIME(6) NULL AFTER next_attempt_at,
  ADD INDEX ix_events_dlq_due (dlq_due_at);
