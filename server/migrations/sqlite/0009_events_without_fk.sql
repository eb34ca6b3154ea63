-- The event log's hot path on the embedded store (issue 3): its foreign key goes, as it went on
-- PostgreSQL (0007 there). With `foreign_keys = ON` every inserted event looked its session up
-- in `sessions`; every event is appended for a session the service itself created and never
-- deletes (the gateway only accepts events on a session's own token; a purge deletes events,
-- never sessions), so the check cannot fail. SQLite cannot drop a constraint: the table is
-- rebuilt, with the same columns and key. It stays a rowid table: clustered by its key
-- (`WITHOUT ROWID`) it filled about 30 % slower with 1 000 sessions interleaved, since
-- each page split then moves whole rows (BENCHMARKS.md).
CREATE TABLE events_new (
    session_id      TEXT NOT NULL,
    origin          TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    body_json       TEXT NOT NULL,
    PRIMARY KEY (session_id, origin, seq)
);

INSERT INTO events_new (session_id, origin, seq, at, body_json)
    SELECT session_id, origin, seq, at, body_json FROM events;

DROP TABLE events;

ALTER TABLE events_new RENAME TO events;
