-- The retention role: move past the active window, delete past the total window, prune.

-- name: select_movable
-- Only finished events move: one still being retried stays where the worker updates it
-- (the archived view reads it from the hot table until it finishes).
SELECT id FROM event_logs
WHERE fired_at < %s AND status IN ('success', 'failure')
ORDER BY fired_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: copy_to_archive
INSERT INTO event_logs_archive
  (id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note, scheduled_at,
   fired_at, payload, request, status, attempts, last_status_code, last_error, delivered_at,
   next_attempt_at, created_at, updated_at)
SELECT id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note, scheduled_at,
       fired_at, payload, request, status, attempts, last_status_code, last_error,
       delivered_at, next_attempt_at, created_at, updated_at
FROM event_logs WHERE id IN ({ids})
ON DUPLICATE KEY UPDATE id = event_logs_archive.id;

-- name: delete_moved
DELETE FROM event_logs WHERE id IN ({ids});

-- name: delete_expired_hot
DELETE FROM event_logs WHERE fired_at < %s ORDER BY fired_at LIMIT %s;

-- name: delete_expired_archive
DELETE FROM event_logs_archive WHERE fired_at < %s ORDER BY fired_at LIMIT %s;

-- name: prune_occurrences
DELETE FROM trigger_schedules
WHERE status IN ('completed', 'cancelled') AND updated_at < %s
LIMIT %s;

-- name: prune_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at < %s ORDER BY created_at LIMIT %s;
