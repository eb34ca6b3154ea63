//! Property tests of the session fold over generated logs (plausible mixes of honest and
//! dishonest playback, page flips, challenges answered right, wrong, late or never, face
//! checks, terminations) plus focused unit tests of `apply`. Invariant under test: the
//! verdict's numbers and timeline obey RULES.md whatever the log, and replay is deterministic.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::events::{ChallengeKind, Event, EventBody, FaceMethod, Origin, TerminationReason};
use super::ids::SessionId;
use super::session::{Applied, Record, RecordCounts, RecordList, SessionContext, SessionFold};
use super::test_support::{ANSWER, LogBuilder, T0, ctx, henan};
use super::time::Millis;
use super::verdict::{ChallengeOutcome, Reason, SessionVerdict};

const DURATION: i64 = 900_000;

type Act = (i64, u8, i64, bool, bool, u8);

/// Turns generated actions into a log, keeping a simulated player honest unless told not to.
fn build(first_face: bool, acts: &[Act]) -> Vec<Event> {
    let mut b = LogBuilder::new(T0);
    b.popup_every = None;
    b.start();
    if first_face {
        b.wait(500).face(true, FaceMethod::Face, None);
    }
    b.wait(500).play();
    let mut nonces: Vec<(ChallengeKind, String)> = vec![];
    for &(dt, raw, a, x, y, d) in acts {
        b.wait(dt);
        // Weights: half heartbeats (some long honest stretches), then player, page,
        // challenge, face and session events.
        let kind = match raw {
            0..=3 if d == 0 => 0,
            0..=15 => 2,
            16..=22 => raw - 8,
            23 | 24 => 15,
            25..=27 => raw - 9,
            _ => 19,
        };
        let pick = |n: &Vec<(ChallengeKind, String)>, k: ChallengeKind| {
            let of: Vec<&String> = n
                .iter()
                .filter(|(kk, _)| *kk == k)
                .map(|(_, s)| s)
                .collect();
            if of.is_empty() {
                format!("unknown-{a}")
            } else {
                let i = usize::try_from(a).unwrap_or(0) % of.len();
                of[i].clone()
            }
        };
        match kind {
            0 => {
                // The learner is back in front of a 1.0× player for a long honest stretch, so
                // that pop-up gaps and the lesson's end are reached.
                (b.visible, b.focused, b.rate) = (true, true, 1000);
                if x && let Some((_, n)) = nonces
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == ChallengeKind::Popup)
                {
                    let n = n.clone();
                    b.answer(&n, ANSWER);
                }
                if !b.playing {
                    b.play();
                }
                b.heartbeat().watch(60_000, 10 * DURATION);
            }
            1..=7 => {
                match d {
                    2 => b.pos += a,
                    3 => b.pos -= a / 4,
                    _ => {}
                }
                b.playing = !(x && y && d == 1) && b.playing;
                b.heartbeat();
            }
            8 => {
                b.play();
            }
            9 => {
                b.pause();
            }
            10 => {
                let from = b.pos;
                b.pos = a * 3;
                let to = b.pos;
                b.client(EventBody::Seeked {
                    from_ms: from,
                    to_ms: to,
                });
            }
            11 => {
                b.rate = [1000, 1500, 2000, 750][usize::from(d % 4)];
                let (p, r) = (b.pos, b.rate);
                b.client(EventBody::RateChanged {
                    position_ms: p,
                    rate_permille: r,
                });
            }
            12 => {
                b.visible = !b.visible;
                let (v, p) = (b.visible, b.pos);
                b.client(EventBody::VisibilityChanged {
                    visible: v,
                    position_ms: p,
                });
            }
            13 => {
                b.focused = !b.focused;
                let (f, p) = (b.focused, b.pos);
                b.client(EventBody::FocusChanged {
                    focused: f,
                    position_ms: p,
                });
            }
            14 => {
                let n = b.issue(ChallengeKind::Popup, 20_000);
                nonces.push((ChallengeKind::Popup, n));
            }
            15 => {
                let n = pick(&nonces, ChallengeKind::Popup);
                b.answer(&n, if x || y { ANSWER } else { "13" });
            }
            16 => {
                let k = [
                    ChallengeKind::Popup,
                    ChallengeKind::Snapshot,
                    ChallengeKind::FaceRecheck,
                ][usize::from(d % 3)];
                let n = pick(&nonces, k);
                b.server(EventBody::ChallengeExpired { nonce: n });
            }
            17 if x => {
                let n = b.issue(ChallengeKind::Snapshot, 20_000);
                nonces.push((ChallengeKind::Snapshot, n));
            }
            17 => {
                let n = pick(&nonces, ChallengeKind::Snapshot);
                b.server(EventBody::SnapshotStored {
                    nonce: n,
                    snapshot_id: format!("img-{a}"),
                    sha256: "00".into(),
                    analysis: None,
                });
            }
            18 if x && y => {
                let n = b.issue(ChallengeKind::FaceRecheck, 20_000);
                nonces.push((ChallengeKind::FaceRecheck, n));
            }
            18 => {
                let n = (d % 2 == 0).then(|| pick(&nonces, ChallengeKind::FaceRecheck));
                b.face(x || !y, FaceMethod::Face, n);
            }
            _ => match d {
                0 => {
                    b.server(EventBody::ConcurrentSessionRefused {
                        other_session: SessionId::from("other"),
                    });
                }
                1 => {
                    b.client(EventBody::Signal {
                        name: "webdriver".into(),
                        detail: String::new(),
                    });
                }
                2 if x && y => {
                    let reason = [
                        TerminationReason::Ended,
                        TerminationReason::Completed,
                        TerminationReason::LeaseExpired,
                        TerminationReason::Superseded,
                        TerminationReason::Server,
                    ][usize::try_from(a % 5).unwrap_or(0)];
                    b.end(reason);
                }
                _ => {
                    b.face(true, FaceMethod::Manual, None);
                }
            },
        }
    }
    b.events
}

fn context(prior: Option<(i64, i64)>) -> SessionContext {
    let mut c = ctx("s-prop", "lesson-prop", DURATION);
    if let Some((a, len)) = prior {
        c.prior_coverage = vec![[a, a + len]];
    }
    c
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn pick_index(seed: &mut u64, n: usize) -> usize {
    usize::try_from(xorshift(seed) % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
}

/// The invariants every verdict must satisfy.
fn check(events: &[Event], v: &SessionVerdict) -> Result<(), TestCaseError> {
    let profile = henan();
    // (f) the timeline partitions [started_at, last_event_at]; credited XOR reason.
    let mut cursor = v.started_at;
    for s in &v.timeline {
        prop_assert_eq!(s.from, cursor, "contiguous spans");
        prop_assert!(s.to > s.from, "no empty spans");
        prop_assert!(
            s.credited != s.reason.is_some(),
            "credited XOR reason: {:?}",
            s
        );
        cursor = s.to;
    }
    prop_assert_eq!(cursor, v.last_event_at);
    prop_assert_eq!(v.wall_ms, v.last_event_at.0 - v.started_at.0);
    let credited: i64 = v
        .timeline
        .iter()
        .filter(|s| s.credited)
        .map(|s| s.to.0 - s.from.0)
        .sum();
    let uncredited: i64 = v.uncredited.iter().map(|t| t.ms).sum();
    prop_assert_eq!(credited, v.credited_ms);
    prop_assert_eq!(
        credited + uncredited,
        v.wall_ms,
        "every ms is credited or has a reason"
    );
    // (a) credit never exceeds server time or new coverage.
    prop_assert!(v.credited_ms <= v.wall_ms);
    let covered: i64 = v.coverage.iter().map(|[a, b]| b - a).sum();
    prop_assert!(
        v.credited_ms <= covered,
        "credited {} > coverage {}",
        v.credited_ms,
        covered
    );
    prop_assert!(
        v.coverage
            .iter()
            .all(|[a, b]| 0 <= *a && a < b && *b <= DURATION)
    );
    // (b) no credit before the first passed face check.
    let first_pass = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::FaceChecked { passed: true, .. } => Some(e.at),
            EventBody::FaceChecked { .. }
            | EventBody::SessionStarted
            | EventBody::ChallengeIssued { .. }
            | EventBody::ChallengeExpired { .. }
            | EventBody::SnapshotStored { .. }
            | EventBody::ConcurrentSessionRefused { .. }
            | EventBody::Terminated { .. }
            | EventBody::Initialized { .. }
            | EventBody::Played { .. }
            | EventBody::Paused { .. }
            | EventBody::Seeked { .. }
            | EventBody::RateChanged { .. }
            | EventBody::Heartbeat { .. }
            | EventBody::VisibilityChanged { .. }
            | EventBody::FocusChanged { .. }
            | EventBody::ChallengeAnswered { .. }
            | EventBody::Signal { .. } => None,
        })
        .min();
    for s in v.timeline.iter().filter(|s| s.credited) {
        prop_assert!(
            first_pass.is_some_and(|p| s.from >= p),
            "credit at {} before a face pass",
            s.from
        );
    }
    // (c) credited time between consecutive confirmed pop-ups (and the ends) ≤ max gap.
    let mut cuts: Vec<Millis> = v
        .challenges
        .iter()
        .filter(|c| c.kind == ChallengeKind::Popup && c.outcome == ChallengeOutcome::Confirmed)
        .filter_map(|c| c.answered_at)
        .collect();
    cuts.sort();
    cuts.push(Millis(i64::MAX));
    let mut from = Millis(i64::MIN);
    for to in cuts {
        let in_window: i64 = v
            .timeline
            .iter()
            .filter(|s| s.credited && s.from >= from && s.from < to)
            .map(|s| s.to.0 - s.from.0)
            .sum();
        prop_assert!(
            in_window <= profile.popup.max_gap_ms,
            "{} ms between confirmations",
            in_window
        );
        from = to;
    }
    prop_assert!(v.provisional_ms <= v.credited_ms);
    Ok(())
}

/// Folds `e` as a worker does: a new event joins `log`; one that sorts before what was folded
/// makes a re-fold of the whole log. Returns whether it re-folded.
fn deliver(fold: &mut SessionFold, log: &mut Vec<Event>, e: &Event) -> bool {
    match fold.apply(e) {
        Applied::Applied => {
            log.push(e.clone());
            false
        }
        Applied::Duplicate => false,
        Applied::OutOfOrder => {
            log.push(e.clone());
            *fold = SessionFold::refold(henan(), context(None), log.clone());
            true
        }
    }
}

fn acts() -> impl Strategy<Value = Vec<Act>> {
    prop::collection::vec(
        (
            0i64..8_000,
            0u8..32,
            0i64..120_000,
            any::<bool>(),
            any::<bool>(),
            0u8..4,
        ),
        1..90,
    )
}

proptest! {
    // Failures persist next to this file (inside the domain), not at the crate root.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn verdicts_obey_the_rules(first_face in any::<bool>(), acts in acts(), prior in prop::option::of((0i64..DURATION, 0i64..100_000))) {
        let events = build(first_face, &acts);
        let v = SessionFold::replay(henan(), context(prior), events.clone());
        check(&events, &v)?;
    }

    #[test]
    fn replay_is_order_and_duplicate_proof(first_face in any::<bool>(), acts in acts(), mut seed in 1u64..u64::MAX) {
        let events = build(first_face, &acts);
        let v = SessionFold::replay(henan(), context(None), events.clone());
        let bytes = serde_json::to_vec(&v).expect("serialise");
        // (e) byte-identical on a second replay.
        let again = serde_json::to_vec(&SessionFold::replay(henan(), context(None), events.clone())).expect("serialise");
        prop_assert_eq!(&bytes, &again);
        // (d) shuffled, with duplicates.
        let mut mixed = events.clone();
        for e in &events {
            if xorshift(&mut seed).is_multiple_of(3) {
                mixed.push(e.clone());
            }
        }
        for i in (1..mixed.len()).rev() {
            let j = pick_index(&mut seed, i + 1);
            mixed.swap(i, j);
        }
        let shuffled = serde_json::to_vec(&SessionFold::replay(henan(), context(None), mixed)).expect("serialise");
        prop_assert_eq!(&bytes, &shuffled);
        // (e) incremental: per-origin streams in order (as the gateway delivers them),
        // interleaved at random with redeliveries; out-of-order events trigger a re-fold.
        let server: Vec<&Event> = events.iter().filter(|e| e.origin == Origin::Server).collect();
        let client: Vec<&Event> = events.iter().filter(|e| e.origin == Origin::Client).collect();
        let (mut i, mut j) = (0, 0);
        let mut fold = SessionFold::new(henan(), context(None));
        let mut log: Vec<Event> = vec![];
        while i < server.len() || j < client.len() {
            let take_server = j >= client.len() || (i < server.len() && xorshift(&mut seed).is_multiple_of(2));
            let e = if take_server { i += 1; server[i - 1] } else { j += 1; client[j - 1] };
            let deliveries = if xorshift(&mut seed).is_multiple_of(4) { 2 } else { 1 };
            for _ in 0..deliveries {
                deliver(&mut fold, &mut log, e);
            }
        }
        prop_assert_eq!(fold.credited_ms(), v.credited_ms, "the accessor agrees with the timeline");
        prop_assert_eq!(fold.credit_since_popup_ms(), v.provisional_ms);
        let incremental = serde_json::to_vec(&fold.verdict()).expect("serialise");
        prop_assert_eq!(&bytes, &incremental);
    }

    /// A worker hands closed records to its store with each verdict and releases them from
    /// the fold once that write is confirmed; re-folds start over. Whatever the moments, the
    /// verdict head plus the stored records is the replay's verdict, byte for byte.
    #[test]
    fn released_records_restore_the_verdict(first_face in any::<bool>(), acts in acts(), mut seed in 1u64..u64::MAX) {
        let events = build(first_face, &acts);
        let full = serde_json::to_vec(&SessionFold::replay(henan(), context(None), events.clone())).expect("serialise");
        // The store: the latest record written at each (list, index).
        let mut store: std::collections::BTreeMap<(RecordList, u32), Record> = std::collections::BTreeMap::new();
        let mut fold = SessionFold::new(henan(), context(None));
        let mut sent = RecordCounts::default();
        let mut unconfirmed: std::collections::VecDeque<RecordCounts> = std::collections::VecDeque::new();
        let mut log: Vec<Event> = vec![];
        let mut released_any = false;
        let mut order: Vec<&Event> = events.iter().collect();
        // Server events a few places late: out-of-order arrivals and re-folds.
        for i in 1..order.len() {
            if order[i].origin == Origin::Server && xorshift(&mut seed).is_multiple_of(5) {
                order.swap(i - 1, i);
            }
        }
        for e in order {
            if deliver(&mut fold, &mut log, e) {
                sent = RecordCounts::default();
                unconfirmed.clear();
            }
            if xorshift(&mut seed).is_multiple_of(3) {
                // A hand-off: the records closed since the last one go to the store.
                for (i, r) in fold.closed_records(&sent) {
                    store.insert((r.list(), i), r);
                }
                sent = fold.closed();
                unconfirmed.push_back(sent);
            }
            if xorshift(&mut seed).is_multiple_of(2) && let Some(upto) = unconfirmed.pop_front() {
                fold.release(&upto);
                released_any |= !fold.released().is_zero();
            }
        }
        let mut head = fold.verdict();
        let records: Vec<(u32, Record)> = store.into_iter().map(|((_, i), r)| (i, r)).collect();
        head.restore(&fold.released(), records).map_err(TestCaseError::fail)?;
        let restored = serde_json::to_vec(&head).expect("serialise");
        prop_assert_eq!(&full, &restored, "released something: {}", released_any);
    }
}

// ----- focused unit tests of `apply` -----

fn opening() -> LogBuilder {
    let mut b = LogBuilder::opening(T0);
    b.popup_every = None;
    b
}

#[test]
fn duplicates_and_out_of_order_events_change_nothing() {
    let mut b = opening();
    b.watch(10_000, DURATION);
    let mut fold = SessionFold::new(henan(), ctx("s", "l", DURATION));
    for e in &b.events {
        assert_eq!(fold.apply(e), Applied::Applied);
    }
    let before = fold.verdict();
    assert_eq!(fold.apply(&b.events[2]), Applied::Duplicate);
    let late = Event {
        origin: Origin::Server,
        seq: 99,
        at: Millis(T0 + 1),
        body: EventBody::Signal {
            name: "x".into(),
            detail: String::new(),
        },
    };
    assert_eq!(fold.apply(&late), Applied::OutOfOrder);
    assert_eq!(fold.verdict(), before);
    assert_eq!(fold.last_seq(Origin::Client), 3);
    // A skipped sequence number is fine.
    let skip = Event {
        origin: Origin::Server,
        seq: 7,
        at: Millis(b.t + 1),
        body: EventBody::Signal {
            name: "y".into(),
            detail: String::new(),
        },
    };
    assert_eq!(fold.apply(&skip), Applied::Applied);
    assert_eq!(
        fold.apply(&skip),
        Applied::Duplicate,
        "the same server event again"
    );
    // Server events have two writers (gateways and workers): a lower number may arrive after a
    // higher one. It is not a duplicate; stamped earlier, it asks for a re-fold, which keeps it.
    let below = Event {
        seq: 5,
        at: Millis(b.t),
        ..skip.clone()
    };
    assert_eq!(fold.apply(&below), Applied::OutOfOrder);
    let mut all = b.events.clone();
    all.extend([skip.clone(), below.clone()]);
    let refolded = SessionFold::refold(henan(), ctx("s", "l", DURATION), all);
    let names: Vec<_> = refolded
        .verdict()
        .signals
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(
        names,
        vec!["y", "y"],
        "the re-fold keeps both distinct server events"
    );
}

#[test]
fn wrong_answer_may_be_retried_and_unknown_nonces_are_findings_only() {
    let mut b = opening();
    b.watch(30_000, DURATION);
    let n = b.issue(ChallengeKind::Popup, 60_000);
    b.pause()
        .wait(3_000)
        .answer(&n, "wrong")
        .wait(2_000)
        .answer("nope", ANSWER)
        .answer(&n, ANSWER)
        .play();
    b.watch(10_000, DURATION).end(TerminationReason::Ended);
    let v = SessionFold::replay(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert_eq!(v.credited_ms, 40_000);
    assert_eq!(v.challenges[0].outcome, ChallengeOutcome::Confirmed);
    assert_eq!(v.challenges[0].response_ms, Some(5_000));
    let r3 = &v.rules[2];
    assert_eq!(r3.status, super::verdict::RuleStatus::Held);
    assert_eq!(r3.findings.len(), 2);
    assert_eq!(v.provisional_ms, 10_000);
}

#[test]
fn credit_stops_at_the_max_gap_without_a_confirmation() {
    let mut b = opening();
    let exactly = henan().popup.max_gap_ms;
    b.watch(exactly, exactly).end(TerminationReason::Completed);
    let v = SessionFold::replay(henan(), ctx("s", "l", exactly), b.events.clone());
    assert_eq!(
        v.credited_ms, exactly,
        "a gap of exactly the maximum is fine"
    );
    let mut long = opening();
    let d = 400_000;
    long.watch(d, d).end(TerminationReason::Completed);
    let v = SessionFold::replay(henan(), ctx("s", "l", d), long.events.clone());
    assert_eq!(v.credited_ms, henan().popup.max_gap_ms);
    assert_eq!(
        v.uncredited
            .iter()
            .find(|t| t.reason == Reason::PopupOverdue)
            .map(|t| t.ms),
        Some(100_000)
    );
    assert_eq!(v.rules[2].status, super::verdict::RuleStatus::Violated);
    assert!(
        v.lesson_complete,
        "the video was watched, but 100 s earned nothing"
    );
}

#[test]
fn lease_expiry_voids_the_unconfirmed_tail_and_late_events_are_session_ended() {
    let mut b = opening();
    b.watch(60_000, DURATION);
    b.popup(5_000)
        .watch(30_000, DURATION)
        .end(TerminationReason::LeaseExpired);
    b.wait(10_000).heartbeat();
    let v = SessionFold::replay(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert_eq!(v.credited_ms, 60_000);
    assert_eq!(v.provisional_ms, 0);
    let total = |r: Reason| {
        v.uncredited
            .iter()
            .find(|t| t.reason == r)
            .map_or(0, |t| t.ms)
    };
    assert_eq!(
        total(Reason::LeaseLost),
        30_000 + 10_000,
        "the unconfirmed tail and the time after"
    );
    assert_eq!(
        total(Reason::SessionEnded),
        0,
        "lease loss is reported as such, not as a clean end"
    );
    assert_eq!(
        v.timeline.last().map(|s| (s.to.0 - s.from.0, s.reason)),
        Some((10_000, Some(Reason::LeaseLost)))
    );
    assert!(v.ended && v.counts);
}

#[test]
fn prior_coverage_earns_nothing_again() {
    let mut c = ctx("s", "l", DURATION);
    c.prior_coverage = vec![[0, 20_000]];
    let mut b = opening();
    b.watch(30_000, DURATION).end(TerminationReason::Ended);
    let v = SessionFold::replay(henan(), c, b.events.clone());
    assert_eq!(v.credited_ms, 10_000);
    assert_eq!(v.coverage, vec![[20_000, 30_000]]);
    assert_eq!(v.lesson_coverage_ms, 30_000);
    assert_eq!(
        v.uncredited
            .iter()
            .find(|t| t.reason == Reason::AlreadyCovered)
            .map(|t| t.ms),
        Some(20_000)
    );
}

#[test]
fn expired_face_recheck_stops_credit_until_a_pass() {
    let mut b = opening();
    b.watch(30_000, DURATION);
    let n = b.issue(ChallengeKind::FaceRecheck, 20_000);
    b.watch(20_000, DURATION);
    b.server(EventBody::ChallengeExpired { nonce: n });
    b.watch(10_000, DURATION)
        .face(true, FaceMethod::Face, None)
        .watch(10_000, DURATION);
    b.end(TerminationReason::Ended);
    let v = SessionFold::replay(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert_eq!(
        v.credited_ms, 60_000,
        "a pending re-check does not stop credit; its expiry does"
    );
    assert_eq!(
        v.uncredited
            .iter()
            .find(|t| t.reason == Reason::FaceCheckFailed)
            .map(|t| t.ms),
        Some(10_000)
    );
    assert!(v.flagged_for_review);
}

#[test]
fn next_server_at_never_sorts_before_the_folded_log() {
    let mut b = opening();
    b.watch(5_000, DURATION);
    let fold = SessionFold::refold(henan(), ctx("s", "l", DURATION), b.events.clone());
    let last = fold.last_event_at();
    assert_eq!(
        fold.next_server_at(last),
        last.plus(1),
        "after a client event of the same ms"
    );
    assert_eq!(fold.next_server_at(last.plus(7)), last.plus(7));
    assert_eq!(
        fold.next_server_at(Millis(0)),
        last.plus(1),
        "a lagging clock is moved forward"
    );
    b.wait(1).server(EventBody::Signal {
        name: "s".into(),
        detail: String::new(),
    });
    let fold = SessionFold::refold(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert_eq!(
        fold.next_server_at(last.plus(1)),
        last.plus(1),
        "after a server event: the same ms is fine"
    );
}

fn requiring_active_liveness() -> crate::domain::Profile {
    let mut p = henan();
    p.face.active_challenge = Some(crate::domain::profile::ActiveChallenge {
        required: true,
        steps: 3,
        deadline_ms: 90_000,
    });
    p
}

#[test]
fn a_required_active_challenge_is_the_only_first_pass() {
    // A plain passed check at the start does not start credit under such a profile; the
    // passed answer to a liveness challenge does; later plain re-checks count as usual.
    let mut b = LogBuilder::new(T0);
    b.start().wait(1_000).face(true, FaceMethod::Face, None);
    b.wait(1_000).play().watch(10_000, DURATION);
    let n = b.issue(ChallengeKind::Liveness, 90_000);
    b.wait(3_000).face(true, FaceMethod::Face, Some(n));
    b.watch(20_000, DURATION);
    b.end(TerminationReason::Ended);
    let v = SessionFold::replay(
        requiring_active_liveness(),
        ctx("s", "l", DURATION),
        b.events.clone(),
    );
    assert_eq!(v.credited_ms, 20_000, "only the time after the active pass");
    assert!(!v.flagged_for_review, "a plain check is not a failure");
    // The same log under a profile that only offers the challenge credits from the plain pass.
    let offered = SessionFold::replay(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert!(offered.credited_ms > v.credited_ms);
}

#[test]
fn a_failed_or_expired_liveness_challenge_flags_and_stops_credit_without_ending() {
    let mut b = opening();
    b.watch(10_000, DURATION);
    let n = b.issue(ChallengeKind::Liveness, 20_000);
    b.wait(2_000).face(false, FaceMethod::Face, Some(n));
    b.watch(10_000, DURATION);
    let n2 = b.issue(ChallengeKind::Liveness, 20_000);
    b.watch(20_000, DURATION);
    b.server(EventBody::ChallengeExpired { nonce: n2 });
    b.watch(5_000, DURATION);
    let fold = SessionFold::refold(henan(), ctx("s", "l", DURATION), b.events.clone());
    assert!(!fold.ended(), "a failed challenge never ends the study");
    let v = fold.verdict();
    assert_eq!(
        v.credited_ms, 12_000,
        "only the play before the failed answer (10 s watched, 2 s while it was checked)"
    );
    assert!(v.flagged_for_review);
    assert!(
        v.challenges
            .iter()
            .filter(|c| c.kind == ChallengeKind::Liveness)
            .all(|c| c.outcome == ChallengeOutcome::Missed),
        "{:?}",
        v.challenges
    );
}
