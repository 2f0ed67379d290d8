-- Auto-pause (config.auto_pause_after): consecutive final failures per trigger, counted
-- in the worker's outcome transaction.

-- name: scheduled_events
-- Which of these just-finished events are scheduled firings of a trigger (the rows are
-- locked by this transaction already).
SELECT id, trigger_id FROM event_logs
WHERE id IN ({ids}) AND source = 'scheduled' AND trigger_id IS NOT NULL;

-- name: configs
-- A plain read first: only triggers with auto_pause_after set are locked and written.
SELECT id, config FROM triggers WHERE id IN ({ids}) AND status = 'active';

-- name: lock
-- In id order, as every multi-trigger lock here.
SELECT id, consecutive_failures, config FROM triggers
WHERE id IN ({ids}) AND status = 'active'
ORDER BY id
FOR UPDATE;

-- name: set_count
UPDATE triggers SET consecutive_failures = %s WHERE id = %s;

-- name: pause
UPDATE triggers
SET status = 'paused', paused_reason = %s, consecutive_failures = %s, updated_at = %s
WHERE id = %s AND status = 'active';

-- name: cancel_occurrences
UPDATE trigger_schedules FORCE INDEX (ix_schedules_trigger_status)
SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, updated_at = %s
WHERE trigger_id = %s AND status IN ('pending', 'processing');

-- name: clear
-- Resuming a trigger: the reason goes and counting starts again.
UPDATE triggers SET paused_reason = NULL, consecutive_failures = 0 WHERE id = %s;
