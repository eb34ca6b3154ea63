//! Whether a learning session may start (R2, R5, R11, R13, R14), as a pure decision over
//! facts the caller gathered. The refusal names the rule, for problem+json.
//! PLACEHOLDER BODY: the full checks are being written.

use super::ids::SessionId;
use super::profile::Profile;
use super::time::Millis;

/// A platform's standing with the supervision system (R14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformStanding {
    pub registered: bool,
    /// Results are not recognised from this time on.
    pub banned_since: Option<Millis>,
}

/// Another subsidised enrolment of the same learner (R11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherEnrolment {
    pub enrolled_at: Millis,
    /// When that training's exam took place; `None` while not examined.
    pub examined_at: Option<Millis>,
}

/// Everything the decision needs.
#[derive(Debug, Clone)]
pub struct AdmissionFacts<'a> {
    pub profile: &'a Profile,
    pub now: Millis,
    /// When this enrolment was created.
    pub enrolled_at: Millis,
    /// 1-based position of the lesson in its course.
    pub lesson_position: u32,
    /// Positions of this learner's complete lessons in the course.
    pub completed_positions: &'a [u32],
    /// The lesson's content hash is on the approved list (R13).
    pub content_approved: bool,
    pub platform: PlatformStanding,
    pub other_enrolments: &'a [OtherEnrolment],
    /// A live session of this learner that holds the lease (R2), if any.
    pub lease_holder: Option<SessionId>,
}

/// Why a session may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("lessons {missing:?} must be completed before lesson {position}")]
    OutOfOrder { position: u32, missing: Vec<u32> },
    #[error("another subsidised training of this learner is not examined, or was examined less than {cooldown_days} days before this enrolment")]
    RetrainingCooldown { cooldown_days: u32 },
    #[error("the learner already has an active session {holder}")]
    ConcurrentSession { holder: SessionId },
    #[error("the lesson's video is not approved content")]
    ContentNotApproved,
    #[error("the platform is not registered with the supervision system, or is banned")]
    PlatformNotInStanding,
}

/// What to do about the learner's other live session, when admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// Start; nothing else to do.
    Start,
    /// Start, and supersede (terminate) this older session.
    StartSuperseding(SessionId),
}

pub fn admit(_facts: &AdmissionFacts<'_>) -> Result<Admitted, Refusal> {
    Ok(Admitted::Start)
}
