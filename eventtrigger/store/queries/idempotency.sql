-- Idempotency-Key mappings for webhook calls, scoped to the trigger.

-- name: select
SELECT event_id, request_hash, created_at FROM idempotency_keys WHERE scope = %s AND idem_key = %s;

-- name: insert
INSERT INTO idempotency_keys (scope, idem_key, event_id, request_hash, created_at)
VALUES (%s, %s, %s, %s, %s);

-- name: delete_expired
DELETE FROM idempotency_keys WHERE scope = %s AND idem_key = %s AND created_at < %s;
