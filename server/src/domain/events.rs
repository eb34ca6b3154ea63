//! The session event log. Names follow the xAPI Video Profile verbs (initialized, played,
//! paused, seeked, "rate changed" interaction, terminated) plus the events the server itself
//! appends: challenges issued / answered / expired, face checks, snapshots, lease facts.
//!
//! Invariants: every event has a unique key `(origin, seq)` within its session and a server
//! time `at` that was stamped once, when it was first accepted; redelivery never re-stamps.
//! The canonical order of a log is [`Event::order_key`]; folding a log in that order, with
//! duplicates dropped, is the only way a verdict is computed. Video positions are integer
//! milliseconds and playback rates integer per-mille, so that the fold and its serialised
//! verdict are exact and byte-for-byte reproducible.

use serde::{Deserialize, Serialize};

use super::ids::SessionId;
use super::time::Millis;

/// Who produced an event. Client events are numbered by the client (per-session sequence
/// numbers that the gateway checks for gaps and replays); server events by the server.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Appended by the service (timers, face checks, leases). Sorts before a client event
    /// stamped in the same millisecond.
    Server,
    /// Sent by the learner's browser over the WebSocket.
    Client,
}

/// One entry in a session's log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub origin: Origin,
    /// Per-session, per-origin sequence number, starting at 1.
    pub seq: u64,
    /// Server receive (or generation) time.
    pub at: Millis,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The canonical fold order: server time, then origin, then sequence number.
    pub fn order_key(&self) -> (Millis, Origin, u64) {
        (self.at, self.origin, self.seq)
    }

    /// The identity used for de-duplication.
    pub fn id(&self) -> (Origin, u64) {
        (self.origin, self.seq)
    }
}

/// What kind of check the server asked for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeKind {
    /// An attention check (弹窗, R3): the learner must pick the code shown.
    Popup,
    /// A random photo (R6): the client must upload a camera frame.
    Snapshot,
    /// A face re-check (R4): liveness plus match against the enrolled template.
    FaceRecheck,
    /// The active liveness challenge (R4): head poses in a random order, one frame each,
    /// requested by the learner's client at session start. `expected` holds the steps.
    Liveness,
}

/// Why a session ended.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// The learner (client) ended it.
    Ended,
    /// The lesson's video reached its end.
    Completed,
    /// No heartbeat within the lease TTL (R2): the socket went away.
    LeaseExpired,
    /// Another session of the same learner took over (profile `on_concurrent = "supersede"`).
    Superseded,
    /// The service shut down or an operator ended it.
    Server,
}

/// How a face check was carried out.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FaceMethod {
    /// Liveness plus match against the enrolled template, by the face models.
    Face,
    /// The non-face alternative (a reviewer's manual identity check), per the 2025 measures.
    Manual,
}

/// What the face pipeline saw in a snapshot (R6): evidence for reviewers, not a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotAnalysis {
    /// Faces found in the frame.
    pub faces: u32,
    /// Similarity to the enrolled template, per-mille (1000 − 1000 × distance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_permille: Option<i32>,
    /// Passive liveness P(real), per-mille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_permille: Option<i32>,
    /// Perceptual hash (dHash) of the frame, 16 hex digits.
    pub dhash: String,
    /// An earlier snapshot (of any learner) with nearly the same picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_picture_as: Option<String>,
    /// Whether the frame shows exactly one live face of the enrolled learner (the model
    /// cards' thresholds, decided by the service); absent when no template was enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_live_matching_face: Option<bool>,
    /// Model versions and raw scores.
    pub detail: String,
}

/// The event payloads. `type` is the verb. Unknown fields are refused, so a client cannot
/// smuggle data into the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventBody {
    // ----- appended by the server -----
    /// The session was created (R5, R11, R13, R14 and the lease already checked). Always the
    /// first event of a log: server seq 1.
    SessionStarted,
    /// The server asked for a check at a moment it chose at random.
    ChallengeIssued {
        nonce: String,
        kind: ChallengeKind,
        deadline: Millis,
        /// For a pop-up: the code the learner must pick. Never used for other kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
    },
    /// A challenge's deadline passed without a valid answer.
    ChallengeExpired { nonce: String },
    /// Result of a face check (at session start, or answering a `face_recheck` challenge).
    FaceChecked {
        check_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        method: FaceMethod,
        passed: bool,
        /// Match score in per-mille (higher is more similar), when the models ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        match_permille: Option<i32>,
        /// Passive liveness P(real) in per-mille, when the models ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        liveness_permille: Option<i32>,
        /// Model versions or the reviewer id, for the evidence.
        detail: String,
    },
    /// A snapshot answering a `snapshot` challenge was stored in the evidence store.
    SnapshotStored {
        nonce: String,
        snapshot_id: String,
        sha256: String,
        /// What the face pipeline saw in it (R6 evidence), when the models ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        analysis: Option<SnapshotAnalysis>,
    },
    /// Another session of the same learner asked for the lease while this one held it.
    ConcurrentSessionRefused { other_session: SessionId },
    /// The session ended (by the client, the lease, a supersede, or the server).
    Terminated {
        reason: TerminationReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position_ms: Option<i64>,
    },

    // ----- sent by the client (xAPI video verbs) -----
    /// The player is ready (xAPI `initialized`).
    Initialized {
        /// The video's duration as the player reports it (a claim, checked against the lesson).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<i64>,
    },
    /// Playback started or resumed at `position_ms` (xAPI `played`).
    Played { position_ms: i64 },
    /// Playback paused (xAPI `paused`).
    Paused { position_ms: i64 },
    /// The learner (or a script) moved the playhead (xAPI `seeked`).
    Seeked { from_ms: i64, to_ms: i64 },
    /// Playback rate changed (xAPI `interacted` with a speed change), per-mille: 1000 = 1.0×.
    RateChanged {
        position_ms: i64,
        rate_permille: i32,
    },
    /// Periodic state report (every few seconds while the page is open).
    Heartbeat {
        position_ms: i64,
        rate_permille: i32,
        paused: bool,
        visible: bool,
        focused: bool,
        /// The client's claim of played segments (xAPI `played-segments`), video ms.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        played: Vec<[i64; 2]>,
    },
    /// `document.visibilityState` changed.
    VisibilityChanged { visible: bool, position_ms: i64 },
    /// The window gained or lost focus.
    FocusChanged { focused: bool, position_ms: i64 },
    /// The learner answered a pop-up.
    ChallengeAnswered { nonce: String, answer: String },
    /// A tamper or environment signal the SDK noticed (overridden setters, webdriver, a
    /// virtual camera). A signal is weighed by reviewers; it never decides credit alone.
    Signal { name: String, detail: String },
}

impl EventBody {
    /// The verb, as stored and as shown in timelines.
    pub fn verb(&self) -> &'static str {
        match self {
            EventBody::SessionStarted => "session_started",
            EventBody::ChallengeIssued { .. } => "challenge_issued",
            EventBody::ChallengeExpired { .. } => "challenge_expired",
            EventBody::FaceChecked { .. } => "face_checked",
            EventBody::SnapshotStored { .. } => "snapshot_stored",
            EventBody::ConcurrentSessionRefused { .. } => "concurrent_session_refused",
            EventBody::Terminated { .. } => "terminated",
            EventBody::Initialized { .. } => "initialized",
            EventBody::Played { .. } => "played",
            EventBody::Paused { .. } => "paused",
            EventBody::Seeked { .. } => "seeked",
            EventBody::RateChanged { .. } => "rate_changed",
            EventBody::Heartbeat { .. } => "heartbeat",
            EventBody::VisibilityChanged { .. } => "visibility_changed",
            EventBody::FocusChanged { .. } => "focus_changed",
            EventBody::ChallengeAnswered { .. } => "challenge_answered",
            EventBody::Signal { .. } => "signal",
        }
    }

    /// Whether a client may send this body. Server-only bodies from a client are refused by
    /// the gateway before they reach the log.
    pub fn is_client_body(&self) -> bool {
        match self {
            EventBody::SessionStarted
            | EventBody::ChallengeIssued { .. }
            | EventBody::ChallengeExpired { .. }
            | EventBody::FaceChecked { .. }
            | EventBody::SnapshotStored { .. }
            | EventBody::ConcurrentSessionRefused { .. } => false,
            // A client may end its own session (reason `ended`); the gateway refuses others.
            EventBody::Terminated { reason, .. } => *reason == TerminationReason::Ended,
            EventBody::Initialized { .. }
            | EventBody::Played { .. }
            | EventBody::Paused { .. }
            | EventBody::Seeked { .. }
            | EventBody::RateChanged { .. }
            | EventBody::Heartbeat { .. }
            | EventBody::VisibilityChanged { .. }
            | EventBody::FocusChanged { .. }
            | EventBody::ChallengeAnswered { .. }
            | EventBody::Signal { .. } => true,
        }
    }
}
