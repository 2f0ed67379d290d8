-- Signing secrets: what the worker signs with, the start check's samples, a rotation of
-- a trigger's secret, and re-encryption under a new key (store/secrets.py).

-- name: event_secrets
-- The signing fields of leased events' request snapshots (written once at firing, never
-- changed). JSON_UNQUOTE(JSON_EXTRACT(...)): the common subset of MariaDB and MySQL; a
-- field the snapshot lacks is NULL.
SELECT id,
       JSON_UNQUOTE(JSON_EXTRACT(request, '$.signing_secret')) AS signing_secret,
       JSON_UNQUOTE(JSON_EXTRACT(request, '$.previous_signing_secret')) AS previous_signing_secret,
       JSON_UNQUOTE(JSON_EXTRACT(request, '$.previous_secret_expires_at')) AS previous_secret_expires_at
FROM event_logs
WHERE id IN ({ids});

-- name: lock_trigger_secret
SELECT signing_secret FROM triggers WHERE id = %s FOR UPDATE;

-- name: rotate_trigger_secret
-- The current secret becomes the previous one until the given expiry (re-encrypted by
-- the caller: the field is part of its associated data).
UPDATE triggers
SET previous_signing_secret = %s, previous_secret_expires_at = %s, signing_secret = %s,
    updated_at = %s
WHERE id = %s;

-- name: sealed_triggers
-- The start check: triggers whose secrets are encrypted (triggers are few; a full scan).
SELECT id, signing_secret, previous_signing_secret
FROM triggers
WHERE signing_secret LIKE 'enc:%' OR previous_signing_secret LIKE 'enc:%';

-- name: sealed_pending_events
-- The start check: one event still to deliver per key id its snapshot is encrypted
-- under (ix_events_due finds them; a backlog is grouped here, not sent to the client).
SELECT l.id, JSON_UNQUOTE(JSON_EXTRACT(l.request, '$.signing_secret')) AS signing_secret,
       NULL AS previous_signing_secret
FROM event_logs l
JOIN (
  SELECT MIN(id) AS id
  FROM (SELECT id, JSON_UNQUOTE(JSON_EXTRACT(request, '$.signing_secret')) AS secret
        FROM event_logs WHERE status IN ('pending', 'retrying')) p
  WHERE secret LIKE 'enc:%'
  GROUP BY SUBSTRING_INDEX(SUBSTRING(secret, 8), ':', 1)
) e ON e.id = l.id;

-- name: trigger_page
-- Re-encryption: a page of triggers by id, locked until the page's transaction ends.
SELECT id, signing_secret, previous_signing_secret
FROM triggers WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE;

-- name: rewrite_trigger
UPDATE triggers SET signing_secret = %s, previous_signing_secret = %s WHERE id = %s;

-- name: event_page
SELECT id, request FROM event_logs WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE;

-- name: rewrite_event
UPDATE event_logs SET request = %s WHERE id = %s;

-- name: archived_event_page
SELECT id, request FROM event_logs_archive WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE;

-- name: rewrite_archived_event
UPDATE event_logs_archive SET request = %s WHERE id = %s;
