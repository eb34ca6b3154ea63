-- Face enrolment (issue 5): sealed templates (AES-GCM, key id for rotation; never the photo),
-- consent receipts (granted / withdrawn, with the consent text's version and hash), and the
-- perceptual hashes of stored snapshots (to spot the same picture reused).
CREATE TABLE face_templates (
    learner_id      TEXT PRIMARY KEY REFERENCES learners(id),
    key_id          TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    models          TEXT NOT NULL,
    enrolled_at     BIGINT NOT NULL
);

CREATE TABLE face_consents (
    id              TEXT PRIMARY KEY,
    learner_id      TEXT NOT NULL REFERENCES learners(id),
    action          TEXT NOT NULL,
    text_version    TEXT NOT NULL,
    text_sha256     TEXT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX face_consents_by_learner ON face_consents (learner_id, at);

CREATE TABLE frame_hashes (
    snapshot_id     TEXT PRIMARY KEY,
    learner_id      TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    dhash           TEXT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX frame_hashes_by_at ON frame_hashes (at);
