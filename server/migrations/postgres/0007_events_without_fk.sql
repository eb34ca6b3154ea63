-- The event log's hot path (issue 3). On PostgreSQL a foreign key check runs per inserted row
-- as an SPI query that takes a FOR KEY SHARE lock on the session's row: with batches of 256
-- events it was about a fifth of the database's CPU under load (BENCHMARKS.md). Every event
-- is appended for a session the service itself created and never deletes (the gateway only
-- accepts events on a session's own token; a purge deletes events, never sessions), so the
-- check cannot fail. The verdict table keeps its key: an upsert that does not change the key
-- skips the check.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_session_id_fkey;
