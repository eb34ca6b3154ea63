-- A long session's evidence leaves worker memory (issue 3); see the PostgreSQL migration of
-- the same number for the meaning. SQLite keeps the foreign key (a plain index lookup).
CREATE TABLE verdict_records (
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    list        TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    body_json   TEXT NOT NULL,
    PRIMARY KEY (session_id, list, idx)
);
ALTER TABLE session_verdicts ADD COLUMN released_json TEXT;
