-- Figures for metrics, /api/v1/stats and the dashboard (refreshed on an interval).

-- name: triggers_by_type_status
SELECT type, status, COUNT(*) AS n FROM triggers GROUP BY type, status;

-- name: overdue_occurrences
SELECT COUNT(*) AS n FROM trigger_schedules
WHERE status IN ('pending', 'processing') AND fire_at <= %s;

-- name: unfinished_events
SELECT status, COUNT(*) AS n FROM event_logs
WHERE status IN ('pending', 'retrying') GROUP BY status;

-- name: hot_counts
-- Hot rows split by view: fired within the active window, or older but still kept.
SELECT SUM(fired_at >= %s) AS active, SUM(fired_at < %s AND fired_at >= %s) AS archived
FROM event_logs WHERE fired_at >= %s;

-- name: archive_count
SELECT COUNT(*) AS n FROM event_logs_archive WHERE fired_at >= %s;

-- name: outcomes
SELECT status, COUNT(*) AS n FROM event_logs WHERE fired_at >= %s GROUP BY status;

-- name: recent_timings
-- The latest firings: lateness (scheduled -> fired; meaningful for scheduled ones) and
-- delivery latency (scheduled -> delivered) in microseconds.
SELECT source,
       TIMESTAMPDIFF(MICROSECOND, scheduled_at, fired_at) AS lateness_us,
       TIMESTAMPDIFF(MICROSECOND, scheduled_at, delivered_at) AS delivery_us
FROM event_logs
WHERE fired_at >= %s
ORDER BY fired_at DESC
LIMIT 10000;

-- name: latest_failures
SELECT id, trigger_id, trigger_type, source, fired_at, attempts, last_status_code, last_error
FROM event_logs
WHERE status = 'failure' AND fired_at >= %s
ORDER BY fired_at DESC
LIMIT 10;
