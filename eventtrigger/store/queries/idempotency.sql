-- Idempotency-Key mappings for webhook calls, scoped to the trigger. Keys match exactly
-- (idem_key is ascii_bin since 0010): `Order-1` and `order-1` are two keys.

-- name: select
SELECT event_id, request_hash, created_at FROM idempotency_keys WHERE scope = %s AND idem_key = %s;

-- name: insert
-- Many keys in one statement (a group commit); a key that exists already keeps its event
-- (no-op), and `select_standing` tells the callers which event stands for each key.
INSERT INTO idempotency_keys (scope, idem_key, event_id, request_hash, created_at)
VALUES (%s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE event_id = event_id;

-- name: select_standing
-- {pairs} is one `(%s, %s)` per key.
SELECT scope, idem_key, event_id FROM idempotency_keys WHERE (scope, idem_key) IN ({pairs});

-- name: delete_expired
DELETE FROM idempotency_keys WHERE scope = %s AND idem_key = %s AND created_at < %s;
