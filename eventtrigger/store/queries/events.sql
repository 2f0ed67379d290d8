-- Event logs as outbox and retry queue.

-- name: insert
-- One multi-row statement per batch: asyncmy expands the VALUES tuple, which must hold
-- only placeholders for it to do so. A duplicate
-- occurrence_id (a second firing of one occurrence) is a no-op: one event per firing.
INSERT INTO event_logs (id, trigger_id, trigger_type, occurrence_id, source, is_test_run, note,
                        replay_of, scheduled_at, fired_at, payload, request, status, attempts,
                        next_attempt_at, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE id = id;
