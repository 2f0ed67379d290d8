-- Figures for metrics, /api/v1/stats and the dashboard (refreshed every 2 s). None counts
-- the archive: its size is read from event_archive_counts, one row per fired minute. The
-- hot table is counted over the windows only (index ranges on fired_at); by design it
-- holds little more than the active window.

-- name: triggers_by_type_status
-- Read from ix_triggers_type_status alone (not the rows, which hold configs).
SELECT type, status, COUNT(*) AS n FROM triggers FORCE INDEX (ix_triggers_type_status)
GROUP BY type, status;

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

-- name: archive_range
-- Archive rows fired in [from, to): used for the minute the kept window's edge cuts
-- through, and for rows already inside the active window (moved early by a retention
-- process whose clock runs ahead; normally none).
SELECT COUNT(*) AS n FROM event_logs_archive WHERE fired_at >= %s AND fired_at < %s;

-- name: archive_minutes
-- Archived events in the whole minutes from this one on.
SELECT COALESCE(SUM(n), 0) AS n FROM event_archive_counts WHERE minute >= %s;

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
