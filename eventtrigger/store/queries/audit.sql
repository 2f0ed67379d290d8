-- The audit trail (sql/0013_audit_log.sql). Rows are written in the transaction of the
-- change they record and never updated; retention deletes them (retention.sql).

-- name: insert
INSERT INTO audit_log (id, at, key_id, key_name, action, target_id, request_id, fields)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s);

-- name: page
-- Newest first by (at, id), a stable keyset: rows written while a client pages are newer
-- than its cursor, so nothing is skipped or listed twice. A filter given as NULL is
-- constant-folded away; with a target or a key, ix_audit_target / ix_audit_key give the
-- order. A `before` time comes with id '' (no id is smaller): rows strictly older.
SELECT id, at, key_id, key_name, action, target_id, request_id, fields
FROM audit_log
WHERE (%s IS NULL OR target_id = %s)
  AND (%s IS NULL OR key_id = %s)
  AND (%s IS NULL OR at < %s OR (at = %s AND id < %s))
ORDER BY at DESC, id DESC
LIMIT %s;
