-- The live tail's reads (roles/api/stream.py): what changed in event_logs since a point,
-- then those rows. `updated_at` is written with an event's insert and with each outcome
-- of its attempts, and only then, so ix_events_updated (migration 0015) is the change
-- log. The archive is not read: rows move there only finished and past the active window.

-- name: changed
-- (updated_at, id) of the rows changed at or after a point, in that order: an index-only
-- range scan of ix_events_updated (InnoDB keeps the primary key in it). The second
-- condition continues a read that stopped at its limit from the last row it returned;
-- given '' as the id it takes every row from the time on.
SELECT id, updated_at
FROM event_logs FORCE INDEX (ix_events_updated)
WHERE updated_at >= %s AND (updated_at > %s OR id > %s)
ORDER BY updated_at, id
LIMIT %s;

-- name: heads
-- What the streams' filters look at, for the changed rows not seen yet, by primary key
-- ({ids}: one placeholder per id): the large columns are read only for rows a stream
-- wants (`rows`). Forced: on a small table the planner would rather scan it whole.
SELECT id, trigger_id, status, source, updated_at
FROM event_logs FORCE INDEX (PRIMARY) WHERE id IN ({ids});

-- name: rows
-- The changed rows themselves, by primary key ({ids}: one placeholder per id).
SELECT id, trigger_id, trigger_type, source, is_test_run, note, replay_of, scheduled_at,
       fired_at, payload, status, attempts, last_status_code, last_error, delivered_at,
       created_at, updated_at
FROM event_logs WHERE id IN ({ids});

-- name: keys
-- The managed keys open streams were opened with ({ids}: one placeholder per id), read
-- every few seconds so that a stream ends once its key is revoked or has expired.
SELECT id, revoked_at, expires_at FROM api_keys WHERE id IN ({ids});
