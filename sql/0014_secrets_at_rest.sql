-- Signing secrets encrypted at rest (EVENTTRIGGER_SECRET_KEY): a stored secret is either
-- plaintext (`whsec_...`, 50 characters) or `enc:v1:<key id>:<base64 of nonce, ciphertext
-- and tag>`, at most 7 + 32 + 1 + 104 = 144 characters; 255 leaves room and keeps the
-- change in place (a VARCHAR under 256 bytes keeps its one-byte length).
-- Jobs no longer carry secrets and need no column: the worker reads each event's
-- snapshot from its row.
-- One ALTER, so both columns change together (MySQL's DDL is atomic).
ALTER TABLE triggers
  MODIFY COLUMN signing_secret VARCHAR(255) CHARACTER SET ascii NOT NULL,
  MODIFY COLUMN previous_signing_secret VARCHAR(255) CHARACTER SET ascii NULL;
