-- Triggers and their occurrences (trigger_schedules), as the API manages them.

-- name: insert
INSERT INTO triggers (id, name, type, status, config, signing_secret, webhook_token, version,
                      created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s);

-- name: select
-- next_fire_at is derived from the pending occurrence, so it can never disagree with it.
SELECT t.id, t.name, t.type, t.status, t.config, t.signing_secret, t.webhook_token,
       t.previous_signing_secret, t.previous_secret_expires_at, t.version,
       t.paused_reason, t.created_at, t.updated_at,
       (SELECT MIN(s.fire_at) FROM trigger_schedules s
         WHERE s.trigger_id = t.id AND s.status IN ('pending', 'processing')) AS next_fire_at
FROM triggers t
WHERE t.id = %s;

-- name: select_by_token
-- A webhook call: the token is the URL's secret (uq_triggers_webhook_token, ascii_bin).
SELECT t.id, t.name, t.type, t.status, t.config, t.signing_secret, t.webhook_token,
       t.previous_signing_secret, t.previous_secret_expires_at, t.version,
       t.paused_reason, t.created_at, t.updated_at, NULL AS next_fire_at
FROM triggers t
WHERE t.webhook_token = %s;

-- name: select_fingerprints
-- A group of webhook calls checked against cached triggers: what a call depends on
-- (status, version, URL token, signing secrets), read in the calls' transaction.
SELECT id, status, version, webhook_token, signing_secret, previous_signing_secret,
       previous_secret_expires_at
FROM triggers
WHERE id IN ({ids});

-- name: set_webhook_token
-- Rotation: the old token stops matching the moment this commits.
UPDATE triggers SET webhook_token = %s, updated_at = %s WHERE id = %s AND type = 'webhook';

-- name: select_for_update
SELECT id, name, type, status, config, version FROM triggers WHERE id = %s FOR UPDATE;

-- name: list
-- Newest first by creation; (created_at, id) is a stable keyset: rows inserted while a
-- client pages are newer than its cursor, so nothing is skipped or listed twice.
-- A filter given as NULL is constant-folded away by the optimizer.
SELECT t.id, t.name, t.type, t.status, t.config, t.signing_secret, t.webhook_token,
       t.previous_signing_secret, t.previous_secret_expires_at, t.version,
       t.paused_reason, t.created_at, t.updated_at,
       (SELECT MIN(s.fire_at) FROM trigger_schedules s
         WHERE s.trigger_id = t.id AND s.status IN ('pending', 'processing')) AS next_fire_at
FROM triggers t
WHERE (%s IS NULL OR t.type = %s)
  AND (%s IS NULL OR t.status = %s)
  AND (%s IS NULL OR t.created_at < %s OR (t.created_at = %s AND t.id < %s))
ORDER BY t.created_at DESC, t.id DESC
LIMIT %s;

-- name: update
UPDATE triggers SET name = %s, status = %s, config = %s, version = %s, updated_at = %s
WHERE id = %s;

-- name: delete
DELETE FROM triggers WHERE id = %s;

-- name: insert_occurrence
-- The one way occurrences are added (API and scheduler alike, one row or many). Re-adding
-- one that a pause or edit cancelled revives the same row; one that is pending,
-- processing or completed is left alone (it exists already, or it already fired).
-- No placeholders after VALUES: asyncmy copies this clause as is into multi-row inserts.
INSERT INTO trigger_schedules (trigger_id, fire_at, nominal_at, status, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE
  nominal_at = IF(status = 'cancelled', VALUES(nominal_at), nominal_at),
  lease_owner = IF(status = 'cancelled', NULL, lease_owner),
  lease_until = IF(status = 'cancelled', NULL, lease_until),
  updated_at = IF(status = 'cancelled', created_at, updated_at),
  status = IF(status = 'cancelled', 'pending', status);

-- name: pending_occurrence_ids
-- A plain read (no locks) through ix_schedules_trigger_status: only the occurrences an
-- edit can change (pending, or claimed by a scheduler); fired history is not read.
SELECT id FROM trigger_schedules FORCE INDEX (ix_schedules_trigger_status)
WHERE trigger_id = %s AND status IN ('pending', 'processing');

-- name: lock_occurrences
-- Those rows locked by primary key, before the trigger row: the order of the scheduler's
-- claim (primary key, then its secondary indexes) and of its firing transaction
-- (occurrences, then trigger). Locking through the secondary index instead deadlocked
-- with the claim. One added meanwhile is still cancelled by cancel_occurrences, which
-- reads the latest committed rows.
SELECT id FROM trigger_schedules
WHERE id IN ({ids}) AND status IN ('pending', 'processing')
FOR UPDATE;

-- name: cancel_occurrences
-- Also occurrences already claimed: the scheduler re-checks the row when it fires.
-- The index is forced: with few pending rows in its statistics the optimizer picked
-- ix_schedules_claim, which walks (and lock-checks) every trigger's pending occurrences.
UPDATE trigger_schedules FORCE INDEX (ix_schedules_trigger_status) SET status = 'cancelled', lease_owner = NULL, lease_until = NULL,
       updated_at = %s
WHERE trigger_id = %s AND status IN ('pending', 'processing');

-- name: delete_occurrences
-- Pending and claimed ones only (ix_schedules_trigger_status); retention prunes history.
-- (The multi-table form, because only it takes an index hint.)
DELETE s FROM trigger_schedules s FORCE INDEX (ix_schedules_trigger_status)
WHERE s.trigger_id = %s AND s.status IN ('pending', 'processing');
