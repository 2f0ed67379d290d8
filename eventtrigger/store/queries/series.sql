-- Per-bucket firing counts and timing histograms for the console's charts
-- (/api/v1/stats/series). {table} is event_logs or event_logs_archive; {trigger} is empty
-- or `AND trigger_id = %s`. Both walk an index range on fired_at (ix_*_fired, or
-- ix_*_trigger_fired for one trigger), never the whole table, and return one row per
-- (bucket, status, scheduled?, lateness step, latency step): a few hundred rows at most
-- whatever the number of events. {index} forces that range scan: when the range covers
-- most of a table (the last hour of a 2-hour hot table) the optimizer would otherwise
-- scan the whole table, whose size grows with the retention windows, not with the range.
--
-- Timings are grouped on a log scale, 4 steps per doubling of microseconds (so a
-- percentile read from them is within 19% of the exact one): enough for a chart, and
-- the database sends counts instead of every row.

-- name: buckets
SELECT TIMESTAMPDIFF(SECOND, %s, fired_at) DIV %s AS b,
       status,
       source = 'scheduled' AS sched,
       FLOOR(LOG2(GREATEST(TIMESTAMPDIFF(MICROSECOND, scheduled_at, fired_at), 1)) * 4) AS lh,
       CASE WHEN delivered_at IS NULL THEN NULL
            ELSE FLOOR(LOG2(GREATEST(TIMESTAMPDIFF(MICROSECOND, scheduled_at, delivered_at), 1)) * 4)
       END AS dh,
       COUNT(*) AS n
FROM {table} FORCE INDEX ({index})
WHERE fired_at >= %s AND fired_at < %s {trigger}
GROUP BY b, status, sched, lh, dh;
