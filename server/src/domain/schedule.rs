//! When the server issues challenges. Pure: the caller supplies the random draws (uniform
//! u64s from its RNG) and the current server time; the caller appends what is due to the log.
//! PLACEHOLDER BODY: the full scheduler is being written.

use super::events::ChallengeKind;
use super::profile::Profile;
use super::session::SessionFold;
use super::time::Millis;

/// The worker-side random plan for one session. Not part of the log (the challenges it
/// causes are), so a new worker may draw a new plan after a crash without changing verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengePlan {
    /// Issue the next pop-up when credit since the last confirmed pop-up reaches this.
    pub popup_after_credit_ms: i64,
    /// Issue a snapshot request when total credited time reaches each of these.
    pub snapshot_at_credit_ms: Vec<i64>,
    /// Issue a face re-check when credit since the last passed face check reaches this.
    pub face_recheck_after_credit_ms: i64,
}

impl ChallengePlan {
    /// Draws a fresh plan. `draw` yields uniform random u64s.
    pub fn draw(profile: &Profile, _draw: &mut dyn FnMut() -> u64) -> ChallengePlan {
        ChallengePlan {
            popup_after_credit_ms: profile.popup.min_delay_ms,
            snapshot_at_credit_ms: vec![],
            face_recheck_after_credit_ms: profile.face.recheck_min_ms,
        }
    }
}

/// The challenges due now, given the fold state. The caller issues each (appending
/// `ChallengeIssued` with a fresh nonce and `deadline = now + deadline_ms(kind)`), and
/// re-draws the relevant part of the plan with [`ChallengePlan::after_issue`].
pub fn due(_fold: &SessionFold, _plan: &ChallengePlan, _now: Millis) -> Vec<ChallengeKind> {
    vec![]
}

/// Nonces of outstanding challenges whose deadline has passed at `now`: the caller appends
/// `ChallengeExpired` for each.
pub fn expired(fold: &SessionFold, now: Millis) -> Vec<String> {
    fold.outstanding().into_iter().filter(|o| o.deadline <= now).map(|o| o.nonce).collect()
}

/// The answer deadline for a kind of challenge under a profile.
pub fn deadline_ms(profile: &Profile, kind: ChallengeKind) -> i64 {
    match kind {
        ChallengeKind::Popup => profile.popup.answer_deadline_ms,
        ChallengeKind::Snapshot => profile.snapshots.answer_deadline_ms,
        ChallengeKind::FaceRecheck => profile.face.recheck_deadline_ms,
    }
}

impl ChallengePlan {
    /// Re-draws the part of the plan that `kind` used, after a challenge of that kind.
    pub fn after_issue(&mut self, _kind: ChallengeKind, _fold: &SessionFold, _draw: &mut dyn FnMut() -> u64) {}
}
