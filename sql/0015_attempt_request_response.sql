-- What each delivery attempt sent and got back, for the event detail and `events tail`.
--
-- `request`: the method, URL and headers as sent on that attempt (sensitive values masked,
-- at most 32 headers of at most 512 characters each) and the SHA-256 of the body; the
-- body itself is not kept per attempt: it is rebuilt from the event's payload with the
-- serializer the worker sends with. `response_headers`: a bounded set of the answer's
-- headers; NULL when there was no answer. Both hold JSON as text, one column each, so
-- an attempt costs two short values more in the insert it already makes (no JSON
-- validation or normalisation, which would also lose the header order). Rows written
-- before this migration have NULL in both.
ALTER TABLE delivery_attempts
  ADD COLUMN request MEDIUMTEXT NULL,
  ADD COLUMN response_headers MEDIUMTEXT NULL;

-- The live tail (`GET /api/v1/events/stream`) reads "what changed since" once a second
-- per API process: `updated_at` is set when an event is inserted and whenever its status
-- changes (an attempt's outcome), and only then, so an index on it is that change log.
-- Leases, parking and re-publishing do not touch it, so the extra index entry is written
-- only with writes that already update other indexes of the row.
ALTER TABLE event_logs ADD INDEX ix_events_updated (updated_at);
