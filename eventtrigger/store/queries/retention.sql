-- The retention role: move past the active window, delete past the total window, prune.
-- Every change to event_logs_archive updates event_archive_counts in the same transaction.

-- name: select_movable
-- Only finished events move: one still being retried stays where the worker updates it
-- (the archived view reads it from the hot table until it finishes), and so does a
-- failure whose dead-letter copy is still owed (the re-publisher reads it there).
SELECT id FROM event_logs
WHERE fired_at < %s AND status IN ('success', 'failure') AND dlq_due_at IS NULL
ORDER BY fired_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: count_moving
-- Before the copy: rows the archive does not hold yet, per fired minute (ascending, so
-- concurrent movers lock count rows in one order).
INSERT INTO event_archive_counts (minute, n)
SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', h.fired_at) AS m, COUNT(*)
FROM event_logs h
WHERE h.id IN ({ids})
  AND NOT EXISTS (SELECT 1 FROM event_logs_archive a WHERE a.id = h.id)
GROUP BY m
ORDER BY m
ON DUPLICATE KEY UPDATE n = n + VALUES(n);

-- name: copy_to_archive
INSERT INTO event_logs_archive
  (id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note, replay_of,
   scheduled_at, fired_at, payload, request, status, attempts, last_status_code, last_error,
   delivered_at, next_attempt_at, created_at, updated_at)
SELECT id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note, replay_of,
       scheduled_at, fired_at, payload, request, status, attempts, last_status_code,
       last_error, delivered_at, next_attempt_at, created_at, updated_at
FROM event_logs WHERE id IN ({ids})
ON DUPLICATE KEY UPDATE id = event_logs_archive.id;

-- name: delete_moved
DELETE FROM event_logs WHERE id IN ({ids});

-- name: select_expired_hot
SELECT id FROM event_logs
WHERE fired_at < %s
ORDER BY fired_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: delete_expired_hot
DELETE FROM event_logs WHERE id IN ({ids});

-- name: delete_attempts
-- An expired event's attempt history goes in the transaction that deletes the event.
DELETE FROM delivery_attempts WHERE event_id IN ({ids});

-- name: select_expired_archive
SELECT id FROM event_logs_archive
WHERE fired_at < %s
ORDER BY fired_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: uncount_expired
UPDATE event_archive_counts c
JOIN (SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', fired_at) AS m, COUNT(*) AS gone
      FROM event_logs_archive WHERE id IN ({ids}) GROUP BY m) d ON d.m = c.minute
SET c.n = c.n - d.gone;

-- name: delete_expired_archive
DELETE FROM event_logs_archive WHERE id IN ({ids});

-- name: prune_counts
-- Minutes wholly before the kept window: no view or figure reads them any more.
DELETE FROM event_archive_counts WHERE minute < %s;

-- name: prune_occurrences
DELETE FROM trigger_schedules
WHERE status IN ('completed', 'cancelled') AND updated_at < %s
LIMIT %s;

-- name: prune_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at < %s ORDER BY created_at LIMIT %s;

-- name: prune_audit
-- Audit rows past EVENTTRIGGER_AUDIT_RETENTION, oldest first through ix_audit_at, in
-- bounded batches.
DELETE FROM audit_log WHERE at < %s ORDER BY at LIMIT %s;
