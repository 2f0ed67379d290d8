-- Reading event logs across the hot and archive tables. {table} is event_logs or
-- event_logs_archive (same shape); {where} adds optional filters built from constants.

-- name: page
-- Newest first by (fired_at, id), a stable keyset while new events arrive.
SELECT id, trigger_id, trigger_type, source, is_test_run, note, replay_of, scheduled_at,
       fired_at, payload, status, attempts, last_status_code, last_error, delivered_at,
       created_at, updated_at
FROM {table}
WHERE fired_at >= %s AND fired_at < %s {where}
  AND (%s IS NULL OR fired_at < %s OR (fired_at = %s AND id < %s))
ORDER BY fired_at DESC, id DESC
LIMIT %s;

-- name: one
-- With the request snapshot: the event detail shows the method, URL and body sent.
SELECT id, trigger_id, trigger_type, source, is_test_run, note, replay_of, scheduled_at,
       fired_at, payload, request, status, attempts, last_status_code, last_error,
       delivered_at, created_at, updated_at
FROM {table} WHERE id = %s;

-- name: attempts
-- One event's attempt history, oldest first (the primary key's order). `request` and
-- `response_headers` are JSON text, NULL in rows written before they were kept.
SELECT attempt, started_at, duration_ms, status_code, error, response_body, next_attempt_at,
       request, response_headers
FROM delivery_attempts WHERE event_id = %s ORDER BY attempt;

-- name: replay_sources
-- Events to replay, oldest first, with the request snapshot they were sent with.
-- {where} adds optional filters built from constants.
SELECT id, trigger_id, trigger_type, is_test_run, note, fired_at, payload, request
FROM {table}
WHERE fired_at >= %s AND fired_at < %s {where}
ORDER BY fired_at, id
LIMIT %s;

-- name: replay_source
SELECT id, trigger_id, trigger_type, is_test_run, note, fired_at, payload, request
FROM {table} WHERE id = %s;
