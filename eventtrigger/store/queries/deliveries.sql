-- Event rows as the delivery queue: worker leases, outcomes, parking and the re-publisher.
-- `next_attempt_at` is the row's deadline: the publish deadline of a new event, the
-- expiry of a worker's lease, the time a retry or a parked job is to be published
-- (`publish_due`), or the time a row waiting behind consumer lag is looked at again.
-- Whatever has an unfinished status and a deadline in the past is the re-publisher's.

-- name: lock
-- Locked in id order, so two claimers of overlapping batches cannot deadlock.
SELECT id, status, attempts, lease_owner, next_attempt_at, parked
FROM event_logs WHERE id IN ({ids}) ORDER BY id FOR UPDATE;

-- name: take_lease
UPDATE event_logs SET lease_owner = %s, next_attempt_at = %s, publish_due = FALSE,
       parked = FALSE, lag_mark = NULL
WHERE id IN ({ids});

-- name: renew_leases
UPDATE event_logs SET next_attempt_at = %s
WHERE lease_owner = %s AND id IN ({ids}) AND status IN ('pending', 'retrying');

-- name: requeue
-- Hand a job back: any worker may take it, and the re-publisher sends it again at the
-- given time unless a redelivery gets it first.
UPDATE event_logs SET lease_owner = NULL, next_attempt_at = %s, publish_due = TRUE,
       parked = TRUE, lag_mark = NULL
WHERE lease_owner = %s AND id IN ({ids}) AND status IN ('pending', 'retrying');

-- name: park
-- Park leased jobs for a slow host, each with its own due time ({rows}: one park_row per
-- job joined by UNION ALL, the first with the column names; {ids} the same ids). The
-- attempt count is untouched: a parked job is not an attempt.
UPDATE event_logs e
JOIN ({rows}) p ON p.id = e.id
SET e.lease_owner = NULL, e.next_attempt_at = p.due_at, e.publish_due = TRUE,
    e.parked = TRUE, e.lag_mark = NULL
WHERE e.id IN ({ids}) AND e.lease_owner = %s AND e.status IN ('pending', 'retrying');

-- name: park_row
SELECT %s AS id, %s AS due_at

-- name: park_more
SELECT %s, %s

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
    e.next_attempt_at = o.next_attempt_at, e.lease_owner = NULL, e.updated_at = %s,
    e.publish_due = (o.status = 'retrying'), e.parked = FALSE, e.lag_mark = NULL
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
                               error, response_body, next_attempt_at, request,
                               response_headers)
VALUES {values}
ON DUPLICATE KEY UPDATE event_id = event_id;

-- name: history_values
(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: select_due
-- Unfinished events whose deadline passed, both statuses in one range in deadline order,
-- so a due retry never waits behind a backlog of first attempts: owed a publish (a retry
-- or a parked job now due), or a publish or lease deadline passed (never published,
-- lost, a lease that ran out, or merely queued behind consumer lag; the re-publisher
-- tells these apart). Finished rows have no deadline, so the range holds only these.
SELECT id, trigger_id, trigger_type, source, is_test_run, scheduled_at, fired_at, payload,
       request, attempts, publish_due, parked, lag_mark
FROM event_logs FORCE INDEX (ix_events_deadline)
WHERE next_attempt_at <= %s AND status IN ('pending', 'retrying')
ORDER BY next_attempt_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: set_deadline
-- Published (or about to be): the deadline of that publish.
UPDATE event_logs SET next_attempt_at = %s, lease_owner = NULL, publish_due = FALSE,
       lag_mark = NULL
WHERE id IN ({ids});

-- name: postpone
-- Due rows whose job is queued behind consumer lag: looked at again later; the first
-- postponement notes the partition's end offset (kept by the later ones).
UPDATE event_logs SET next_attempt_at = %s, lag_mark = COALESCE(lag_mark, %s)
WHERE id IN ({ids});

-- name: publish_failed
-- A publish that failed: the job is owed again, at its new deadline, without waiting for
-- the consumers to pass it (it is not in Kafka).
UPDATE event_logs SET publish_due = TRUE
WHERE id IN ({ids}) AND lease_owner IS NULL AND status IN ('pending', 'retrying');

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
