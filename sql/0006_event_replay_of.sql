-- Replay (contract v1.1): a replayed event names the event it replays. The original's
-- request snapshot (url, method, headers, timeout, retry) is already on its row
-- (`request`, taken at firing time), so a replay sends what the original sent.
-- One ALTER per table (a table's DDL is atomic); NULL for every existing event.
ALTER TABLE event_logs ADD COLUMN replay_of CHAR(26) CHARACTER SET ascii NULL AFTER note;
ALTER TABLE event_logs_archive ADD COLUMN replay_of CHAR(26) CHARACTER SET ascii NULL AFTER note;
