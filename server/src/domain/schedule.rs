//! When the server issues challenges (R3 pop-ups, R6 snapshots, R4 face re-checks). Pure: the
//! caller supplies the random draws (uniform u64s from its RNG) and the current server time;
//! the caller appends what is due to the log. Invariant: thresholds are measured in credited
//! time, drawn uniformly within the profile's bounds, and nothing is due before the session
//! started, after it ended, or (pop-ups, face re-checks) before a passed face check.

use super::events::ChallengeKind;
use super::profile::Profile;
use super::session::SessionFold;
use super::time::Millis;

/// 课时 windows of snapshot points kept drawn ahead of the session's credited time.
const HOURS_AHEAD: i64 = 2;

/// The worker-side random plan for one session. Not part of the log (the challenges it
/// causes are), so a new worker may draw a new plan after a crash without changing verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengePlan {
    /// Issue the next pop-up when credit since the last confirmed pop-up reaches this.
    pub popup_after_credit_ms: i64,
    /// Issue a snapshot request when total credited time reaches each of these (sorted,
    /// `snapshots.per_lesson_hour` uniform points inside each 课时 window of credited time).
    pub snapshot_at_credit_ms: Vec<i64>,
    /// Issue a face re-check when credit since the last passed face check reaches this.
    pub face_recheck_after_credit_ms: i64,
    /// 课时 windows `[0, snapshot_hours_drawn)` already have their points drawn.
    pub snapshot_hours_drawn: i64,
}

/// A uniform draw in `[lo, hi]` (inclusive) from a uniform u64.
fn uniform(lo: i64, hi: i64, draw: &mut dyn FnMut() -> u64) -> i64 {
    if hi <= lo {
        return lo;
    }
    let span = u64::try_from(hi - lo).unwrap_or(u64::MAX).saturating_add(1);
    lo + i64::try_from(draw() % span).unwrap_or(0)
}

impl ChallengePlan {
    /// Draws a fresh plan. `draw` yields uniform random u64s.
    pub fn draw(profile: &Profile, draw: &mut dyn FnMut() -> u64) -> ChallengePlan {
        let mut plan = ChallengePlan {
            popup_after_credit_ms: uniform(
                profile.popup.min_delay_ms,
                profile.popup.max_delay_ms,
                draw,
            ),
            snapshot_at_credit_ms: Vec::new(),
            face_recheck_after_credit_ms: uniform(
                profile.face.recheck_min_ms,
                profile.face.recheck_max_ms,
                draw,
            ),
            snapshot_hours_drawn: 0,
        };
        plan.draw_snapshot_hours(profile, 0, draw);
        plan
    }

    /// Keeps snapshot points drawn for the 课时 holding `credited_ms` and the next one.
    fn draw_snapshot_hours(
        &mut self,
        profile: &Profile,
        credited_ms: i64,
        draw: &mut dyn FnMut() -> u64,
    ) {
        let hour = profile.lesson_hour_ms();
        let want = credited_ms / hour + HOURS_AHEAD;
        while self.snapshot_hours_drawn < want {
            let h = self.snapshot_hours_drawn;
            let mut points: Vec<i64> = (0..profile.snapshots.per_lesson_hour)
                .map(|_| uniform(h * hour, (h + 1) * hour - 1, draw))
                .collect();
            points.sort_unstable();
            self.snapshot_at_credit_ms.extend(points);
            self.snapshot_hours_drawn += 1;
        }
    }

    /// Re-draws the part of the plan for `kind` after the caller issued one: a new pop-up or
    /// face re-check threshold (measured from the next confirmation / pass, which resets the
    /// fold's counter), or drops the snapshot points reached and draws further 课时.
    pub fn after_issue(
        &mut self,
        kind: ChallengeKind,
        fold: &SessionFold,
        draw: &mut dyn FnMut() -> u64,
    ) {
        let profile = fold.profile();
        match kind {
            ChallengeKind::Popup => {
                self.popup_after_credit_ms =
                    uniform(profile.popup.min_delay_ms, profile.popup.max_delay_ms, draw);
            }
            ChallengeKind::FaceRecheck => {
                self.face_recheck_after_credit_ms = uniform(
                    profile.face.recheck_min_ms,
                    profile.face.recheck_max_ms,
                    draw,
                );
            }
            ChallengeKind::Snapshot => {
                let credited = fold.credited_ms();
                // One request per reached point: drop the first reached one only, so two
                // points passed at once still yield two requests.
                if let Some(i) = self
                    .snapshot_at_credit_ms
                    .iter()
                    .position(|&p| p <= credited)
                {
                    self.snapshot_at_credit_ms.remove(i);
                }
                self.draw_snapshot_hours(profile, credited, draw);
            }
        }
    }
}

/// The challenges due now, given the fold state. The caller issues each (appending
/// `ChallengeIssued` with a fresh nonce and `deadline = now + deadline_ms(kind)`), and
/// re-draws the relevant part of the plan with [`ChallengePlan::after_issue`].
pub fn due(fold: &SessionFold, plan: &ChallengePlan, now: Millis) -> Vec<ChallengeKind> {
    let Some(started) = fold.started_at() else {
        return vec![];
    };
    if fold.ended() || now < started {
        return vec![];
    }
    let outstanding = fold.outstanding();
    let pending = |k: ChallengeKind| outstanding.iter().any(|o| o.kind == k);
    let mut kinds = Vec::new();
    if fold.face_passed()
        && !pending(ChallengeKind::Popup)
        && fold.credit_since_popup_ms() >= plan.popup_after_credit_ms
    {
        kinds.push(ChallengeKind::Popup);
    }
    if !pending(ChallengeKind::Snapshot)
        && plan
            .snapshot_at_credit_ms
            .first()
            .is_some_and(|&p| fold.credited_ms() >= p)
    {
        kinds.push(ChallengeKind::Snapshot);
    }
    if fold.face_passed()
        && !pending(ChallengeKind::FaceRecheck)
        && fold.credit_since_face_check_ms() >= plan.face_recheck_after_credit_ms
    {
        kinds.push(ChallengeKind::FaceRecheck);
    }
    kinds
}

/// Nonces of outstanding challenges whose deadline has passed at `now`: the caller appends
/// `ChallengeExpired` for each.
pub fn expired(fold: &SessionFold, now: Millis) -> Vec<String> {
    fold.outstanding()
        .into_iter()
        .filter(|o| o.deadline <= now)
        .map(|o| o.nonce)
        .collect()
}

/// The answer deadline for a kind of challenge under a profile.
pub fn deadline_ms(profile: &Profile, kind: ChallengeKind) -> i64 {
    match kind {
        ChallengeKind::Popup => profile.popup.answer_deadline_ms,
        ChallengeKind::Snapshot => profile.snapshots.answer_deadline_ms,
        ChallengeKind::FaceRecheck => profile.face.recheck_deadline_ms,
    }
}
