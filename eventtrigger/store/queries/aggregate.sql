-- Per-trigger counts over the kept window, paged by trigger id (newest trigger first).
-- {table} is event_logs or event_logs_archive (same shape and indexes).

-- name: trigger_ids
-- The next page's triggers: walks ix_events_aggregate / ix_archive_aggregate
-- (trigger_id first) backwards from the cursor, so a page costs the triggers it lists,
-- not every trigger in the window.
SELECT DISTINCT trigger_id FROM {table}
WHERE trigger_id IS NOT NULL AND fired_at >= %s AND (%s IS NULL OR trigger_id < %s)
ORDER BY trigger_id DESC
LIMIT %s;

-- name: counts
SELECT trigger_id, trigger_type, status, COUNT(*) AS n, MAX(fired_at) AS last_fired_at
FROM {table}
WHERE trigger_id IN ({ids}) AND fired_at >= %s
GROUP BY trigger_id, trigger_type, status;
