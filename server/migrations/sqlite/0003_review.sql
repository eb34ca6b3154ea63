-- Reviewers' workbench (issue 6): accounts scoped to a province, server-side sign-in sessions,
-- the hash-chained audit log, two-person decisions, legal holds and purges (R15, R17).

CREATE TABLE reviewers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    province        TEXT NOT NULL,
    role            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    totp_secret     TEXT,
    created_at      BIGINT NOT NULL
);

-- Only the sha256 of the cookie value is stored.
CREATE TABLE reviewer_sessions (
    token_sha256    TEXT PRIMARY KEY,
    reviewer_id     TEXT NOT NULL REFERENCES reviewers(id),
    csrf            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- Append-only. hash = sha256(prev_hash || canonical JSON of the other columns).
CREATE TABLE audit_log (
    seq             BIGINT PRIMARY KEY,
    at              BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    province        TEXT NOT NULL,
    target          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);

-- A decision on a session: effective once a second, different reviewer countersigns.
CREATE TABLE review_decisions (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    outcome         TEXT NOT NULL,
    reason_code     TEXT NOT NULL,
    comment         TEXT NOT NULL,
    signer1         TEXT NOT NULL REFERENCES reviewers(id),
    signed1_at      BIGINT NOT NULL,
    signer2         TEXT REFERENCES reviewers(id),
    signed2_at      BIGINT,
    CHECK (signer2 IS NULL OR signer2 <> signer1)
);
CREATE INDEX review_decisions_by_session ON review_decisions (session_id, signed1_at);

-- Sessions whose evidence must not be purged (R15).
CREATE TABLE legal_holds (
    session_id      TEXT PRIMARY KEY REFERENCES sessions(id),
    reason          TEXT NOT NULL,
    placed_by       TEXT NOT NULL,
    placed_at       BIGINT NOT NULL
);

-- Sessions whose snapshots and event log were purged after the retention period.
CREATE TABLE purged_sessions (
    session_id      TEXT PRIMARY KEY,
    purged_at       BIGINT NOT NULL,
    snapshots       BIGINT NOT NULL,
    events          BIGINT NOT NULL
);

-- A learner's appeal against a session's verdict, submitted by the platform on their behalf.
CREATE TABLE appeals (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    platform_id     TEXT NOT NULL REFERENCES platforms(id),
    reason          TEXT NOT NULL,
    submitted_at    BIGINT NOT NULL
);
CREATE INDEX appeals_by_session ON appeals (session_id, submitted_at);
