-- Webhook URLs are not trigger ids (contract v1.1): a webhook trigger's URL ends in a
-- random token of its own. Trigger ids are not secrets (they are in logs, events and
-- Kafka keys); the token is. ascii_bin: tokens are case-sensitive base64url, and a
-- case-insensitive match would quietly make guessing easier. NULL for scheduled types
-- (a UNIQUE key admits any number of NULLs).
--
-- Signing-secret rotation: during a rotation's grace period deliveries carry a second
-- signature made with the previous secret, until previous_secret_expires_at.
--
-- One ALTER, so the columns and the key appear together (MySQL's DDL is atomic).
ALTER TABLE triggers
  ADD COLUMN webhook_token VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER signing_secret,
  ADD COLUMN previous_signing_secret VARCHAR(64) CHARACTER SET ascii NULL AFTER webhook_token,
  ADD COLUMN previous_secret_expires_at DATETIME(6) NULL AFTER previous_signing_secret,
  ADD UNIQUE KEY uq_triggers_webhook_token (webhook_token);

-- Webhook triggers created before this change keep their URL (token = id) until rotated.
UPDATE triggers SET webhook_token = id WHERE type = 'webhook' AND webhook_token IS NULL;
