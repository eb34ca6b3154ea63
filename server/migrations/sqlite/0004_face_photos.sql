-- The enrolment photo, kept only when the enrolment's profile requires it (face
-- keep_enrolment_photo): sealed with AES-GCM like templates (key id for rotation; the learner
-- id as associated data, prefixed so a photo cannot pass for a template). Deleted on
-- withdrawal and replaced (or dropped) on re-enrolment.
CREATE TABLE face_photos (
    learner_id      TEXT PRIMARY KEY REFERENCES learners(id),
    key_id          TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    enrolled_at     BIGINT NOT NULL
);
