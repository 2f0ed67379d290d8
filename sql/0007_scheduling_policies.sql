-- Scheduling policies (contract v1.1).
--
-- Jitter: an occurrence fires at fire_at = nominal time + a fixed offset; the schedule
-- advances from nominal times, so the occurrence keeps its nominal time too. NULL for
-- rows written before this column (and equal to fire_at for triggers without jitter).
ALTER TABLE trigger_schedules ADD COLUMN nominal_at DATETIME(6) NULL AFTER fire_at;

-- Auto-pause: consecutive final delivery failures of a trigger's scheduled events, and
-- why a trigger was paused by the platform (NULL when it was not; resuming clears it).
ALTER TABLE triggers
  ADD COLUMN paused_reason VARCHAR(500) NULL AFTER status,
  ADD COLUMN consecutive_failures INT UNSIGNED NOT NULL DEFAULT 0 AFTER paused_reason;
