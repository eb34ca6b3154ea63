//! Whether a learning session may start (R2, R5, R11, R13, R14), as a pure decision over
//! facts the caller gathered. The refusal names the rule, for problem+json. Invariant: the
//! checks run in a fixed order (R14, R13, R5, R11, R2) so the same facts always give the
//! same refusal.

use super::ids::SessionId;
use super::profile::{OnConcurrent, Profile};
use super::rules::r5_sequential_lessons as r5;
use super::time::{DAY, Millis};
use super::verdict::RuleId;

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
    #[error(
        "another subsidised training of this learner is not examined, or was examined less than {cooldown_days} days before this enrolment"
    )]
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

impl Refusal {
    /// The rule that refused, as its stable code (`R5_sequential_lessons`, …), for the
    /// problem+json `rule` member. R11, R13 and R14 are class-level rules with no [`RuleId`].
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::OutOfOrder { .. } => RuleId::R5SequentialLessons.code(),
            Refusal::RetrainingCooldown { .. } => "R11_retraining_cooldown",
            Refusal::ConcurrentSession { .. } => RuleId::R2SingleWindow.code(),
            Refusal::ContentNotApproved => "R13_approved_content",
            Refusal::PlatformNotInStanding => "R14_platform_standing",
        }
    }
}

/// Decides whether the session may start. Checks R14, R13, R5, R11, then R2, in that order.
pub fn admit(facts: &AdmissionFacts<'_>) -> Result<Admitted, Refusal> {
    let p = &facts.platform;
    if !p.registered || p.banned_since.is_some_and(|b| b <= facts.now) {
        return Err(Refusal::PlatformNotInStanding);
    }
    if !facts.content_approved {
        return Err(Refusal::ContentNotApproved);
    }
    let missing = r5::missing_before(facts.lesson_position, facts.completed_positions);
    if !missing.is_empty() {
        return Err(Refusal::OutOfOrder {
            position: facts.lesson_position,
            missing,
        });
    }
    let cooldown_days = facts.profile.enrolment.retraining_cooldown_days;
    let cooldown_ms = i64::from(cooldown_days) * DAY;
    let blocked = facts.other_enrolments.iter().any(|o| {
        o.enrolled_at < facts.enrolled_at
            && match o.examined_at {
                None => true,
                Some(ex) => facts.enrolled_at.0 - ex.0 < cooldown_ms,
            }
    });
    if blocked {
        return Err(Refusal::RetrainingCooldown { cooldown_days });
    }
    match (
        &facts.lease_holder,
        facts.profile.single_window.on_concurrent,
    ) {
        (None, OnConcurrent::Refuse | OnConcurrent::Supersede) => Ok(Admitted::Start),
        (Some(holder), OnConcurrent::Refuse) => Err(Refusal::ConcurrentSession {
            holder: holder.clone(),
        }),
        (Some(holder), OnConcurrent::Supersede) => Ok(Admitted::StartSuperseding(holder.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::DEFAULT_PROFILE;

    fn profile() -> Profile {
        Profile::latest(DEFAULT_PROFILE).expect("default profile")
    }

    fn facts<'a>(
        p: &'a Profile,
        completed: &'a [u32],
        others: &'a [OtherEnrolment],
    ) -> AdmissionFacts<'a> {
        AdmissionFacts {
            profile: p,
            now: Millis(100 * DAY),
            enrolled_at: Millis(90 * DAY),
            lesson_position: 3,
            completed_positions: completed,
            content_approved: true,
            platform: PlatformStanding {
                registered: true,
                banned_since: None,
            },
            other_enrolments: others,
            lease_holder: None,
        }
    }

    #[test]
    fn an_eligible_learner_starts() {
        let p = profile();
        assert_eq!(admit(&facts(&p, &[1, 2], &[])), Ok(Admitted::Start));
    }

    #[test]
    fn r14_unregistered_or_banned_platform_is_refused() {
        let p = profile();
        let mut f = facts(&p, &[1, 2], &[]);
        f.platform.registered = false;
        assert_eq!(admit(&f), Err(Refusal::PlatformNotInStanding));
        f.platform = PlatformStanding {
            registered: true,
            banned_since: Some(f.now),
        };
        assert_eq!(
            admit(&f).map_err(|r| r.rule()),
            Err("R14_platform_standing")
        );
        f.platform.banned_since = Some(f.now.plus(1));
        assert_eq!(
            admit(&f),
            Ok(Admitted::Start),
            "a ban from tomorrow does not apply yet"
        );
    }

    #[test]
    fn r13_unapproved_content_is_refused() {
        let p = profile();
        let mut f = facts(&p, &[], &[]);
        f.content_approved = false;
        // R13 is checked before R5 (lesson 3 without 1, 2 would also be refused).
        assert_eq!(admit(&f), Err(Refusal::ContentNotApproved));
        assert_eq!(Refusal::ContentNotApproved.rule(), "R13_approved_content");
    }

    #[test]
    fn r5_missing_earlier_lessons_are_named() {
        let p = profile();
        let err = admit(&facts(&p, &[2], &[])).expect_err("lesson 1 is missing");
        assert_eq!(
            err,
            Refusal::OutOfOrder {
                position: 3,
                missing: vec![1]
            }
        );
        assert_eq!(err.rule(), "R5_sequential_lessons");
    }

    #[test]
    fn r11_unexamined_or_recent_training_blocks() {
        let p = profile();
        let unexamined = [OtherEnrolment {
            enrolled_at: Millis(10 * DAY),
            examined_at: None,
        }];
        let err = admit(&facts(&p, &[1, 2], &unexamined)).expect_err("unexamined");
        assert_eq!(err, Refusal::RetrainingCooldown { cooldown_days: 30 });
        assert_eq!(err.rule(), "R11_retraining_cooldown");
        let recent = [OtherEnrolment {
            enrolled_at: Millis(10 * DAY),
            examined_at: Some(Millis(61 * DAY)),
        }];
        assert!(
            admit(&facts(&p, &[1, 2], &recent)).is_err(),
            "29 days before"
        );
        let old = [OtherEnrolment {
            enrolled_at: Millis(10 * DAY),
            examined_at: Some(Millis(60 * DAY)),
        }];
        assert_eq!(
            admit(&facts(&p, &[1, 2], &old)),
            Ok(Admitted::Start),
            "exactly 30 days before"
        );
        let later = [OtherEnrolment {
            enrolled_at: Millis(95 * DAY),
            examined_at: None,
        }];
        assert_eq!(
            admit(&facts(&p, &[1, 2], &later)),
            Ok(Admitted::Start),
            "only earlier enrolments block"
        );
    }

    #[test]
    fn r2_lease_holder_refused_or_superseded_per_profile() {
        let mut p = profile();
        let mut f = facts(&p, &[1, 2], &[]);
        f.lease_holder = Some(SessionId::from("s-old"));
        let err = admit(&f).expect_err("refuse");
        assert_eq!(
            err,
            Refusal::ConcurrentSession {
                holder: SessionId::from("s-old")
            }
        );
        assert_eq!(err.rule(), "R2_single_window");
        p.single_window.on_concurrent = OnConcurrent::Supersede;
        let mut f = facts(&p, &[1, 2], &[]);
        f.lease_holder = Some(SessionId::from("s-old"));
        assert_eq!(
            admit(&f),
            Ok(Admitted::StartSuperseding(SessionId::from("s-old")))
        );
    }
}
