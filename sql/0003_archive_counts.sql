-- Archived events counted per minute of their fired time, so the 2-second stats refresh
-- sums at most one row per minute of the total window (2,880 for 48 h) instead of
-- counting every archived row. Only the retention role writes the archive, in the same
-- transaction as these counts (+ on a move, - on a delete), so they are exact; the stats
-- count the rows of the one minute the window's edge cuts through directly.
CREATE TABLE IF NOT EXISTS event_archive_counts (
  minute  INT UNSIGNED NOT NULL,  -- TIMESTAMPDIFF(MINUTE, '1970-01-01', fired_at)
  n       BIGINT       NOT NULL,
  PRIMARY KEY (minute)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What the archive already holds (re-running sets the same figures again).
INSERT INTO event_archive_counts (minute, n)
SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', fired_at) AS m, COUNT(*)
FROM event_logs_archive
GROUP BY m
ON DUPLICATE KEY UPDATE n = VALUES(n);
