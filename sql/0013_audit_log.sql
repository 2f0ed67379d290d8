-- The audit trail: one row per management change (trigger create/update/delete/pause/
-- resume/rotations, replays, API keys), written in the transaction that makes the change,
-- so a change without its row (or a row without its change) cannot be committed.
-- `fields` holds the changed fields' NAMES only (a JSON array of strings), never values:
-- the trail may be read by anyone with the admin scope and must never carry a secret.
-- `at` is UTC, as every time here. Rows older than EVENTTRIGGER_AUDIT_RETENTION are
-- deleted by the retention role.
CREATE TABLE IF NOT EXISTS audit_log (
  id          CHAR(26)     CHARACTER SET ascii NOT NULL,
  at          DATETIME(6)  NOT NULL,
  key_id      VARCHAR(128) CHARACTER SET ascii NOT NULL,
  key_name    VARCHAR(255) NOT NULL,
  action      VARCHAR(32)  CHARACTER SET ascii NOT NULL,
  -- the trigger, event or key acted on; NULL for a bulk replay without a trigger filter
  target_id   VARCHAR(128) CHARACTER SET ascii NULL,
  request_id  VARCHAR(128) CHARACTER SET ascii NULL,
  fields      JSON         NOT NULL,
  PRIMARY KEY (id),
  -- newest first: overall (and retention's oldest-first deletes), by target, by key
  KEY ix_audit_at (at, id),
  KEY ix_audit_target (target_id, at, id),
  KEY ix_audit_key (key_id, at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
