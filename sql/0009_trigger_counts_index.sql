-- The stats snapshot counts triggers by type and status. Without an index on both, that
-- count read the whole table, configs and secrets included: 3.5 s and 667 MB through a
-- 256 MB buffer pool with 1,000,000 stored schedules (bench S6), evicting the pages
-- firing needs. With it, the count reads a narrow index instead.
ALTER TABLE triggers ADD INDEX ix_triggers_type_status (type, status);
