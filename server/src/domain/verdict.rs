//! Verdicts: what the fold concludes for a session, a lesson and an enrolment. Everything
//! RULES.md asks for ("What a verdict must contain"): credited seconds and 课时, each rule's
//! status with reason codes and evidence, whether the training counts, the profile version,
//! and who reviewed it. Invariant: a session's timeline partitions its wall time, so every
//! uncredited millisecond sits in a span with a [`Reason`].
//!
//! Only ordered containers (Vec, BTreeMap) appear here, so serialising a verdict is
//! deterministic and a replay can be compared byte for byte.

use serde::{Deserialize, Serialize};

use super::events::{ChallengeKind, Origin};
use super::ids::{EnrolmentId, LearnerId, LessonId, SessionId};
use super::profile::ProfileRef;
use super::time::Millis;

/// The rules a verdict reports on (RULES.md ids).
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
pub enum RuleId {
    #[serde(rename = "R1_no_fast_forward")]
    R1NoFastForward,
    #[serde(rename = "R2_single_window")]
    R2SingleWindow,
    #[serde(rename = "R3_popup_check")]
    R3PopupCheck,
    #[serde(rename = "R4_face_liveness")]
    R4FaceLiveness,
    #[serde(rename = "R5_sequential_lessons")]
    R5SequentialLessons,
    #[serde(rename = "R6_random_snapshots")]
    R6RandomSnapshots,
    #[serde(rename = "R7_online_share_cap")]
    R7OnlineShareCap,
    #[serde(rename = "R8_lesson_hour_length")]
    R8LessonHourLength,
}

impl RuleId {
    pub const ALL: [RuleId; 8] = [
        RuleId::R1NoFastForward,
        RuleId::R2SingleWindow,
        RuleId::R3PopupCheck,
        RuleId::R4FaceLiveness,
        RuleId::R5SequentialLessons,
        RuleId::R6RandomSnapshots,
        RuleId::R7OnlineShareCap,
        RuleId::R8LessonHourLength,
    ];

    /// The rule's place in [`RuleId::ALL`] (the index of per-rule counts).
    pub fn index(self) -> usize {
        match self {
            RuleId::R1NoFastForward => 0,
            RuleId::R2SingleWindow => 1,
            RuleId::R3PopupCheck => 2,
            RuleId::R4FaceLiveness => 3,
            RuleId::R5SequentialLessons => 4,
            RuleId::R6RandomSnapshots => 5,
            RuleId::R7OnlineShareCap => 6,
            RuleId::R8LessonHourLength => 7,
        }
    }

    /// The stable code, e.g. `R3_popup_check`, used in problem+json and metrics labels.
    pub fn code(self) -> &'static str {
        match self {
            RuleId::R1NoFastForward => "R1_no_fast_forward",
            RuleId::R2SingleWindow => "R2_single_window",
            RuleId::R3PopupCheck => "R3_popup_check",
            RuleId::R4FaceLiveness => "R4_face_liveness",
            RuleId::R5SequentialLessons => "R5_sequential_lessons",
            RuleId::R6RandomSnapshots => "R6_random_snapshots",
            RuleId::R7OnlineShareCap => "R7_online_share_cap",
            RuleId::R8LessonHourLength => "R8_lesson_hour_length",
        }
    }
}

/// A rule's outcome in one verdict.
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
pub enum RuleStatus {
    /// The log shows the rule was kept (any attempt to break it was refused or earned nothing
    /// and is listed as a finding with status `held` only when nothing was attempted).
    Held,
    /// The log shows at least one attempt to break the rule; the findings say which and where.
    Violated,
    /// The rule does not apply at this level or under this profile.
    NotApplicable,
}

/// Why a span of time earned no credit. Every uncredited millisecond carries one.
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
pub enum Reason {
    // R1
    /// Reported playback ran ahead of server time beyond tolerance.
    FastForward,
    /// A forward seek past the furthest watched point.
    ForwardSeek,
    /// Playback rate above the profile's maximum.
    PlaybackRate,
    /// The video was paused, not yet playing, or reported no progress.
    NotPlaying,
    /// The span re-watched video already covered (credit is for new coverage only).
    AlreadyCovered,
    /// Past the end of the video.
    VideoEnded,
    // R2
    /// The page was hidden.
    PageHidden,
    /// The window was not focused.
    WindowUnfocused,
    /// The session lost its lease (superseded, or no heartbeat within the TTL).
    LeaseLost,
    /// A second session of the same learner was attempted while this one held the lease
    /// (a finding code only: the attempt was refused or superseded this session).
    ConcurrentSession,
    // R3
    /// A pop-up was outstanding; playback must wait for the answer.
    PopupPending,
    /// A pop-up expired (or was answered late or wrongly): time since the last confirmed check is void.
    PopupMissed,
    /// Credited time since the last confirmed check would exceed the maximum gap.
    PopupOverdue,
    // R4
    /// No passed face check yet.
    FaceCheckRequired,
    /// A face check failed (or a re-check expired); credit resumes after a passed one.
    FaceCheckFailed,
    // R5
    /// The lesson was started before the previous lessons were complete.
    OutOfOrder,
    // R6
    /// The 课时 this time falls in lacks its random snapshots.
    MissingSnapshots,
    /// A snapshot reuses an earlier picture (this learner's or another's): a replayed photo
    /// or video loop. The snapshot does not count.
    ReusedPicture,
    /// A snapshot does not show exactly one live face of the enrolled learner; it does not
    /// count.
    UnusableSnapshot,
    // R7
    /// Online credit beyond the class's online share cap.
    OnlineCapReached,
    // R8
    /// Credited time that does not fill a whole 课时.
    IncompleteLessonHour,
    /// Time after the session ended (late events are recorded, never credited).
    SessionEnded,
    // R16
    /// A make-up session (补课) not yet confirmed by the profile's reviewers: recorded in
    /// full, counted once they confirm it.
    MakeUpUnverified,
}

/// A pointer to the event that decided something.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct EventRef {
    pub origin: Origin,
    pub seq: u64,
    pub at: Millis,
}

/// One stretch of a session's wall time, credited or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Span {
    pub from: Millis,
    pub to: Millis,
    /// Video positions the span covered, when playing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<[i64; 2]>,
    pub credited: bool,
    /// Present exactly when `credited` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The event that closed (or re-labelled) the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EventRef>,
}

/// A rule-relevant fact with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub code: Reason,
    pub at: Millis,
    pub evidence: Vec<EventRef>,
    /// Human-readable detail (numbers, ids), for reviewers.
    pub detail: String,
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleResult {
    pub rule: RuleId,
    pub status: RuleStatus,
    pub findings: Vec<Finding>,
}

/// How a challenge went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeOutcome {
    Pending,
    Confirmed,
    Missed,
}

/// A pop-up, snapshot request or face re-check, as the verdict reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChallengeRecord {
    pub nonce: String,
    pub kind: ChallengeKind,
    pub issued_at: Millis,
    pub deadline: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Millis>,
    /// Answer time in ms (answered_at − issued_at), for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<i64>,
    pub outcome: ChallengeOutcome,
}

/// A face check, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceCheckRecord {
    pub check_id: String,
    pub at: Millis,
    pub passed: bool,
    pub method: super::events::FaceMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_permille: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_permille: Option<i32>,
    pub detail: String,
}

/// A stored snapshot, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotRecord {
    pub snapshot_id: String,
    pub nonce: String,
    pub at: Millis,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::events::SnapshotAnalysis>,
    /// Why this snapshot is not a valid retained photo for its 课时 (R6), if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<String>,
}

/// A tamper or environment signal, for reviewers to weigh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignalRecord {
    pub at: Millis,
    pub name: String,
    pub detail: String,
}

/// Seconds and milliseconds by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReasonTotal {
    pub reason: Reason,
    pub ms: i64,
}

/// Who reviewed a verdict (filled by the reviewers' workbench; empty until then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    pub reviewer: String,
    pub decision: String,
    pub at: Millis,
}

/// The verdict for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionVerdict {
    pub session_id: SessionId,
    pub learner_id: LearnerId,
    pub lesson_id: LessonId,
    pub profile: ProfileRef,
    pub started_at: Millis,
    /// Server time of the last event folded (or of termination).
    pub last_event_at: Millis,
    pub ended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<super::events::TerminationReason>,
    /// Server wall time covered by the timeline: `last_event_at − started_at`.
    pub wall_ms: i64,
    pub credited_ms: i64,
    /// Credited time that is still provisional: since the last confirmed pop-up (R3). It
    /// becomes credited when the next pop-up is confirmed or the session ends cleanly, and
    /// void if the pop-up is missed. Included in `credited_ms`.
    pub provisional_ms: i64,
    pub uncredited: Vec<ReasonTotal>,
    /// Video newly covered in this session (ms intervals, merged, sorted).
    pub coverage: Vec<[i64; 2]>,
    /// Coverage of the lesson including earlier sessions.
    pub lesson_coverage_ms: i64,
    pub lesson_duration_ms: i64,
    pub lesson_complete: bool,
    pub timeline: Vec<Span>,
    pub rules: Vec<RuleResult>,
    pub challenges: Vec<ChallengeRecord>,
    pub face_checks: Vec<FaceCheckRecord>,
    pub snapshots: Vec<SnapshotRecord>,
    pub signals: Vec<SignalRecord>,
    /// A failed face check, a reused snapshot picture or a tamper signal: a reviewer should
    /// look. Never ends study alone.
    pub flagged_for_review: bool,
    /// The session contributes credit (some credited time and no rule makes it void).
    pub counts: bool,
    pub events_folded: u64,
    pub reviewed_by: Vec<ReviewRecord>,
}

/// One lesson of an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LessonVerdict {
    pub lesson_id: LessonId,
    /// 1-based position in the course.
    pub position: u32,
    pub duration_ms: i64,
    pub coverage_ms: i64,
    pub complete: bool,
    /// Credited time from its sessions (before the enrolment-level R5–R8 adjustments).
    pub session_credited_ms: i64,
    /// Credited time after R5 (order) is applied.
    pub credited_ms: i64,
    pub sessions: Vec<SessionId>,
    pub rules: Vec<RuleResult>,
    /// Make-up sessions (R16, 补课): sessions on this lesson after one that did not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub make_ups: Vec<MakeUpRecord>,
}

/// A make-up session (R16) and whether it counts yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MakeUpRecord {
    pub session: SessionId,
    /// The session whose verdict did not count, which this one makes up.
    pub makes_up: SessionId,
    /// The profile's reviewers confirmed it (always true when the profile needs no review).
    pub verified: bool,
}

/// A 课时 as the enrolment fold cut it from credited time, with its snapshots (R6, R8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LessonHourRecord {
    pub index: u32,
    pub from: Millis,
    pub to: Millis,
    pub snapshot_ids: Vec<String>,
    pub counts: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// The verdict for a learner's enrolment in a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrolmentVerdict {
    pub enrolment_id: EnrolmentId,
    pub learner_id: LearnerId,
    pub profile: ProfileRef,
    pub lessons: Vec<LessonVerdict>,
    /// Credited time after R5 and R6, before the cap and the 课时 rounding.
    pub credited_ms: i64,
    /// Whole 课时 that count (R6 snapshots present, R7 cap applied, R8 whole units).
    pub lesson_hours: u32,
    pub lesson_hour_records: Vec<LessonHourRecord>,
    /// Online 课时 allowed by R7 (planned total × cap); `None` when the profile has no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_cap_hours: Option<u32>,
    pub planned_online_hours: u32,
    pub planned_total_hours: u32,
    /// Online share of the planned total that the credited 课时 represent, per-mille.
    pub online_share_permille: i32,
    pub uncredited: Vec<ReasonTotal>,
    pub rules: Vec<RuleResult>,
    pub all_lessons_complete: bool,
    /// Whether the online training counts.
    pub counts: bool,
    pub flagged_for_review: bool,
    pub reviewed_by: Vec<ReviewRecord>,
}
