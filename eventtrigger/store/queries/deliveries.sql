-- Event rows as the delivery queue: worker leases, outcomes, and the re-publisher.
-- `next_attempt_at` is the row's deadline: the publish deadline of a new event, the
-- expiry of a worker's lease, or the time a retry is due. Whatever has an unfinished
-- status and a deadline in the past is re-published.

-- name: lock
-- Locked in id order, so two claimers of overlapping batches cannot deadlock.
SELECT id, status, attempts, lease_owner, next_attempt_at
FROM event_logs WHERE id IN ({ids}) ORDER BY id FOR UPDATE;

-- name: take_lease
UPDATE event_logs SET lease_owner = %s, next_attempt_at = %s WHERE id IN ({ids});

-- name: renew_leases
UPDATE event_logs SET next_attempt_at = %s
WHERE lease_owner = %s AND id IN ({ids}) AND status IN ('pending', 'retrying');

-- name: requeue
-- Hand a job back: any worker may take it, and the re-publisher sends it again at the
-- given time unless a redelivery gets it first.
UPDATE event_logs SET lease_owner = NULL, next_attempt_at = %s
WHERE lease_owner = %s AND id IN ({ids}) AND status IN ('pending', 'retrying');

-- name: release
-- On shutdown: the lease goes, the deadline stays; the job's uncommitted Kafka message
-- reaches the partition's next owner, which may take it at once.
UPDATE event_logs SET lease_owner = NULL
WHERE lease_owner = %s AND id IN ({ids}) AND status IN ('pending', 'retrying');

-- name: record_attempts
-- A batch of outcomes in one statement. {rows} is one `SELECT %s, ...` per outcome joined
-- by UNION ALL (the first with the column names), {ids} the same ids again so the rows
-- are found by primary key. Guarded by the attempt number, so a duplicate job can never
-- count an attempt twice.
UPDATE event_logs e
JOIN ({rows}) o ON o.id = e.id
SET e.status = o.status, e.attempts = o.attempt, e.last_status_code = o.status_code,
    e.last_error = o.error, e.delivered_at = o.delivered_at,
    e.next_attempt_at = o.next_attempt_at, e.lease_owner = NULL, e.updated_at = %s
WHERE e.id IN ({ids}) AND e.attempts = o.attempt - 1 AND e.status IN ('pending', 'retrying');

-- name: outcome_row
SELECT %s AS id, %s AS status, %s AS attempt, %s AS status_code, %s AS error,
       %s AS delivered_at, %s AS next_attempt_at

-- name: outcome_more
SELECT %s, %s, %s, %s, %s, %s, %s

-- name: insert_history
-- The attempt history of a batch of outcomes, one row per attempt ({values} is one
-- history_values per row). Only attempts that passed the guard above get here; a row
-- that exists already (impossible under that guard) is left as it is.
INSERT INTO delivery_attempts (event_id, attempt, started_at, duration_ms, status_code,
                               error, response_body, next_attempt_at)
VALUES {values}
ON DUPLICATE KEY UPDATE event_id = event_id;

-- name: history_values
(%s, %s, %s, %s, %s, %s, %s, %s)

-- name: select_due
-- Unfinished events of one status whose deadline passed: never published, lost, a lease
-- that ran out (its worker died), a job handed back, or a retry now due. One status at a
-- time: with `status IN (...)` the range cannot be read in next_attempt_at order, so
-- MariaDB sorted every due row to return the first few hundred (60,000 rows examined
-- per pass behind a stalled endpoint); with one status the index order is the answer.
SELECT id, trigger_id, trigger_type, source, is_test_run, scheduled_at, fired_at, payload,
       request, attempts
FROM event_logs FORCE INDEX (ix_events_due)
WHERE status = %s AND next_attempt_at <= %s
ORDER BY next_attempt_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: set_deadline
UPDATE event_logs SET next_attempt_at = %s, lease_owner = NULL WHERE id IN ({ids});

-- name: owe_dead_letters
-- In the transaction that stores final failures: their dead-letter copies are owed.
UPDATE event_logs SET dlq_due_at = %s WHERE id IN ({ids}) AND status = 'failure';

-- name: dead_letters_sent
UPDATE event_logs SET dlq_due_at = NULL WHERE id IN ({ids});

-- name: select_dead_letters
-- Dead-letter copies still owed when due: the worker that stored the failure died (or
-- its publish failed) before Kafka had the copy.
SELECT id, trigger_id, trigger_type, source, is_test_run, scheduled_at, fired_at, payload,
       request, attempts, last_status_code, last_error
FROM event_logs
WHERE dlq_due_at <= %s
ORDER BY dlq_due_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: postpone_dead_letters
UPDATE event_logs SET dlq_due_at = %s WHERE id IN ({ids});

-- name: mark_failed
-- An event that can never be delivered (its occurrence could not be fired): final at once.
UPDATE event_logs SET status = 'failure', last_error = %s, next_attempt_at = NULL,
       updated_at = %s
WHERE id = %s;
