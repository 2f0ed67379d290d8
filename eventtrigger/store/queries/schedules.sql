-- The scheduler's occurrence queue (trigger_schedules).

-- name: select_due
-- Pending occurrences due before the horizon, oldest first. SKIP LOCKED lets any
-- number of schedulers claim side by side without waiting for each other.
SELECT id FROM trigger_schedules
WHERE status = 'pending' AND fire_at <= %s
ORDER BY fire_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: select_expired
-- Claimed by a scheduler that did not fire them in time (it crashed or stalled).
SELECT id FROM trigger_schedules
WHERE status = 'processing' AND lease_until < %s
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: claim
UPDATE trigger_schedules
SET status = 'processing', lease_owner = %s, lease_until = %s,
    attempt_count = attempt_count + 1, last_attempt_at = %s, updated_at = %s
WHERE id IN ({ids});

-- name: select_claimed
SELECT id, fire_at FROM trigger_schedules WHERE id IN ({ids});

-- name: lock_for_fire
-- Re-checked at fire time under lock: a pause, edit or delete that committed after the
-- claim has cancelled or removed the row, or the lease went to another scheduler.
-- The previous signing secret goes along only while a rotation's grace still covers the
-- fire time (the worker re-checks the expiry at each attempt).
-- SKIP LOCKED: an occurrence whose row (or its trigger's) another transaction holds is
-- left out at once, not waited for (InnoDB waits 50 s), so one held row never delays
-- the rest of the batch; `held_elsewhere` tells it from one that is no longer ours.
SELECT s.id, s.trigger_id, s.fire_at, s.nominal_at, s.attempt_count, t.type, t.status, t.config,
       t.signing_secret,
       IF(t.previous_secret_expires_at > s.fire_at, t.previous_signing_secret, NULL)
         AS previous_signing_secret,
       t.previous_secret_expires_at
FROM trigger_schedules s JOIN triggers t ON t.id = s.trigger_id
WHERE s.id IN ({ids}) AND s.status = 'processing' AND s.lease_owner = %s
ORDER BY s.id
FOR UPDATE SKIP LOCKED;

-- name: held_elsewhere
-- Of the occurrences `lock_for_fire` left out, those still claimed by us: their row or
-- their trigger's is locked by another transaction (a plain read, which waits for no
-- lock), so they are tried again shortly; the others were cancelled or re-claimed.
SELECT id FROM trigger_schedules
WHERE id IN ({ids}) AND status = 'processing' AND lease_owner = %s;

-- name: complete
UPDATE trigger_schedules
SET status = 'completed', lease_owner = NULL, lease_until = NULL, updated_at = %s
WHERE id IN ({ids});

-- name: complete_triggers
UPDATE triggers SET status = 'completed', updated_at = %s
WHERE id IN ({ids}) AND status = 'active';

-- name: release
UPDATE trigger_schedules SET status = 'pending', lease_owner = NULL, lease_until = NULL
WHERE lease_owner = %s AND status = 'processing';

-- name: release_some
-- Occurrences that could not be fired this time: back to pending, to be claimed again.
UPDATE trigger_schedules SET status = 'pending', lease_owner = NULL, lease_until = NULL,
       updated_at = %s
WHERE id IN ({ids}) AND lease_owner = %s;
