//! The enrolment fold: a learner's session verdicts across a course's ordered lessons,
//! cut into 课时 (R8), checked for snapshots per 课时 (R6), order (R5) and the class's
//! online share cap (R7). Invariant: every millisecond the sessions credited either ends up in
//! a counted 课时 or is listed in `uncredited` with its reason; the sessions' own uncredited
//! time is carried over, so the totals explain all of it.

use std::collections::BTreeMap;

use super::events::Origin;
use super::ids::{EnrolmentId, LearnerId, LessonId};
use super::profile::Profile;
use super::rules::r1_no_fast_forward as r1;
use super::rules::r5_sequential_lessons as r5;
use super::rules::r6_random_snapshots as r6;
use super::rules::r7_online_share_cap as r7;
use super::rules::r8_lesson_hour_length as r8;
use super::rules::{not_applicable, result};
use super::time::Millis;
use super::verdict::{
    EnrolmentVerdict, EventRef, Finding, LessonHourRecord, LessonVerdict, MakeUpRecord, Reason,
    ReasonTotal, RuleId, RuleResult, RuleStatus, SessionVerdict,
};

/// One lesson with this learner's session verdicts on it.
#[derive(Debug, Clone)]
pub struct LessonInput {
    pub lesson_id: LessonId,
    /// 1-based position in the course.
    pub position: u32,
    pub duration_ms: i64,
    pub sessions: Vec<SessionVerdict>,
}

/// Everything the enrolment verdict depends on.
#[derive(Debug, Clone)]
pub struct EnrolmentInput {
    pub enrolment_id: EnrolmentId,
    pub learner_id: LearnerId,
    pub planned_total_hours: u32,
    pub planned_online_hours: u32,
    pub lessons: Vec<LessonInput>,
}

/// A session rule aggregated over sessions: violated if any violated, held if any held.
fn aggregate(rule: RuleId, sessions: &[&SessionVerdict]) -> RuleResult {
    let mut status = RuleStatus::NotApplicable;
    let mut findings = Vec::new();
    for s in sessions {
        for r in s.rules.iter().filter(|r| r.rule == rule) {
            status = match (status, r.status) {
                (RuleStatus::Violated, _) | (_, RuleStatus::Violated) => RuleStatus::Violated,
                (RuleStatus::Held, _) | (_, RuleStatus::Held) => RuleStatus::Held,
                (RuleStatus::NotApplicable, RuleStatus::NotApplicable) => RuleStatus::NotApplicable,
            };
            findings.extend(r.findings.iter().cloned());
        }
    }
    RuleResult {
        rule,
        status,
        findings,
    }
}

/// R16: whether a make-up session counts yet: always when the profile asks for no review,
/// else once its effective decision (`reviewed_by`) confirms it with the profile's number of
/// signers.
fn make_up_verified(profile: &Profile, s: &SessionVerdict) -> bool {
    match &profile.make_up {
        Some(m) if m.requires_review => {
            let need = usize::try_from(profile.review.signers).unwrap_or(usize::MAX);
            s.reviewed_by
                .iter()
                .filter(|r| r.decision == "confirm")
                .count()
                >= need.max(1)
        }
        Some(_) | None => true,
    }
}

fn session_ref(s: &SessionVerdict) -> EventRef {
    EventRef {
        origin: Origin::Server,
        seq: 1,
        at: s.started_at,
    }
}

/// The enrolment verdict. Lessons are taken in position order; sessions in start order.
pub fn enrolment_verdict(profile: &Profile, input: &EnrolmentInput) -> EnrolmentVerdict {
    let mut lessons_in: Vec<&LessonInput> = input.lessons.iter().collect();
    lessons_in.sort_by_key(|l| l.position);
    let slack = profile.fast_forward.coverage_slack_ms;
    let mut uncredited: BTreeMap<Reason, i64> = BTreeMap::new();
    let mut completed_at: Vec<Option<Millis>> = Vec::new();
    let mut lessons = Vec::new();
    let mut r5_findings = Vec::new();
    let mut counted: Vec<&SessionVerdict> = Vec::new();
    let mut all_sessions: Vec<&SessionVerdict> = Vec::new();
    let mut after_r5_ms = 0_i64;
    for l in &lessons_in {
        let mut sessions: Vec<&SessionVerdict> = l.sessions.iter().collect();
        sessions.sort_by_key(|s| (s.started_at, s.session_id.clone()));
        let mut cov: Vec<[i64; 2]> = Vec::new();
        let mut done: Option<Millis> = None;
        let mut lesson_findings = Vec::new();
        let (mut session_credited, mut credited) = (0, 0);
        let mut make_ups = Vec::new();
        // The latest earlier session on this lesson whose verdict did not count: a session
        // after it is a make-up (R16).
        let mut voided: Option<&SessionVerdict> = None;
        for s in &sessions {
            all_sessions.push(s);
            for t in &s.uncredited {
                *uncredited.entry(t.reason).or_default() += t.ms;
            }
            session_credited += s.credited_ms;
            let missed = voided;
            if !s.counts {
                voided = Some(s);
            }
            if let Some(m) = missed {
                let verified = make_up_verified(profile, s);
                make_ups.push(MakeUpRecord {
                    session: s.session_id.clone(),
                    makes_up: m.session_id.clone(),
                    verified,
                });
                if !verified {
                    // Recorded in full, counted once confirmed: nothing of it counts or
                    // completes the lesson yet.
                    *uncredited.entry(Reason::MakeUpUnverified).or_default() += s.credited_ms;
                    continue;
                }
            }
            let in_order = r5::in_order(&completed_at, s.started_at);
            if in_order {
                credited += s.credited_ms;
                counted.push(s);
            } else {
                *uncredited.entry(Reason::OutOfOrder).or_default() += s.credited_ms;
                let f = Finding {
                    code: Reason::OutOfOrder,
                    at: s.started_at,
                    evidence: vec![session_ref(s)],
                    detail: format!(
                        "session {} of lesson {} started before lessons 1..{} were complete; {} ms not counted",
                        s.session_id,
                        l.position,
                        l.position.saturating_sub(1),
                        s.credited_ms
                    ),
                };
                lesson_findings.push(f.clone());
                r5_findings.push(f);
            }
            if !in_order {
                // Watching out of order completes nothing: the lesson must be watched again.
                continue;
            }
            for &[a, b] in &s.coverage {
                r1::add(&mut cov, a.max(0), b.min(l.duration_ms));
            }
            let complete = r1::total(&cov) >= l.duration_ms - slack;
            if done.is_none() && complete {
                done = Some(s.last_event_at);
            }
        }
        after_r5_ms += credited;
        completed_at.push(done);
        let mut rules: Vec<RuleResult> = Vec::new();
        for rule in RuleId::ALL {
            rules.push(match rule {
                RuleId::R1NoFastForward
                | RuleId::R2SingleWindow
                | RuleId::R3PopupCheck
                | RuleId::R4FaceLiveness
                | RuleId::R6RandomSnapshots => aggregate(rule, &sessions),
                RuleId::R5SequentialLessons => {
                    result(rule, !lesson_findings.is_empty(), lesson_findings.clone())
                }
                RuleId::R7OnlineShareCap | RuleId::R8LessonHourLength => not_applicable(rule),
            });
        }
        let coverage_ms = r1::total(&cov);
        lessons.push(LessonVerdict {
            lesson_id: l.lesson_id.clone(),
            position: l.position,
            duration_ms: l.duration_ms,
            coverage_ms,
            complete: done.is_some(),
            session_credited_ms: session_credited,
            credited_ms: credited,
            sessions: sessions.iter().map(|s| s.session_id.clone()).collect(),
            rules,
            make_ups,
        });
    }

    // R8: cut the counted sessions' credited spans, in server time, into whole 课时.
    let mut spans: Vec<(Millis, Millis)> = counted
        .iter()
        .flat_map(|s| {
            s.timeline
                .iter()
                .filter(|x| x.credited)
                .map(|x| (x.from, x.to))
        })
        .collect();
    spans.sort();
    let hour_ms = profile.lesson_hour_ms();
    let (units, remainder_ms) = r8::cut(&spans, hour_ms);
    let mut snaps: Vec<(Millis, String)> = counted
        .iter()
        .flat_map(|s| {
            s.snapshots
                .iter()
                .filter(|x| x.not_counted.is_none())
                .map(|x| (x.at, x.snapshot_id.clone()))
        })
        .collect();
    snaps.sort();
    let assigned = r6::assign(&units, &snaps);
    let cap = r7::cap_hours(profile, input.planned_total_hours);
    let need = usize::try_from(profile.snapshots.per_lesson_hour).unwrap_or(usize::MAX);
    let mut records = Vec::new();
    let (mut lesson_hours, mut missing_ms) = (0_u32, 0_i64);
    let (mut r6_findings, mut r7_findings) = (Vec::new(), Vec::new());
    for (i, (&(from, to), ids)) in units.iter().zip(assigned).enumerate() {
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let reason = if ids.len() < need {
            missing_ms += hour_ms;
            r6_findings.push(Finding {
                code: Reason::MissingSnapshots,
                at: from,
                evidence: vec![],
                detail: format!("课时 {index} has {} of {need} snapshots", ids.len()),
            });
            Some(Reason::MissingSnapshots)
        } else if cap.is_some_and(|c| lesson_hours >= c) {
            r7_findings.push(Finding {
                code: Reason::OnlineCapReached,
                at: from,
                evidence: vec![],
                detail: format!(
                    "课时 {index} is beyond the online cap of {} 课时",
                    cap.unwrap_or(0)
                ),
            });
            Some(Reason::OnlineCapReached)
        } else {
            lesson_hours += 1;
            None
        };
        if let Some(r) = reason {
            *uncredited.entry(r).or_default() += hour_ms;
        }
        records.push(LessonHourRecord {
            index,
            from,
            to,
            snapshot_ids: ids,
            counts: reason.is_none(),
            reason,
        });
    }
    let mut r8_findings = Vec::new();
    if remainder_ms > 0 {
        *uncredited.entry(Reason::IncompleteLessonHour).or_default() += remainder_ms;
        r8_findings.push(Finding {
            code: Reason::IncompleteLessonHour,
            at: spans.last().map_or(Millis(0), |s| s.1),
            evidence: vec![],
            detail: format!("{remainder_ms} ms of credited time do not fill a {hour_ms} ms 课时"),
        });
    }
    let r5_violated = !r5_findings.is_empty();
    let rules = RuleId::ALL
        .iter()
        .map(|&rule| match rule {
            RuleId::R1NoFastForward
            | RuleId::R2SingleWindow
            | RuleId::R3PopupCheck
            | RuleId::R4FaceLiveness => aggregate(rule, &all_sessions),
            RuleId::R5SequentialLessons => result(rule, r5_violated, r5_findings.clone()),
            RuleId::R6RandomSnapshots => result(rule, !r6_findings.is_empty(), r6_findings.clone()),
            RuleId::R7OnlineShareCap => match cap {
                None => not_applicable(rule),
                // Reaching the cap is the rule working; a plan above it is the violation.
                Some(c) => result(rule, input.planned_online_hours > c, r7_findings.clone()),
            },
            RuleId::R8LessonHourLength => result(rule, false, r8_findings.clone()),
        })
        .collect();
    let all_lessons_complete = !lessons.is_empty() && lessons.iter().all(|l| l.complete);
    let online_share_permille = if input.planned_total_hours == 0 {
        0
    } else {
        i32::try_from(i64::from(lesson_hours) * 1000 / i64::from(input.planned_total_hours))
            .unwrap_or(i32::MAX)
    };
    EnrolmentVerdict {
        enrolment_id: input.enrolment_id.clone(),
        learner_id: input.learner_id.clone(),
        profile: profile.reference(),
        lessons,
        credited_ms: after_r5_ms - missing_ms,
        lesson_hours,
        lesson_hour_records: records,
        online_cap_hours: cap,
        planned_online_hours: input.planned_online_hours,
        planned_total_hours: input.planned_total_hours,
        online_share_permille,
        uncredited: uncredited
            .into_iter()
            .map(|(reason, ms)| ReasonTotal { reason, ms })
            .collect(),
        rules,
        all_lessons_complete,
        counts: all_lessons_complete && lesson_hours >= 1 && !r5_violated,
        flagged_for_review: all_sessions.iter().any(|s| s.flagged_for_review),
        reviewed_by: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{FaceMethod, TerminationReason};
    use crate::domain::test_support::{LogBuilder, T0, ctx, fold, henan, honest};

    fn one_lesson(
        profile: &Profile,
        sessions: Vec<SessionVerdict>,
        duration: i64,
    ) -> EnrolmentVerdict {
        let input = EnrolmentInput {
            enrolment_id: EnrolmentId::from("e"),
            learner_id: LearnerId::from("learner-1"),
            planned_total_hours: 10,
            planned_online_hours: 4,
            lessons: vec![LessonInput {
                lesson_id: LessonId::from("lesson-1"),
                position: 1,
                duration_ms: duration,
                sessions,
            }],
        };
        enrolment_verdict(profile, &input)
    }

    /// A lesson studied twice: the first session (a quarter of it) did not count, the
    /// second is an honest hour with its snapshots: a make-up (R16).
    fn make_up_of_a_voided_session(
        profile: &Profile,
        reviewers: &[&str],
    ) -> (SessionVerdict, EnrolmentVerdict) {
        use crate::domain::verdict::ReviewRecord;
        let hour = profile.lesson_hour_ms();
        let mut voided = fold(ctx("s1", "lesson-1", hour), &honest(T0, hour / 4, &[]));
        // As a missed pop-up leaves it: nothing credited, so the session does not count.
        for span in voided.timeline.iter_mut().filter(|x| x.credited) {
            span.credited = false;
            span.reason = Some(Reason::PopupMissed);
        }
        voided.credited_ms = 0;
        voided.counts = false;
        let mut make_up = fold(
            ctx("s2", "lesson-1", hour),
            &honest(T0 + 2 * hour, hour, &[hour / 4, 3 * hour / 4]),
        );
        make_up.reviewed_by = reviewers
            .iter()
            .map(|d| ReviewRecord {
                reviewer: format!("reviewer-{d}"),
                decision: (*d).to_owned(),
                at: Millis(T0 + 3 * hour),
            })
            .collect();
        let v = one_lesson(profile, vec![voided, make_up.clone()], hour);
        (make_up, v)
    }

    #[test]
    fn a_make_up_counts_once_two_reviewers_confirm_it() {
        let p = henan();
        assert!(p.make_up.as_ref().is_some_and(|m| m.requires_review));
        for (reviewers, verified) in [
            (&[][..], false),
            (&["confirm"][..], false),
            (&["overturn", "overturn"][..], false),
            (&["confirm", "confirm"][..], true),
        ] {
            let (s, v) = make_up_of_a_voided_session(&p, reviewers);
            assert!(
                s.counts && s.credited_ms > 0,
                "the make-up itself is honest"
            );
            let lesson = &v.lessons[0];
            assert_eq!(lesson.make_ups.len(), 1, "{reviewers:?}");
            assert_eq!(lesson.make_ups[0].session, s.session_id);
            assert_eq!(
                lesson.make_ups[0].makes_up,
                crate::domain::SessionId::from("s1")
            );
            assert_eq!(lesson.make_ups[0].verified, verified, "{reviewers:?}");
            let unverified = v
                .uncredited
                .iter()
                .find(|t| t.reason == Reason::MakeUpUnverified)
                .map_or(0, |t| t.ms);
            if verified {
                assert_eq!(unverified, 0);
                assert!(lesson.complete);
                assert_eq!(v.lesson_hours, 1, "{:?}", v.lesson_hour_records);
            } else {
                assert_eq!(
                    unverified, s.credited_ms,
                    "{reviewers:?}: all of it, with its reason"
                );
                assert!(!lesson.complete);
                assert_eq!(v.lesson_hours, 0);
                assert!(!v.counts);
            }
        }
    }

    #[test]
    fn profiles_before_r16_count_make_ups_without_review() {
        let v1 = Profile::find(&crate::domain::ProfileRef {
            id: "henan-2023".into(),
            version: 1,
        })
        .expect("henan-2023 v1");
        assert!(v1.make_up.is_none());
        let (_, v) = make_up_of_a_voided_session(&v1, &[]);
        assert!(v.lessons[0].make_ups[0].verified);
        assert_eq!(v.lesson_hours, 1);
    }

    #[test]
    fn resuming_after_a_session_that_counts_is_not_a_make_up() {
        let p = henan();
        let hour = p.lesson_hour_ms();
        let first = fold(ctx("s1", "lesson-1", hour), &honest(T0, hour / 2, &[]));
        assert!(first.counts);
        let second = fold(
            ctx("s2", "lesson-1", hour),
            &honest(T0 + hour, hour / 2, &[]),
        );
        let v = one_lesson(&p, vec![first, second], hour);
        assert!(v.lessons[0].make_ups.is_empty());
        assert!(
            v.uncredited
                .iter()
                .all(|t| t.reason != Reason::MakeUpUnverified)
        );
    }

    #[test]
    fn a_lesson_hour_without_its_snapshots_earns_nothing() {
        let p = henan();
        let hour = p.lesson_hour_ms();
        let one_snapshot = honest(T0, hour, &[hour / 2]);
        let v = one_lesson(
            &p,
            vec![fold(ctx("s", "lesson-1", hour), &one_snapshot)],
            hour,
        );
        assert_eq!(v.lesson_hour_records.len(), 1);
        assert_eq!(
            v.lesson_hour_records[0].reason,
            Some(Reason::MissingSnapshots)
        );
        assert_eq!(v.lesson_hours, 0);
        assert_eq!(v.credited_ms, 0, "credited after R6");
        assert_eq!(v.rules[5].status, RuleStatus::Violated);
        assert!(!v.counts);
    }

    /// An honest hour with two snapshots whose logged analyses are `first` and `second`.
    fn two_snapshots_analysed(
        first: crate::domain::events::SnapshotAnalysis,
        second: crate::domain::events::SnapshotAnalysis,
    ) -> (SessionVerdict, EnrolmentVerdict) {
        use crate::domain::events::EventBody;
        let p = henan();
        let hour = p.lesson_hour_ms();
        let mut b = honest(T0, hour, &[hour / 4, 3 * hour / 4]);
        let mut next = [first, second].into_iter();
        for e in &mut b.events {
            if let EventBody::SnapshotStored { analysis, .. } = &mut e.body {
                *analysis = next.next();
            }
        }
        let session = fold(ctx("s", "lesson-1", hour), &b);
        let v = one_lesson(&p, vec![session.clone()], hour);
        (session, v)
    }

    fn analysed(
        one_live_match: bool,
        same: Option<&str>,
    ) -> crate::domain::events::SnapshotAnalysis {
        crate::domain::events::SnapshotAnalysis {
            faces: 1,
            match_permille: Some(if one_live_match { 700 } else { 100 }),
            liveness_permille: Some(950),
            dhash: "0123456789abcdef".into(),
            same_picture_as: same.map(str::to_owned),
            one_live_matching_face: Some(one_live_match),
            detail: String::new(),
        }
    }

    #[test]
    fn only_snapshots_of_one_live_matching_fresh_face_fill_a_lesson_hour() {
        let (s, v) = two_snapshots_analysed(analysed(true, None), analysed(true, None));
        assert_eq!(
            v.lesson_hours, 1,
            "two good snapshots: {:?}",
            v.lesson_hour_records
        );
        assert!(!s.flagged_for_review);

        // Someone else (or no live face) in one snapshot: the 课时 is short, no violation flag
        // on the session by itself.
        let (s, v) = two_snapshots_analysed(analysed(true, None), analysed(false, None));
        assert_eq!(v.lesson_hours, 0);
        assert_eq!(
            v.lesson_hour_records[0].reason,
            Some(Reason::MissingSnapshots)
        );
        assert_eq!(v.lesson_hour_records[0].snapshot_ids.len(), 1);
        let r6 = &s.rules[5];
        assert!(
            r6.findings
                .iter()
                .any(|f| f.code == Reason::UnusableSnapshot),
            "{r6:?}"
        );
        assert!(s.snapshots[1].not_counted.is_some());

        // A reused picture (the store found the same dHash earlier): violation with evidence.
        let (s, v) =
            two_snapshots_analysed(analysed(true, None), analysed(true, Some("snap-earlier")));
        assert_eq!(v.lesson_hours, 0);
        let r6 = &s.rules[5];
        assert_eq!(r6.status, RuleStatus::Violated);
        let f = r6
            .findings
            .iter()
            .find(|f| f.code == Reason::ReusedPicture)
            .expect("reuse finding");
        assert!(f.detail.contains("snap-earlier"), "{}", f.detail);
        assert_eq!(f.evidence.len(), 1);
        assert!(s.flagged_for_review);
    }

    #[test]
    fn sessions_add_up_across_a_lesson_hour_and_no_cap_is_not_applicable() {
        let hc = Profile::latest("huangchuan-2021").expect("huangchuan");
        let hour = hc.lesson_hour_ms();
        // Two sessions of the same lesson: the first stops half way with one snapshot, the
        // second resumes from there (prior coverage) with another.
        let mut first = LogBuilder::opening(T0);
        first.snapshot_at = vec![5 * 60_000];
        first.watch(hour / 2, hour).end(TerminationReason::Ended);
        let a = crate::domain::session::SessionFold::replay(
            hc.clone(),
            ctx("s-a", "lesson-1", hour),
            first.events.clone(),
        );
        // The player resumes where the first session stopped.
        let mut second = LogBuilder::new(T0 + 2 * hour);
        second.pos = hour / 2;
        second
            .start()
            .wait(1_000)
            .face(true, FaceMethod::Face, None)
            .wait(1_000)
            .play();
        second.snapshot_at = vec![hour / 2 + 5 * 60_000];
        second.watch(hour, hour).end(TerminationReason::Completed);
        let mut c = ctx("s-b", "lesson-1", hour);
        c.prior_coverage = a.coverage.clone();
        let b = crate::domain::session::SessionFold::replay(hc.clone(), c, second.events.clone());
        assert_eq!(
            a.credited_ms + b.credited_ms,
            hour,
            "b's re-watched second earns nothing twice"
        );
        assert_eq!(
            b.uncredited
                .iter()
                .find(|t| t.reason == Reason::AlreadyCovered)
                .map(|t| t.ms),
            Some(1_000)
        );
        let v = one_lesson(&hc, vec![b, a], hour);
        assert_eq!(v.lesson_hours, 1);
        assert_eq!(v.lesson_hour_records[0].snapshot_ids.len(), 2);
        assert!(v.lessons[0].complete && v.counts);
        assert_eq!(v.online_cap_hours, None);
        assert_eq!(v.rules[6].status, RuleStatus::NotApplicable);
        assert_eq!(v.online_share_permille, 100);
    }
}
