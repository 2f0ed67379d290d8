-- Managed API keys (api_keys): what the auth layer looks up and the keys API manages.

-- name: insert
INSERT INTO api_keys (id, name, scopes, prefix, key_hash, created_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s);

-- name: select_by_hash
-- Every authenticated request whose key is not in the process's short cache.
SELECT id, name, scopes, prefix, created_at, expires_at, last_used_at, revoked_at
FROM api_keys
WHERE key_hash = %s;

-- name: select_live
-- The keys API's list: revoked keys are gone for good, so they are not shown.
SELECT id, name, scopes, prefix, created_at, expires_at, last_used_at, revoked_at
FROM api_keys
WHERE revoked_at IS NULL
ORDER BY created_at, id;

-- name: revoke
-- Refused by every process once their caches (at most 0.5 s old) have moved on.
UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL;

-- name: touch
-- A batch of uses: never moves last_used_at backwards (two processes flushing).
UPDATE api_keys SET last_used_at = %s
WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s);

-- name: count_key_admins
-- Whether a managed key can still make keys once bootstrap keys are disabled.
SELECT COUNT(*) AS n
FROM api_keys
WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)
  AND (JSON_CONTAINS(scopes, '"admin"') OR JSON_CONTAINS(scopes, '"keys:admin"'));
