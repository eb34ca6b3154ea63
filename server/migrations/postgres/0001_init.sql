-- proctor schema (PostgreSQL). The SQLite twin lives in ../sqlite with the same tables,
-- columns and meanings; queries use only portable SQL ($1 placeholders, no casts).
-- Times are server milliseconds since the Unix epoch (BIGINT). Booleans are 0/1 integers.
-- Every integer column is BIGINT so that the portable queries decode them as i64 on both backends.

CREATE TABLE platforms (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    province        TEXT NOT NULL,
    client_id       TEXT NOT NULL UNIQUE,
    secret_sha256   TEXT NOT NULL,
    registered      BIGINT NOT NULL DEFAULT 1,
    banned_since    BIGINT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE approved_content (
    province        TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    approved_at     BIGINT NOT NULL,
    PRIMARY KEY (province, content_hash)
);

CREATE TABLE courses (
    id              TEXT PRIMARY KEY,
    platform_id     TEXT NOT NULL REFERENCES platforms(id),
    title           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE lessons (
    id              TEXT PRIMARY KEY,
    course_id       TEXT NOT NULL REFERENCES courses(id),
    position        BIGINT NOT NULL,
    title           TEXT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    content_hash    TEXT NOT NULL,
    UNIQUE (course_id, position)
);

CREATE TABLE classes (
    id                      TEXT PRIMARY KEY,
    platform_id             TEXT NOT NULL REFERENCES platforms(id),
    course_id               TEXT NOT NULL REFERENCES courses(id),
    name                    TEXT NOT NULL,
    occupation              TEXT,
    profile_id              TEXT NOT NULL,
    profile_version         BIGINT NOT NULL,
    planned_total_hours     BIGINT NOT NULL,
    planned_online_hours    BIGINT NOT NULL,
    created_at              BIGINT NOT NULL
);

CREATE TABLE learners (
    id              TEXT PRIMARY KEY,
    platform_id     TEXT NOT NULL REFERENCES platforms(id),
    external_ref    TEXT NOT NULL,
    real_name       TEXT NOT NULL,
    id_number_sha256 TEXT NOT NULL,
    face_consent    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    UNIQUE (platform_id, external_ref)
);

CREATE TABLE enrolments (
    id              TEXT PRIMARY KEY,
    class_id        TEXT NOT NULL REFERENCES classes(id),
    learner_id      TEXT NOT NULL REFERENCES learners(id),
    enrolled_at     BIGINT NOT NULL,
    examined_at     BIGINT,
    UNIQUE (class_id, learner_id)
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    enrolment_id    TEXT NOT NULL REFERENCES enrolments(id),
    learner_id      TEXT NOT NULL REFERENCES learners(id),
    lesson_id       TEXT NOT NULL REFERENCES lessons(id),
    platform_id     TEXT NOT NULL REFERENCES platforms(id),
    context_json    TEXT NOT NULL,
    profile_id      TEXT NOT NULL,
    profile_version BIGINT NOT NULL,
    server_seq      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    ended_at        BIGINT
);
CREATE INDEX sessions_by_enrolment ON sessions (enrolment_id, lesson_id);
CREATE INDEX sessions_by_learner ON sessions (learner_id, created_at);

-- The session event log: append-only, one row per (session, origin, seq).
CREATE TABLE events (
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    origin          TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    body_json       TEXT NOT NULL,
    PRIMARY KEY (session_id, origin, seq)
);

CREATE TABLE session_verdicts (
    session_id      TEXT PRIMARY KEY REFERENCES sessions(id),
    verdict_json    TEXT NOT NULL,
    credited_ms     BIGINT NOT NULL,
    ended           BIGINT NOT NULL,
    flagged         BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Refused session starts (R2, R5, R11, R13, R14), kept as evidence.
CREATE TABLE refusals (
    id              TEXT PRIMARY KEY,
    enrolment_id    TEXT,
    learner_id      TEXT NOT NULL,
    lesson_id       TEXT,
    rule            TEXT NOT NULL,
    detail          TEXT NOT NULL,
    at              BIGINT NOT NULL
);

CREATE TABLE snapshots (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    nonce           TEXT NOT NULL UNIQUE,
    sha256          TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    bytes           BIGINT NOT NULL,
    path            TEXT NOT NULL,
    at              BIGINT NOT NULL
);
