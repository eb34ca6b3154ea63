//! The per-session state machine: a deterministic fold of a session's event log under its
//! policy profile. PLACEHOLDER BODY: the full fold is being written (see rules/).

use super::events::{ChallengeKind, Event};
use super::ids::{LearnerId, LessonId, SessionId};
use super::profile::Profile;
use super::time::Millis;
use super::verdict::SessionVerdict;

/// What the fold needs to know besides the log: fixed when the session is created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionContext {
    pub session_id: SessionId,
    pub learner_id: LearnerId,
    pub lesson_id: LessonId,
    pub lesson_duration_ms: i64,
    /// Video already covered by this learner's earlier sessions of the lesson (merged ms
    /// intervals): re-watching it earns nothing.
    pub prior_coverage: Vec<[i64; 2]>,
}

/// What `apply` did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Folded.
    Applied,
    /// Already folded (same `(origin, seq)`); nothing changed.
    Duplicate,
    /// Sorts before the last folded event: the caller must re-fold the whole log
    /// (`SessionFold::replay`) with this event included. Nothing changed.
    OutOfOrder,
}

/// A challenge that was issued and is neither answered nor expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    pub nonce: String,
    pub kind: ChallengeKind,
    pub issued_at: Millis,
    pub deadline: Millis,
    pub expected: Option<String>,
}

/// The fold state of one session.
#[derive(Debug, Clone)]
pub struct SessionFold {
    profile: Profile,
    ctx: SessionContext,
}

impl SessionFold {
    pub fn new(profile: Profile, ctx: SessionContext) -> Self {
        SessionFold { profile, ctx }
    }

    pub fn apply(&mut self, _event: &Event) -> Applied {
        Applied::Applied
    }

    pub fn replay(profile: Profile, ctx: SessionContext, events: impl IntoIterator<Item = Event>) -> SessionVerdict {
        let mut fold = SessionFold::new(profile, ctx);
        for e in events {
            fold.apply(&e);
        }
        fold.verdict()
    }

    pub fn verdict(&self) -> SessionVerdict {
        SessionVerdict {
            session_id: self.ctx.session_id.clone(),
            learner_id: self.ctx.learner_id.clone(),
            lesson_id: self.ctx.lesson_id.clone(),
            profile: self.profile.reference(),
            started_at: Millis(0),
            last_event_at: Millis(0),
            ended: false,
            termination: None,
            wall_ms: 0,
            credited_ms: 0,
            provisional_ms: 0,
            uncredited: vec![],
            coverage: vec![],
            lesson_coverage_ms: 0,
            lesson_duration_ms: self.ctx.lesson_duration_ms,
            lesson_complete: false,
            timeline: vec![],
            rules: vec![],
            challenges: vec![],
            face_checks: vec![],
            snapshots: vec![],
            signals: vec![],
            flagged_for_review: false,
            counts: false,
            events_folded: 0,
            reviewed_by: vec![],
        }
    }

    pub fn outstanding(&self) -> Vec<Outstanding> {
        vec![]
    }
    pub fn ended(&self) -> bool {
        false
    }
    pub fn credited_ms(&self) -> i64 {
        0
    }
    /// Credited (provisional) time since the last confirmed pop-up, or since the start.
    pub fn credit_since_popup_ms(&self) -> i64 {
        0
    }
    /// Credited time since the last passed face check.
    pub fn credit_since_face_check_ms(&self) -> i64 {
        0
    }
    pub fn face_passed(&self) -> bool {
        false
    }
    pub fn last_event_at(&self) -> Millis {
        Millis(0)
    }
    /// Highest sequence number folded for an origin (0 when none).
    pub fn last_seq(&self, _origin: super::events::Origin) -> u64 {
        0
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}
