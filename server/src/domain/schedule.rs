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
    /// Credited time of the enrolment before this session, modulo one 课时: the 课时 grid
    /// is the enrolment's (R6, R8), so window k of this session's credit is
    /// `[max(0, k·hour − offset), (k+1)·hour − offset)`.
    pub lesson_hour_offset_ms: i64,
    /// Snapshots the first (already started) 课时 still needs.
    pub first_hour_needs: u32,
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
    /// Draws a fresh plan for a learner's first credited time (the 课时 grid starts with this
    /// session). `draw` yields uniform random u64s.
    pub fn draw(profile: &Profile, draw: &mut dyn FnMut() -> u64) -> ChallengePlan {
        Self::draw_continuing(profile, 0, 0, draw)
    }

    /// Draws a fresh plan for a session that continues an enrolment: `enrolment_credited_ms`
    /// is the credited time of the learner's earlier sessions in the class and
    /// `snapshots_in_current_hour` the snapshots already taken inside the 课时 it falls in, so
    /// that each 课时 of the enrolment gets its `snapshots.per_lesson_hour` snapshots even when
    /// sessions are shorter than a 课时.
    pub fn draw_continuing(
        profile: &Profile,
        enrolment_credited_ms: i64,
        snapshots_in_current_hour: u32,
        draw: &mut dyn FnMut() -> u64,
    ) -> ChallengePlan {
        let offset = enrolment_credited_ms.max(0) % profile.lesson_hour_ms();
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
            lesson_hour_offset_ms: offset,
            first_hour_needs: profile
                .snapshots
                .per_lesson_hour
                .saturating_sub(snapshots_in_current_hour),
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
        let offset = self.lesson_hour_offset_ms;
        let want = (credited_ms + offset) / hour + HOURS_AHEAD;
        while self.snapshot_hours_drawn < want {
            let h = self.snapshot_hours_drawn;
            let (lo, hi) = ((h * hour - offset).max(0), (h + 1) * hour - offset - 1);
            let n = if h == 0 {
                self.first_hour_needs
            } else {
                profile.snapshots.per_lesson_hour
            };
            let mut points: Vec<i64> = (0..n).map(|_| uniform(lo, hi, draw)).collect();
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
            // Asked for by the client, never planned.
            ChallengeKind::Liveness => {}
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
        ChallengeKind::Liveness => profile
            .face
            .active_challenge
            .as_ref()
            .map_or(profile.face.recheck_deadline_ms, |a| a.deadline_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{EventBody, FaceMethod, TerminationReason};
    use crate::domain::session::Applied;
    use crate::domain::test_support::{ANSWER, LogBuilder, T0, ctx, henan};
    use crate::domain::time::MINUTE;
    use crate::domain::verdict::{ChallengeOutcome, Reason};

    /// A tiny deterministic xorshift, standing in for the worker's RNG.
    fn rng(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn draws_stay_within_the_profile_bounds() {
        let p = henan();
        let hour = p.lesson_hour_ms();
        for seed in 1..500_u64 {
            let mut draw = rng(seed * 7919);
            let plan = ChallengePlan::draw(&p, &mut draw);
            assert!(
                (p.popup.min_delay_ms..=p.popup.max_delay_ms).contains(&plan.popup_after_credit_ms)
            );
            assert!(
                (p.face.recheck_min_ms..=p.face.recheck_max_ms)
                    .contains(&plan.face_recheck_after_credit_ms)
            );
            assert_eq!(
                plan.snapshot_at_credit_ms.len(),
                2 * 2,
                "two 课时 ahead, two points each"
            );
            assert!(
                plan.snapshot_at_credit_ms.windows(2).all(|w| w[0] <= w[1]),
                "sorted"
            );
            for (i, point) in plan.snapshot_at_credit_ms.iter().enumerate() {
                let h = i64::try_from(i).expect("small") / 2;
                assert!(
                    (h * hour..(h + 1) * hour).contains(point),
                    "point {point} in 课时 {h}"
                );
            }
        }
        // The draws are spread, not constant.
        let mut draw = rng(42);
        let thresholds: Vec<i64> = (0..50)
            .map(|_| ChallengePlan::draw(&p, &mut draw).popup_after_credit_ms)
            .collect();
        assert!(thresholds.iter().min() < thresholds.iter().max());
    }

    #[test]
    fn a_continuing_session_follows_the_enrolments_lesson_hour_grid() {
        let p = henan();
        let hour = p.lesson_hour_ms();
        for seed in 1..200_u64 {
            let mut draw = rng(seed * 104_729);
            // 30 minutes of the current 课时 already earned, one snapshot already taken.
            let plan = ChallengePlan::draw_continuing(&p, 3 * hour + 30 * MINUTE, 1, &mut draw);
            let points = &plan.snapshot_at_credit_ms;
            assert_eq!(
                points.len(),
                1 + 2,
                "one more for this 课时, two for the next"
            );
            assert!(
                points[0] < 10 * MINUTE,
                "inside the 10 minutes left of this 课时"
            );
            assert!(
                points[1..]
                    .iter()
                    .all(|p| (10 * MINUTE..50 * MINUTE).contains(p))
            );
        }
    }

    #[test]
    fn nothing_is_due_before_start_after_end_or_before_a_face_pass() {
        let p = henan();
        let mut plan = ChallengePlan::draw(&p, &mut rng(3));
        plan.popup_after_credit_ms = 0;
        plan.face_recheck_after_credit_ms = 0;
        plan.snapshot_at_credit_ms = vec![0];
        let fold = |b: &LogBuilder| {
            SessionFold::refold(henan(), ctx("s", "l", 10 * MINUTE), b.events.clone())
        };
        let b = LogBuilder::new(T0);
        assert!(due(&fold(&b), &plan, Millis(T0)).is_empty(), "not started");
        let mut b = LogBuilder::new(T0);
        b.start();
        assert_eq!(
            due(&fold(&b), &plan, Millis(T0)),
            vec![ChallengeKind::Snapshot],
            "no pop-up or re-check before a face pass"
        );
        b.face(true, FaceMethod::Face, None);
        let all = vec![
            ChallengeKind::Popup,
            ChallengeKind::Snapshot,
            ChallengeKind::FaceRecheck,
        ];
        assert_eq!(due(&fold(&b), &plan, Millis(T0)), all);
        b.issue(ChallengeKind::Popup, 60_000);
        assert_eq!(
            due(&fold(&b), &plan, Millis(T0)),
            vec![ChallengeKind::Snapshot, ChallengeKind::FaceRecheck],
            "one pop-up at a time"
        );
        b.end(TerminationReason::Ended);
        assert!(due(&fold(&b), &plan, Millis(T0)).is_empty(), "ended");
    }

    #[test]
    fn after_issue_redraws_only_its_part() {
        let p = henan();
        let mut draw = rng(11);
        let plan = ChallengePlan::draw(&p, &mut draw);
        // Pop-ups answered every 210 s keep credit flowing past the 300 s gap.
        let mut b = LogBuilder::opening(T0);
        let first = plan.snapshot_at_credit_ms[0];
        b.watch(first + 5_000, 60 * MINUTE);
        let fold = SessionFold::refold(henan(), ctx("s", "l", 60 * MINUTE), b.events.clone());
        assert!(due(&fold, &plan, Millis(b.t)).contains(&ChallengeKind::Snapshot));
        let mut next = plan.clone();
        next.after_issue(ChallengeKind::Snapshot, &fold, &mut draw);
        assert_eq!(
            next.snapshot_at_credit_ms[0], plan.snapshot_at_credit_ms[1],
            "the reached point is used up"
        );
        assert_eq!(next.popup_after_credit_ms, plan.popup_after_credit_ms);
        let mut again = plan.clone();
        again.after_issue(ChallengeKind::Popup, &fold, &mut draw);
        assert_eq!(again.snapshot_at_credit_ms, plan.snapshot_at_credit_ms);
        assert!(
            (p.popup.min_delay_ms..=p.popup.max_delay_ms).contains(&again.popup_after_credit_ms)
        );
    }

    /// A worker loop over a 45-minute lesson: an honest learner answering whatever the
    /// scheduler issues earns the whole lesson, and R3 and R6 hold by construction.
    #[test]
    fn a_scheduled_honest_session_never_overruns_the_gap() {
        let p = henan();
        let duration = 45 * MINUTE;
        for seed in [1_u64, 77, 4242, 99_991] {
            let mut draw = rng(seed);
            let mut plan = ChallengePlan::draw(&p, &mut draw);
            let mut b = LogBuilder::opening(T0);
            b.popup_every = None;
            let mut fold =
                SessionFold::refold(p.clone(), ctx("s", "l", duration), b.events.clone());
            let mut folded = b.events.len();
            while b.pos < duration {
                b.watch(5_000, duration);
                for e in &b.events[folded..] {
                    assert_eq!(fold.apply(e), Applied::Applied);
                }
                folded = b.events.len();
                for kind in due(&fold, &plan, Millis(b.t)) {
                    // Stamp server events after the heartbeat just folded (same ms sorts
                    // server first), as the worker must.
                    let at = fold.next_server_at(Millis(b.t));
                    b.wait(at.0 - b.t);
                    let nonce = b.issue(kind, deadline_ms(&p, kind));
                    match kind {
                        ChallengeKind::Popup => {
                            b.pause().wait(4_000).answer(&nonce, ANSWER).play();
                        }
                        ChallengeKind::Snapshot => {
                            b.wait(500);
                            let snapshot_id = format!("img-{}", b.t);
                            b.server(EventBody::SnapshotStored {
                                nonce,
                                snapshot_id,
                                sha256: "cd".repeat(32),
                                analysis: None,
                            });
                        }
                        ChallengeKind::FaceRecheck | ChallengeKind::Liveness => {
                            b.wait(2_000).face(true, FaceMethod::Face, Some(nonce));
                        }
                    }
                    for e in &b.events[folded..] {
                        assert_eq!(fold.apply(e), Applied::Applied);
                    }
                    folded = b.events.len();
                    plan.after_issue(kind, &fold, &mut draw);
                }
            }
            b.end(TerminationReason::Completed);
            let v = SessionFold::replay(p.clone(), ctx("s", "l", duration), b.events.clone());
            assert_eq!(v.credited_ms, duration, "seed {seed}");
            assert!(
                v.uncredited
                    .iter()
                    .all(|t| t.reason != Reason::PopupOverdue),
                "seed {seed}"
            );
            assert!(
                v.challenges
                    .iter()
                    .all(|c| c.outcome == ChallengeOutcome::Confirmed),
                "seed {seed}"
            );
            assert!(
                v.snapshots.len() >= 2,
                "two snapshots in the first 课时 (seed {seed})"
            );
            assert!(
                v.challenges
                    .iter()
                    .any(|c| c.kind == ChallengeKind::FaceRecheck),
                "seed {seed}"
            );
        }
    }
}
