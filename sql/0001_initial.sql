-- eventtrigger schema v1. Runs on MySQL 8.4 and MariaDB 10.11 (common subset only).
-- All times are UTC, DATETIME(6), computed in Python and passed as parameters.

CREATE TABLE IF NOT EXISTS triggers (
  id              CHAR(26)     CHARACTER SET ascii NOT NULL,
  name            VARCHAR(200) NOT NULL,
  type            VARCHAR(32)  CHARACTER SET ascii NOT NULL,
  status          VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  config          JSON         NOT NULL,
  signing_secret  VARCHAR(64)  CHARACTER SET ascii NOT NULL,
  -- bumped on every config edit: jobs carry a snapshot, validators are cached per version
  version         INT UNSIGNED NOT NULL DEFAULT 1,
  created_at      DATETIME(6)  NOT NULL,
  updated_at      DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  -- lists, newest first, unfiltered and by each filter
  KEY ix_triggers_created (created_at, id),
  KEY ix_triggers_type (type, created_at, id),
  KEY ix_triggers_status (status, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per occurrence of a scheduled trigger. UNIQUE(trigger_id, fire_at) makes
-- double-scheduling impossible whatever the number of API or scheduler processes.
CREATE TABLE IF NOT EXISTS trigger_schedules (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  trigger_id       CHAR(26)    CHARACTER SET ascii NOT NULL,
  fire_at          DATETIME(6) NOT NULL,
  status           VARCHAR(16) CHARACTER SET ascii NOT NULL,
  attempt_count    INT UNSIGNED NOT NULL DEFAULT 0,
  last_attempt_at  DATETIME(6) NULL,
  lease_owner      VARCHAR(64) CHARACTER SET ascii NULL,
  lease_until      DATETIME(6) NULL,
  created_at       DATETIME(6) NOT NULL,
  updated_at       DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_schedules_trigger_fire (trigger_id, fire_at),
  -- a trigger's pending occurrence (next_fire_at, cancel) without reading its history
  KEY ix_schedules_trigger_status (trigger_id, status, fire_at),
  KEY ix_schedules_claim (status, fire_at),
  KEY ix_schedules_lease (status, lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per firing: the event log, the outbox (not yet published) and the retry queue
-- (next_attempt_at). occurrence_id is unique so one occurrence can never log twice.
CREATE TABLE IF NOT EXISTS event_logs (
  id                CHAR(26)     CHARACTER SET ascii NOT NULL,
  trigger_id        CHAR(26)     CHARACTER SET ascii NULL,
  trigger_type      VARCHAR(32)  CHARACTER SET ascii NOT NULL,
  occurrence_id     BIGINT UNSIGNED NULL,
  source            VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  is_test_run       BOOLEAN      NOT NULL DEFAULT FALSE,
  note              VARCHAR(500) NULL,
  scheduled_at      DATETIME(6)  NOT NULL,
  fired_at          DATETIME(6)  NOT NULL,
  payload           JSON         NULL,
  request           JSON         NOT NULL,
  status            VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  attempts          INT UNSIGNED NOT NULL DEFAULT 0,
  last_status_code  SMALLINT UNSIGNED NULL,
  last_error        VARCHAR(2000) NULL,
  delivered_at      DATETIME(6)  NULL,
  next_attempt_at   DATETIME(6)  NULL,
  created_at        DATETIME(6)  NOT NULL,
  updated_at        DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_events_occurrence (occurrence_id),
  KEY ix_events_fired (fired_at, id),
  KEY ix_events_trigger_fired (trigger_id, fired_at, id),
  -- covers the per-trigger aggregate (counts by status, last fired) without the rows
  KEY ix_events_aggregate (trigger_id, trigger_type, status, fired_at),
  KEY ix_events_due (status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Same shape as event_logs; rows past the active window live here until deleted.
CREATE TABLE IF NOT EXISTS event_logs_archive (
  id                CHAR(26)     CHARACTER SET ascii NOT NULL,
  trigger_id        CHAR(26)     CHARACTER SET ascii NULL,
  trigger_type      VARCHAR(32)  CHARACTER SET ascii NOT NULL,
  occurrence_id     BIGINT UNSIGNED NULL,
  source            VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  is_test_run       BOOLEAN      NOT NULL DEFAULT FALSE,
  note              VARCHAR(500) NULL,
  scheduled_at      DATETIME(6)  NOT NULL,
  fired_at          DATETIME(6)  NOT NULL,
  payload           JSON         NULL,
  request           JSON         NOT NULL,
  status            VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  attempts          INT UNSIGNED NOT NULL DEFAULT 0,
  last_status_code  SMALLINT UNSIGNED NULL,
  last_error        VARCHAR(2000) NULL,
  delivered_at      DATETIME(6)  NULL,
  next_attempt_at   DATETIME(6)  NULL,
  created_at        DATETIME(6)  NOT NULL,
  updated_at        DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_archive_occurrence (occurrence_id),
  KEY ix_archive_fired (fired_at, id),
  KEY ix_archive_trigger_fired (trigger_id, fired_at, id),
  KEY ix_archive_aggregate (trigger_id, trigger_type, status, fired_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- (scope, key) -> event: a webhook call's Idempotency-Key maps to the first event only.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope         VARCHAR(64)  CHARACTER SET ascii NOT NULL,
  idem_key      VARCHAR(255) CHARACTER SET ascii NOT NULL,
  event_id      CHAR(26)     CHARACTER SET ascii NOT NULL,
  request_hash  CHAR(64)     CHARACTER SET ascii NOT NULL,
  created_at    DATETIME(6)  NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY ix_idempotency_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
