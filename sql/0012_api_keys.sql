-- Managed API keys. The key itself is never stored: `key_hash` is an HMAC-SHA256 of it
-- under a fixed label (domain/keys.py), looked up by equality on every request whose
-- key is not cached; `prefix` (its first 8 characters) tells keys apart in lists.
-- A revoked key keeps its row with `revoked_at` set, so a revocation is permanent (the
-- hash can never be inserted again) and a refused use can be counted as "revoked".
CREATE TABLE IF NOT EXISTS api_keys (
  id            CHAR(26)     CHARACTER SET ascii NOT NULL,
  name          VARCHAR(200) NOT NULL,
  scopes        JSON         NOT NULL,
  prefix        VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  key_hash      BINARY(32)   NOT NULL,
  created_at    DATETIME(6)  NOT NULL,
  expires_at    DATETIME(6)  NULL,
  last_used_at  DATETIME(6)  NULL,
  revoked_at    DATETIME(6)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_api_keys_hash (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
