-- Event logs as outbox and retry queue.

-- name: insert
-- One multi-row statement per batch: asyncmy expands the VALUES tuple, which must hold
-- only placeholders for it to do so. A duplicate
-- occurrence_id (a second firing of one occurrence) is a no-op: one event per firing.
INSERT INTO event_logs (id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note,
                        scheduled_at, fired_at, payload, request, status, attempts,
                        next_attempt_at, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE id = id;

-- name: select_due
-- Unfinished events whose deadline passed: never published, lost, or a retry now due.
SELECT id, trigger_id, trigger_type, source, is_test_run, scheduled_at, fired_at, payload,
       request, attempts
FROM event_logs
WHERE status IN ('pending', 'retrying') AND next_attempt_at <= %s
ORDER BY next_attempt_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: select_for_delivery
-- The worker's one batched lookup: which of these jobs are still to be done.
SELECT id, status, attempts FROM event_logs WHERE id IN ({ids}) FOR UPDATE SKIP LOCKED;

-- name: set_deadline
UPDATE event_logs SET next_attempt_at = %s WHERE id IN ({ids});

-- name: record_attempt
-- Guarded by the attempt number, so a duplicate job can never count an attempt twice.
UPDATE event_logs
SET status = %s, attempts = %s, last_status_code = %s, last_error = %s,
    delivered_at = %s, next_attempt_at = %s, updated_at = %s
WHERE id = %s AND attempts = %s AND status IN ('pending', 'retrying');
