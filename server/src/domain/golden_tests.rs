//! Golden (snapshot) tests: whole verdicts for scripted sessions and enrolments, reviewed by
//! eye and committed under `snapshots/`. Each also asserts its key numbers, so a wrong
//! snapshot cannot be accepted silently. Invariant: logs are built, never read from disk.

use super::enrolment::{EnrolmentInput, LessonInput, enrolment_verdict};
use super::events::{ChallengeKind, EventBody, FaceMethod, TerminationReason};
use super::ids::{EnrolmentId, LearnerId, LessonId, SessionId};
use super::test_support::{ANSWER, LogBuilder, T0, ctx, fold, henan, honest};
use super::time::MINUTE;
use super::verdict::{
    ChallengeOutcome, EnrolmentVerdict, Reason, RuleId, RuleStatus, SessionVerdict,
};

const LESSON: i64 = 10 * MINUTE;

fn enrolment_status(v: &EnrolmentVerdict, rule: RuleId) -> RuleStatus {
    v.rules
        .iter()
        .find(|r| r.rule == rule)
        .expect("every rule is reported")
        .status
}

fn uncredited(v: &SessionVerdict, reason: Reason) -> i64 {
    v.uncredited
        .iter()
        .find(|t| t.reason == reason)
        .map_or(0, |t| t.ms)
}

fn held_except(v: &SessionVerdict, violated: &[RuleId]) {
    for r in &v.rules {
        let want = match r.rule {
            RuleId::R5SequentialLessons | RuleId::R7OnlineShareCap | RuleId::R8LessonHourLength => {
                RuleStatus::NotApplicable
            }
            RuleId::R1NoFastForward
            | RuleId::R2SingleWindow
            | RuleId::R3PopupCheck
            | RuleId::R4FaceLiveness
            | RuleId::R6RandomSnapshots => {
                if violated.contains(&r.rule) {
                    RuleStatus::Violated
                } else {
                    RuleStatus::Held
                }
            }
        };
        assert_eq!(r.status, want, "{:?}", r.rule);
    }
}

#[test]
fn honest_learner() {
    let b = honest(T0, LESSON, &[100_000, 400_000]);
    let v = fold(ctx("s-honest", "lesson-1", LESSON), &b);
    assert_eq!(v.credited_ms, LESSON);
    assert!(v.lesson_complete && v.counts && !v.flagged_for_review);
    assert_eq!(v.coverage, vec![[0, LESSON]]);
    assert_eq!(v.snapshots.len(), 2);
    let popups: Vec<_> = v
        .challenges
        .iter()
        .filter(|c| c.kind == ChallengeKind::Popup)
        .collect();
    assert_eq!(popups.len(), 2);
    assert!(
        popups
            .iter()
            .all(|c| c.outcome == ChallengeOutcome::Confirmed && c.response_ms == Some(5_000))
    );
    // Pop-ups come after 210 s of heartbeat steps; each snapshot adds 1 s of playback: the
    // second pop-up is at video 422 s.
    assert_eq!(v.provisional_ms, LESSON - 422_000);
    // 2 s before playback, two 5 s pop-ups, two 1 s snapshot pauses are not pauses: playing.
    assert_eq!(uncredited(&v, Reason::FaceCheckRequired), 1_000);
    assert_eq!(uncredited(&v, Reason::PopupPending), 10_000);
    assert_eq!(v.wall_ms, v.credited_ms + 12_000);
    held_except(&v, &[]);
    insta::assert_json_snapshot!("session_honest", v);
}

#[test]
fn playback_at_double_speed() {
    let mut b = LogBuilder::opening(T0);
    b.watch(60_000, LESSON);
    b.rate = 2000;
    let p = b.pos;
    b.client(EventBody::RateChanged {
        position_ms: p,
        rate_permille: 2000,
    });
    b.watch(60_000, LESSON);
    b.rate = 1000;
    let p = b.pos;
    b.client(EventBody::RateChanged {
        position_ms: p,
        rate_permille: 1000,
    });
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-2x", "lesson-1", LESSON), &b);
    assert_eq!(v.credited_ms, 120_000, "only the 1.0× minutes count");
    assert_eq!(uncredited(&v, Reason::PlaybackRate), 60_000);
    assert_eq!(
        v.coverage,
        vec![[0, 60_000], [180_000, 240_000]],
        "video played at 2× is not covered"
    );
    assert!(!v.lesson_complete);
    held_except(&v, &[RuleId::R1NoFastForward]);
    let r1 = &v.rules[0];
    assert_eq!(r1.findings.len(), 1);
    assert_eq!(r1.findings[0].code, Reason::PlaybackRate);
    insta::assert_json_snapshot!("session_double_speed", v);
}

#[test]
fn forward_seek_jump() {
    let mut b = LogBuilder::opening(T0);
    b.watch(60_000, LESSON);
    b.client(EventBody::Seeked {
        from_ms: 60_000,
        to_ms: 400_000,
    });
    b.pos = 400_000;
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-seek", "lesson-1", LESSON), &b);
    assert_eq!(v.credited_ms, 120_000);
    assert_eq!(
        v.coverage,
        vec![[0, 60_000], [400_000, 460_000]],
        "the skipped video earns nothing"
    );
    held_except(&v, &[RuleId::R1NoFastForward]);
    assert_eq!(v.rules[0].findings[0].code, Reason::ForwardSeek);
    insta::assert_json_snapshot!("session_forward_seek", v);
}

#[test]
fn positions_faster_than_time() {
    let mut b = LogBuilder::opening(T0);
    b.watch(60_000, LESSON);
    for _ in 0..6 {
        // 5 s of server time, 10 s of claimed video, at a claimed 1.0×.
        b.t += 5_000;
        b.pos += 10_000;
        b.heartbeat();
    }
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-fast", "lesson-1", LESSON), &b);
    assert_eq!(v.credited_ms, 120_000);
    assert_eq!(uncredited(&v, Reason::FastForward), 30_000);
    assert_eq!(v.coverage, vec![[0, 60_000], [120_000, 180_000]]);
    held_except(&v, &[RuleId::R1NoFastForward]);
    assert_eq!(v.rules[0].findings.len(), 6);
    insta::assert_json_snapshot!("session_fast_positions", v);
}

#[test]
fn hidden_tab_while_playing() {
    let mut b = LogBuilder::opening(T0);
    b.watch(60_000, LESSON);
    b.visible = false;
    let p = b.pos;
    b.client(EventBody::VisibilityChanged {
        visible: false,
        position_ms: p,
    });
    b.watch(30_000, LESSON);
    b.visible = true;
    let p = b.pos;
    b.client(EventBody::VisibilityChanged {
        visible: true,
        position_ms: p,
    });
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-hidden", "lesson-1", LESSON), &b);
    assert_eq!(v.credited_ms, 120_000);
    assert_eq!(uncredited(&v, Reason::PageHidden), 30_000);
    assert_eq!(
        v.coverage,
        vec![[0, 60_000], [90_000, 150_000]],
        "video played in a hidden tab is not covered"
    );
    held_except(&v, &[]);
    assert_eq!(v.rules[1].findings[0].code, Reason::PageHidden);
    insta::assert_json_snapshot!("session_hidden_tab", v);
}

#[test]
fn second_concurrent_session() {
    let mut b = LogBuilder::opening(T0);
    b.watch(60_000, LESSON);
    b.server(EventBody::ConcurrentSessionRefused {
        other_session: SessionId::from("s-second-window"),
    });
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-concurrent", "lesson-1", LESSON), &b);
    assert_eq!(
        v.credited_ms, 120_000,
        "the refused window earns nothing; this one is unaffected"
    );
    held_except(&v, &[RuleId::R2SingleWindow]);
    assert_eq!(v.rules[1].findings[0].code, Reason::ConcurrentSession);
    insta::assert_json_snapshot!("session_concurrent", v);
}

fn away_at_popup(answer: Option<i64>) -> SessionVerdict {
    let mut b = LogBuilder::opening(T0);
    b.popup_every = None;
    b.watch(100_000, LESSON);
    let n = b.issue(ChallengeKind::Popup, 60_000);
    b.pause();
    match answer {
        None => {
            b.wait(60_000);
            b.server(EventBody::ChallengeExpired { nonce: n });
        }
        Some(after) => {
            b.wait(after);
            b.answer(&n, ANSWER);
        }
    }
    b.play().watch(60_000, LESSON).end(TerminationReason::Ended);
    fold(ctx("s-popup", "lesson-1", LESSON), &b)
}

#[test]
fn missed_popup_voids_time_since_last_confirmation() {
    let v = away_at_popup(None);
    assert_eq!(uncredited(&v, Reason::PopupMissed), 100_000);
    assert_eq!(uncredited(&v, Reason::PopupPending), 60_000);
    assert_eq!(
        v.credited_ms, 60_000,
        "only the time after the miss, kept at a clean end"
    );
    assert_eq!(v.provisional_ms, 60_000);
    assert_eq!(v.challenges[0].outcome, ChallengeOutcome::Missed);
    assert_eq!(
        v.coverage,
        vec![[0, 160_000]],
        "the video was watched; it just earns nothing"
    );
    held_except(&v, &[RuleId::R3PopupCheck]);
    insta::assert_json_snapshot!("session_missed_popup", v);
}

#[test]
fn late_popup_answer_is_a_miss() {
    let v = away_at_popup(Some(65_000));
    assert_eq!(uncredited(&v, Reason::PopupMissed), 100_000);
    assert_eq!(uncredited(&v, Reason::PopupPending), 65_000);
    assert_eq!(v.credited_ms, 60_000);
    assert_eq!(v.challenges[0].outcome, ChallengeOutcome::Missed);
    assert_eq!(v.challenges[0].response_ms, Some(65_000));
    held_except(&v, &[RuleId::R3PopupCheck]);
    insta::assert_json_snapshot!("session_late_popup", v);
}

#[test]
fn failed_face_check_then_passed() {
    let mut b = LogBuilder::new(T0);
    b.start()
        .wait(1_000)
        .face(false, FaceMethod::Face, None)
        .wait(1_000)
        .play();
    b.watch(30_000, LESSON);
    b.face(true, FaceMethod::Manual, None);
    b.watch(60_000, LESSON).end(TerminationReason::Ended);
    let v = fold(ctx("s-face", "lesson-1", LESSON), &b);
    assert_eq!(uncredited(&v, Reason::FaceCheckRequired), 1_000);
    assert_eq!(uncredited(&v, Reason::FaceCheckFailed), 31_000);
    assert_eq!(v.credited_ms, 60_000);
    assert_eq!(v.coverage, vec![[30_000, 90_000]]);
    assert!(v.flagged_for_review);
    assert_eq!(v.face_checks.len(), 2);
    held_except(&v, &[RuleId::R4FaceLiveness]);
    let first_credit = v
        .timeline
        .iter()
        .find(|s| s.credited)
        .expect("some credit")
        .from;
    assert_eq!(first_credit, v.face_checks[1].at);
    insta::assert_json_snapshot!("session_face_fail_then_pass", v);
}

// ----- enrolment level -----

fn lesson(position: u32, duration_ms: i64, sessions: Vec<SessionVerdict>) -> LessonInput {
    LessonInput {
        lesson_id: LessonId::from(format!("lesson-{position}").as_str()),
        position,
        duration_ms,
        sessions,
    }
}

fn input(total: u32, online: u32, lessons: Vec<LessonInput>) -> EnrolmentInput {
    EnrolmentInput {
        enrolment_id: EnrolmentId::from("enrolment-1"),
        learner_id: LearnerId::from("learner-1"),
        planned_total_hours: total,
        planned_online_hours: online,
        lessons,
    }
}

/// An honest session of lesson `k` (`duration` long) starting at `t0`, snapshots at 1/4, 3/4.
fn honest_session(k: u32, t0: i64, duration: i64) -> SessionVerdict {
    let b = honest(t0, duration, &[duration / 4, duration * 3 / 4]);
    fold(
        ctx(&format!("s-{k}-{t0}"), &format!("lesson-{k}"), duration),
        &b,
    )
}

#[test]
fn lesson_started_out_of_order() {
    let hour = 60 * MINUTE;
    // Lesson 2 is watched first; lesson 1 afterwards.
    let two = honest_session(2, T0, LESSON);
    let one = honest_session(1, T0 + hour, LESSON);
    assert!(two.counts && one.counts, "each session is fine on its own");
    let v = enrolment_verdict(
        &henan(),
        &input(
            10,
            4,
            vec![lesson(1, LESSON, vec![one]), lesson(2, LESSON, vec![two])],
        ),
    );
    assert_eq!(
        enrolment_status(&v, RuleId::R5SequentialLessons),
        RuleStatus::Violated
    );
    assert_eq!(v.lessons[1].session_credited_ms, LESSON);
    assert_eq!(v.lessons[1].credited_ms, 0);
    assert_eq!(v.credited_ms, LESSON);
    assert_eq!(
        v.uncredited
            .iter()
            .find(|t| t.reason == Reason::OutOfOrder)
            .map(|t| t.ms),
        Some(LESSON)
    );
    assert_eq!(v.lesson_hours, 0);
    assert!(
        !v.lessons[1].complete,
        "watching out of order completes nothing"
    );
    assert!(!v.all_lessons_complete && !v.counts);
    insta::assert_json_snapshot!("enrolment_out_of_order", v);
}

#[test]
fn online_cap_reached() {
    let hour_ms = henan().lesson_hour_ms();
    let lessons: Vec<LessonInput> = (1..=5)
        .map(|k| {
            lesson(
                k,
                hour_ms,
                vec![honest_session(k, T0 + i64::from(k) * 2 * hour_ms, hour_ms)],
            )
        })
        .collect();
    let v = enrolment_verdict(&henan(), &input(10, 4, lessons));
    assert_eq!(v.online_cap_hours, Some(4));
    assert_eq!(v.lesson_hour_records.len(), 5);
    assert!(
        v.lesson_hour_records
            .iter()
            .all(|r| r.snapshot_ids.len() == 2)
    );
    assert_eq!(v.lesson_hours, 4);
    assert_eq!(
        v.lesson_hour_records[4].reason,
        Some(Reason::OnlineCapReached)
    );
    assert_eq!(v.online_share_permille, 400);
    assert_eq!(
        enrolment_status(&v, RuleId::R7OnlineShareCap),
        RuleStatus::Held,
        "the plan is within the cap"
    );
    assert_eq!(v.rules[6].findings.len(), 1);
    assert!(v.counts);
    let over = enrolment_verdict(&henan(), &input(10, 5, vec![]));
    assert_eq!(
        enrolment_status(&over, RuleId::R7OnlineShareCap),
        RuleStatus::Violated,
        "a plan above the cap"
    );
    insta::assert_json_snapshot!("enrolment_online_cap", v);
}

#[test]
fn thirty_nine_minute_remainder_is_not_a_lesson_hour() {
    let hour_ms = henan().lesson_hour_ms();
    let short = 39 * MINUTE;
    let one = honest_session(1, T0, hour_ms);
    let two = honest_session(2, T0 + 2 * hour_ms, short);
    let v = enrolment_verdict(
        &henan(),
        &input(
            10,
            4,
            vec![lesson(1, hour_ms, vec![one]), lesson(2, short, vec![two])],
        ),
    );
    assert_eq!(v.credited_ms, hour_ms + short);
    assert_eq!(v.lesson_hours, 1);
    assert_eq!(v.lesson_hour_records.len(), 1);
    assert_eq!(
        v.uncredited
            .iter()
            .find(|t| t.reason == Reason::IncompleteLessonHour)
            .map(|t| t.ms),
        Some(short)
    );
    assert_eq!(v.rules[7].findings[0].code, Reason::IncompleteLessonHour);
    assert!(v.counts);
    let alone = enrolment_verdict(
        &henan(),
        &input(
            10,
            4,
            vec![lesson(1, short, vec![honest_session(1, T0, short)])],
        ),
    );
    assert_eq!(alone.lesson_hours, 0, "39 minutes give no 课时");
    assert!(!alone.counts);
    insta::assert_json_snapshot!("enrolment_39_minute_remainder", v);
}
