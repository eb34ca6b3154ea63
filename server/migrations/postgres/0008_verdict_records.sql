-- A long session's evidence leaves worker memory (issue 3: ≤ 1 KB of worker state per active
-- session). The closed front of a verdict's lists (timeline spans before the last confirmed
-- pop-up, resolved challenges, face checks, snapshots, signals, findings) never changes; a
-- worker writes it here once, beside the verdict, and drops it from the session's fold. The
-- verdict row is then a head: whole-session totals, lists without that front, and
-- `released_json` (how many records of each list come before the head's). Reading a verdict
-- puts records 0..n of each list back in front. Written in the same transaction as the
-- fenced verdict row; a record is a function of the log, so rewriting one is idempotent.
-- No foreign key, as for events (migration 0007): verdict rows keep theirs.
CREATE TABLE verdict_records (
    session_id  TEXT NOT NULL,
    list        TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    body_json   TEXT NOT NULL,
    PRIMARY KEY (session_id, list, idx)
);
-- NULL: the head holds every record (nothing released).
ALTER TABLE session_verdicts ADD COLUMN released_json TEXT;
