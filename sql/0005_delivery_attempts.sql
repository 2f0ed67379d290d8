-- Attempt history (contract v1.1, "Delivery attempts"): one row per delivery attempt,
-- written in the same transaction (and the same batch) as the outcome on the event row.
--
-- One table keyed by event id, not a hot/archive pair: attempts are only ever read by
-- their event id (the primary key's prefix), so the queue scans that keep event_logs
-- small do not apply here, and moving them to an archive table would double
-- retention's writes for no reader. The event decides the view: the API answers for
-- attempts only while their event is within the total window, and retention deletes
-- an expired event's attempts by its id in the same transaction as the event itself.
CREATE TABLE IF NOT EXISTS delivery_attempts (
  event_id         CHAR(26)     CHARACTER SET ascii NOT NULL,
  attempt          INT UNSIGNED NOT NULL,
  started_at       DATETIME(6)  NOT NULL,
  duration_ms      INT UNSIGNED NOT NULL,
  status_code      SMALLINT UNSIGNED NULL,
  error            VARCHAR(2000) NULL,
  response_body    TEXT         NULL,
  next_attempt_at  DATETIME(6)  NULL,
  PRIMARY KEY (event_id, attempt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
