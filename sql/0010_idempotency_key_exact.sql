-- Idempotency-Key matching is exact: `Order-1` and `order-1` are two keys. The column
-- had the table's ascii default collation (ascii_general_ci), so a key that differed only
-- in letter case was answered with another call's event. ascii_bin, as the webhook tokens
-- (0004). No key can collide under the new collation that did not under the old one, so
-- the primary key rebuilds without conflicts. MODIFY to the same definition is a no-op,
-- so the file can simply run again if interrupted.
ALTER TABLE idempotency_keys
  MODIFY idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
