//! The per-session state machine: a deterministic fold of a session's event log under its
//! policy profile. Invariants: the timeline partitions server time from `SessionStarted` to
//! the last folded event into contiguous spans, each credited XOR carrying a [`Reason`];
//! every credited millisecond passed all gates (R1–R4) at the time it accrued; the state is
//! compact (no event list is kept) and ordered, so a replay is byte-for-byte identical.
//!
//! How an interval is judged: at each event at server time `t`, the interval since the
//! previous event is judged with the state as it was *before* the event (the gates), and the
//! event's position claim (if it carries one) is checked against the R1 anchor. Events without
//! a position (server events, answers) extrapolate the position at the playback rate (capped
//! at `max_rate`) from server time, so a timer in mid-playback does not cut coverage; the next
//! real claim is still checked against the anchor. Then the event changes the state.
//!
//! Events after `Terminated` are counted and their evidence (answers, snapshots, signals)
//! recorded, and they extend the timeline with `session_ended` (or `lease_lost`) spans, never
//! credited, so the partition always reaches the last folded event.
//!
//! Ends: at `ended`, `completed` or `server` the provisional credit since the last confirmed
//! pop-up stays credited; at `lease_expired` or `superseded` it is relabelled `lease_lost`
//! (nobody confirmed attention for it). A session `counts` when any credit is left: every
//! credited millisecond already survived every rule, since violations void exactly the time
//! they affect (R5–R8 are judged by the enrolment fold).

mod evidence;
mod records;
mod seqs;
mod transitions;

pub use records::{Record, RecordCounts, RecordList};

use std::collections::BTreeMap;

use super::events::{ChallengeKind, Event, EventBody, Origin, TerminationReason};
use super::ids::{LearnerId, LessonId, SessionId};
use super::profile::Profile;
use super::rules::r1_no_fast_forward as r1;
use super::rules::r2_single_window as r2;
use super::rules::r3_popup_check as r3;
use super::rules::r4_face_liveness::{self as r4, FaceState};
use super::rules::r6_random_snapshots as r6;
use super::rules::{not_applicable, result};
use super::time::Millis;
use super::verdict::{
    ChallengeOutcome, ChallengeRecord, EventRef, FaceCheckRecord, Finding, Reason, ReasonTotal,
    RuleId, SessionVerdict, SignalRecord, SnapshotRecord, Span,
};
use std::sync::Arc;

use evidence::{Evidence, push_small};

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
    /// Already folded (same `(origin, seq)`, or a seq at or below the origin's highest folded
    /// one); nothing changed.
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
    /// Shared by every fold of the same profile (a worker holds thousands of sessions).
    profile: Arc<Profile>,
    /// Its `prior_coverage` normalised (merged, clipped to the lesson).
    ctx: SessionContext,
    started_at: Option<Millis>,
    /// Server time of the last folded event.
    last_at: Millis,
    last_key: Option<(Millis, Origin, u64)>,
    /// Every server sequence number folded (server events are few: challenges, checks); the
    /// highest is the server's `last_seq`.
    server_seqs: seqs::SeqSet,
    max_seq_client: u64,
    events_folded: u64,
    termination: Option<(Millis, TerminationReason)>,
    face: FaceState,
    playing: bool,
    visible: bool,
    focused: bool,
    rate_permille: i32,
    /// Last known video position (claimed, or extrapolated between claims).
    position: i64,
    /// R1 anchor `(t_a, p_a)`; `None` while not playing.
    anchor: Option<(Millis, i64)>,
    /// Video newly covered in this session (merged).
    coverage: Vec<[i64; 2]>,
    credited_ms: i64,
    credit_since_popup: i64,
    credit_since_face: i64,
    /// Timeline index where the provisional window (since the last confirmed pop-up) starts;
    /// spans before it are never merged with or relabelled by later ones.
    popup_barrier: usize,
    overdue_reported: bool,
    timeline: Vec<Span>,
    /// Challenges, checks, findings: `None` while all are empty, which is most of the time
    /// for a worker's fold once its closed records are released.
    ev: Option<Box<Evidence>>,
    flagged: bool,
    /// Records handed off and dropped from the lists above (`records.rs`): the lists hold
    /// what follows them.
    released: RecordCounts,
    /// Credited and uncredited (by reason, sorted) time of the released spans.
    released_credited: i64,
    released_uncredited: Vec<(Reason, i64)>,
}

impl SessionFold {
    pub fn new(profile: impl Into<Arc<Profile>>, mut ctx: SessionContext) -> Self {
        let profile = profile.into();
        ctx.prior_coverage = r1::normalise(&ctx.prior_coverage, ctx.lesson_duration_ms);
        SessionFold {
            profile,
            ctx,
            started_at: None,
            last_at: Millis(0),
            last_key: None,
            server_seqs: seqs::SeqSet::default(),
            max_seq_client: 0,
            events_folded: 0,
            termination: None,
            face: FaceState::Required,
            playing: false,
            // The page is open and in front when a session starts; the SDK reports changes.
            visible: true,
            focused: true,
            rate_permille: 1000,
            position: 0,
            anchor: None,
            coverage: Vec::new(),
            credited_ms: 0,
            credit_since_popup: 0,
            credit_since_face: 0,
            popup_barrier: 0,
            overdue_reported: false,
            timeline: Vec::new(),
            ev: None,
            flagged: false,
            released: RecordCounts::default(),
            released_credited: 0,
            released_uncredited: Vec::new(),
        }
    }

    /// Folds one event, or says why not (see [`Applied`]).
    pub fn apply(&mut self, event: &Event) -> Applied {
        // Client events reach the fold in sequence order (the gateway refuses gaps), so the
        // highest sequence number identifies every duplicate. Server events have two writers
        // (gateways: face checks, snapshots; workers: challenges, expiries) whose numbers are
        // unique but may arrive out of numeric order, so they are remembered one by one.
        let duplicate = match event.origin {
            Origin::Server => self.server_seqs.contains(event.seq),
            Origin::Client => event.seq <= self.max_seq_client,
        };
        if duplicate {
            return Applied::Duplicate;
        }
        if self.last_key.is_some_and(|k| event.order_key() < k) {
            return Applied::OutOfOrder;
        }
        match event.origin {
            Origin::Server => {
                self.server_seqs.insert(event.seq);
            }
            Origin::Client => self.max_seq_client = event.seq,
        }
        self.last_key = Some(event.order_key());
        self.events_folded += 1;
        self.fold(event);
        Applied::Applied
    }

    /// Sorts by [`Event::order_key`], drops duplicates, folds, and returns the verdict.
    pub fn replay(
        profile: impl Into<Arc<Profile>>,
        ctx: SessionContext,
        events: impl IntoIterator<Item = Event>,
    ) -> SessionVerdict {
        Self::refold(profile, ctx, events).verdict()
    }

    /// Like [`SessionFold::replay`] but returns the fold, so a worker can go on applying.
    pub fn refold(
        profile: impl Into<Arc<Profile>>,
        ctx: SessionContext,
        events: impl IntoIterator<Item = Event>,
    ) -> SessionFold {
        let mut events: Vec<Event> = events.into_iter().collect();
        events.sort_by_key(Event::order_key);
        events.dedup_by_key(|e| e.id());
        let mut fold = SessionFold::new(profile, ctx);
        for e in &events {
            fold.apply(e);
        }
        fold
    }

    fn fold(&mut self, e: &Event) {
        let ev = EventRef {
            origin: e.origin,
            seq: e.seq,
            at: e.at,
        };
        if self.started_at.is_some() && e.at > self.last_at {
            self.account(e.at, claim(&e.body), &ev);
        }
        if self.started_at.is_some() || matches!(e.body, EventBody::SessionStarted) {
            self.last_at = self.last_at.max(e.at);
        }
        self.apply_body(e, &ev);
    }

    /// The first failing credit condition, in the documented priority order.
    fn gate(&self) -> Option<Reason> {
        if let Some((_, why)) = self.termination {
            return Some(match why {
                TerminationReason::Ended
                | TerminationReason::Completed
                | TerminationReason::Server => Reason::SessionEnded,
                TerminationReason::LeaseExpired | TerminationReason::Superseded => {
                    Reason::LeaseLost
                }
            });
        }
        if let Some(r) = r4::gate(self.profile.face.required_before_credit, self.face) {
            return Some(r);
        }
        if self
            .ev()
            .outstanding
            .iter()
            .any(|o| o.kind == ChallengeKind::Popup)
        {
            return Some(Reason::PopupPending);
        }
        if let Some(r) = r2::page_gate(self.visible, self.focused) {
            return Some(r);
        }
        if r1::rate_exceeds(&self.profile, self.rate_permille) {
            return Some(Reason::PlaybackRate);
        }
        if !self.playing {
            return Some(Reason::NotPlaying);
        }
        None
    }

    fn furthest(&self) -> i64 {
        let a = self.ctx.prior_coverage.last().map_or(0, |c| c[1]);
        let b = self.coverage.last().map_or(0, |c| c[1]);
        a.max(b)
    }

    /// Judges the interval `[last_at, t]` and moves the position to the claim (or estimate).
    fn account(&mut self, t: Millis, claim: Option<i64>, ev: &EventRef) {
        let from = self.last_at;
        let wall = t.saturating_sub(from);
        let gate = self.gate();
        let p_end = match claim {
            Some(p) => p,
            None if self.playing => {
                let rate = i64::from(self.rate_permille.max(0))
                    .min(r1::max_rate_permille(&self.profile).max(0));
                self.position + wall * rate / 1000
            }
            None => self.position,
        };
        let mut violation = false;
        if let Some(p) = claim {
            // Above-rate playback is already judged by the rate itself.
            if gate != Some(Reason::PlaybackRate) {
                let allowed = r1::allowed_position(&self.profile, self.anchor, self.position, t);
                if r1::is_fast_forward(&self.profile, allowed, self.furthest(), p)
                    && self.termination.is_none()
                {
                    violation = true;
                    let detail = format!(
                        "reported position {p} ms, at most {allowed} ms allowed by server time"
                    );
                    self.find(
                        RuleId::R1NoFastForward,
                        Reason::FastForward,
                        ev,
                        detail,
                        true,
                    );
                }
            }
        }
        match gate {
            Some(reason) => self.push_span(from, t, false, Some(reason), None, ev),
            None if violation => {
                self.push_span(from, t, false, Some(Reason::FastForward), None, ev)
            }
            None => self.credit_interval(from, t, p_end, ev),
        }
        self.position = p_end;
        if (gate.is_some() || violation) && self.playing {
            self.anchor = Some((t, p_end));
        }
    }

    /// An interval in which every gate held and the claim was accepted.
    fn credit_interval(&mut self, from: Millis, t: Millis, p_end: i64, ev: &EventRef) {
        let wall = t.saturating_sub(from);
        let dur = self.ctx.lesson_duration_ms;
        // Positions are claims: nothing before the start of the video is coverage.
        let p_from = self.position.max(0);
        let seg_end = p_end.min(dur);
        let (new, overlap) = if seg_end > p_from {
            let n = r1::uncovered_in(&self.ctx.prior_coverage, &self.coverage, p_from, seg_end);
            (n, seg_end - p_from - n)
        } else {
            (0, 0)
        };
        // Credit is new coverage, never more than the server time that passed.
        let gained = new.min(wall);
        let credited = gained.min(r3::gap_room(&self.profile, self.credit_since_popup));
        let overdue = gained - credited;
        let rest = if overlap > 0 {
            Reason::AlreadyCovered
        } else if p_end > dur {
            Reason::VideoEnded
        } else {
            Reason::NotPlaying
        };
        if seg_end > p_from {
            r1::add_outside(
                &mut self.coverage,
                &self.ctx.prior_coverage,
                p_from,
                seg_end,
            );
        }
        let video = (seg_end > p_from).then_some([p_from, seg_end]);
        let c_end = from.plus(credited);
        let o_end = c_end.plus(overdue);
        self.push_span(from, c_end, true, None, video, ev);
        self.push_span(c_end, o_end, false, Some(Reason::PopupOverdue), None, ev);
        self.push_span(o_end, t, false, Some(rest), None, ev);
        self.credited_ms += credited;
        self.credit_since_popup += credited;
        self.credit_since_face += credited;
        if overdue > 0 && !self.overdue_reported {
            self.overdue_reported = true;
            let detail = format!(
                "no confirmed pop-up within {} ms of credited time",
                self.profile.popup.max_gap_ms
            );
            self.find(RuleId::R3PopupCheck, Reason::PopupOverdue, ev, detail, true);
        }
    }

    fn push_span(
        &mut self,
        from: Millis,
        to: Millis,
        credited: bool,
        reason: Option<Reason>,
        video: Option<[i64; 2]>,
        ev: &EventRef,
    ) {
        if to <= from {
            return;
        }
        let span = Span {
            from,
            to,
            video,
            credited,
            reason,
            evidence: Some(ev.clone()),
        };
        if self.timeline.len() > self.popup_barrier
            && let Some(last) = self.timeline.last_mut()
            && merge(last, &span)
        {
            return;
        }
        // Once closed spans are released, the list mostly holds the one open span.
        push_small(&mut self.timeline, span);
    }

    /// Relabels every credited span of the provisional window as uncredited `reason`, and
    /// starts a new window. Returns the voided ms.
    fn void_provisional(&mut self, reason: Reason, ev: &EventRef) -> i64 {
        let mut voided = 0;
        let tail: Vec<Span> = self.timeline.drain(self.popup_barrier..).collect();
        for mut s in tail {
            if s.credited {
                voided += s.to.saturating_sub(s.from);
                s.credited = false;
                s.reason = Some(reason);
                s.evidence = Some(ev.clone());
            }
            let merged = self.timeline.len() > self.popup_barrier
                && self.timeline.last_mut().is_some_and(|l| merge(l, &s));
            if !merged {
                self.timeline.push(s);
            }
        }
        self.credited_ms -= voided;
        self.credit_since_face = (self.credit_since_face - voided).max(0);
        self.confirm_window();
        voided
    }

    /// Starts a new provisional window: what came before is final.
    fn confirm_window(&mut self) {
        self.credit_since_popup = 0;
        self.popup_barrier = self.timeline.len();
        self.overdue_reported = false;
    }

    fn find(&mut self, rule: RuleId, code: Reason, ev: &EventRef, detail: String, violates: bool) {
        self.ev_mut()
            .findings
            .entry(rule)
            .or_default()
            .push(Finding {
                code,
                at: ev.at,
                evidence: vec![ev.clone()],
                detail,
            });
        if violates {
            self.ev_mut().violated.insert(rule);
        }
    }

    fn running(&self) -> bool {
        self.started_at.is_some() && self.termination.is_none()
    }

    fn set_rate(&mut self, t: Millis, rate_permille: i32, ev: &EventRef) {
        let before = r1::rate_exceeds(&self.profile, self.rate_permille);
        self.rate_permille = rate_permille;
        let after = r1::rate_exceeds(&self.profile, rate_permille);
        if after && !before && self.running() {
            let detail = format!(
                "playback rate {rate_permille}‰ above the maximum {}‰",
                r1::max_rate_permille(&self.profile)
            );
            self.find(
                RuleId::R1NoFastForward,
                Reason::PlaybackRate,
                ev,
                detail,
                true,
            );
        }
        if after != before && self.playing {
            self.anchor = Some((t, self.position));
        }
    }

    fn set_playing(&mut self, t: Millis, playing: bool, position: i64) {
        self.position = position;
        if playing && !self.playing {
            self.anchor = Some((t, position));
        }
        if !playing {
            self.anchor = None;
        }
        self.playing = playing;
    }

    fn set_page(&mut self, visible: bool, focused: bool, ev: &EventRef) {
        if self.running() && self.visible && !visible {
            self.find(
                RuleId::R2SingleWindow,
                Reason::PageHidden,
                ev,
                "page hidden".to_owned(),
                false,
            );
        } else if self.running() && self.visible && visible && self.focused && !focused {
            self.find(
                RuleId::R2SingleWindow,
                Reason::WindowUnfocused,
                ev,
                "window lost focus".to_owned(),
                false,
            );
        }
        self.visible = visible;
        self.focused = focused;
    }

    fn take_outstanding(&mut self, nonce: &str) -> Option<Outstanding> {
        let i = self
            .ev()
            .outstanding
            .iter()
            .position(|o| o.nonce == nonce)?;
        Some(self.remove_outstanding(i))
    }

    /// Removes the outstanding challenge `nonce` only if it is of `kind`.
    fn take_outstanding_kind(&mut self, nonce: &str, kind: ChallengeKind) -> Option<Outstanding> {
        let i = self
            .ev()
            .outstanding
            .iter()
            .position(|o| o.nonce == nonce && o.kind == kind)?;
        Some(self.remove_outstanding(i))
    }

    /// Challenges are outstanding for seconds at a time: the list's memory goes when it empties.
    fn remove_outstanding(&mut self, i: usize) -> Outstanding {
        let ev = self.ev_mut();
        let o = ev.outstanding.remove(i);
        if ev.outstanding.is_empty() {
            ev.outstanding = Vec::new();
        }
        self.tidy();
        o
    }

    fn resolve(&mut self, nonce: &str, outcome: ChallengeOutcome, answered_at: Option<Millis>) {
        let challenges = self.ev.as_deref_mut().map(|e| &mut e.challenges);
        if let Some(c) = challenges.and_then(|c| c.iter_mut().rev().find(|c| c.nonce == nonce)) {
            c.outcome = outcome;
            c.answered_at = answered_at;
            c.response_ms = answered_at.map(|a| a.saturating_sub(c.issued_at));
        }
    }

    fn popup_missed(
        &mut self,
        o: &Outstanding,
        ev: &EventRef,
        why: &str,
        answered_at: Option<Millis>,
    ) {
        self.resolve(&o.nonce, ChallengeOutcome::Missed, answered_at);
        let voided = self.void_provisional(Reason::PopupMissed, ev);
        let detail = format!(
            "pop-up {} {why}; {voided} ms since the last confirmed check voided",
            o.nonce
        );
        self.find(RuleId::R3PopupCheck, Reason::PopupMissed, ev, detail, true);
    }

    fn face_failed(&mut self, ev: &EventRef, detail: String) {
        self.face = FaceState::Failed;
        self.flagged = true;
        self.credit_since_face = 0;
        self.find(
            RuleId::R4FaceLiveness,
            Reason::FaceCheckFailed,
            ev,
            detail,
            true,
        );
    }

    /// The verdict as of the last folded event. After a [`SessionFold::release`] it is a
    /// head: its totals cover the whole session, its lists start after the released records
    /// ([`SessionVerdict::restore`] puts them back).
    pub fn verdict(&self) -> SessionVerdict {
        let started_at = self.started_at.unwrap_or(self.last_at);
        let mut uncredited: BTreeMap<Reason, i64> =
            self.released_uncredited.iter().copied().collect();
        let mut credited_ms = self.released_credited;
        for s in &self.timeline {
            let len = s.to.saturating_sub(s.from);
            match s.reason {
                Some(r) if !s.credited => *uncredited.entry(r).or_default() += len,
                Some(_) | None => credited_ms += len,
            }
        }
        let lesson_coverage_ms = r1::union_total(&self.ctx.prior_coverage, &self.coverage);
        let dur = self.ctx.lesson_duration_ms;
        let rules = RuleId::ALL
            .iter()
            .map(|&rule| match rule {
                RuleId::R1NoFastForward
                | RuleId::R2SingleWindow
                | RuleId::R3PopupCheck
                | RuleId::R4FaceLiveness
                | RuleId::R6RandomSnapshots => result(
                    rule,
                    self.ev().violated.contains(&rule),
                    self.ev().findings.get(&rule).cloned().unwrap_or_default(),
                ),
                // R5 is decided at admission and by the enrolment fold; R7, R8 per enrolment.
                RuleId::R5SequentialLessons
                | RuleId::R7OnlineShareCap
                | RuleId::R8LessonHourLength => not_applicable(rule),
            })
            .collect();
        SessionVerdict {
            session_id: self.ctx.session_id.clone(),
            learner_id: self.ctx.learner_id.clone(),
            lesson_id: self.ctx.lesson_id.clone(),
            profile: self.profile.reference(),
            started_at,
            last_event_at: self.last_at.max(started_at),
            ended: self.termination.is_some(),
            termination: self.termination.map(|(_, r)| r),
            wall_ms: self.last_at.saturating_sub(started_at),
            credited_ms,
            provisional_ms: self.credit_since_popup,
            uncredited: uncredited
                .into_iter()
                .map(|(reason, ms)| ReasonTotal { reason, ms })
                .collect(),
            coverage: self.coverage.clone(),
            lesson_coverage_ms,
            lesson_duration_ms: dur,
            lesson_complete: lesson_coverage_ms
                >= dur - self.profile.fast_forward.coverage_slack_ms,
            timeline: self.timeline.clone(),
            rules,
            challenges: self.ev().challenges.clone(),
            face_checks: self.ev().face_checks.clone(),
            snapshots: self.ev().snapshots.clone(),
            signals: self.ev().signals.clone(),
            flagged_for_review: self.flagged,
            // Every credited ms already survived every rule: violations void exactly the time
            // they affect, so a session counts when any credit is left.
            counts: credited_ms > 0,
            events_folded: self.events_folded,
            reviewed_by: vec![],
        }
    }

    /// The earliest server time at which a server event (a timer, a challenge) can be
    /// appended without sorting before what was already folded: `now`, moved past the last
    /// folded event (a server event sorts before a client event of the same millisecond).
    pub fn next_server_at(&self, now: Millis) -> Millis {
        match self.last_key {
            Some((at, Origin::Client, _)) if now <= at => at.plus(1),
            Some((at, Origin::Server | Origin::Client, _)) => now.max(at),
            None => now,
        }
    }

    pub fn outstanding(&self) -> Vec<Outstanding> {
        self.ev().outstanding.clone()
    }

    pub fn ended(&self) -> bool {
        self.termination.is_some()
    }
    /// Whether `SessionStarted` was folded.
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }
    pub fn started_at(&self) -> Option<Millis> {
        self.started_at
    }
    pub fn credited_ms(&self) -> i64 {
        self.credited_ms
    }
    /// Credited (provisional) time since the last confirmed pop-up, or since the start.
    pub fn credit_since_popup_ms(&self) -> i64 {
        self.credit_since_popup
    }
    /// Credited time since the last passed face check.
    pub fn credit_since_face_check_ms(&self) -> i64 {
        self.credit_since_face
    }
    pub fn face_passed(&self) -> bool {
        self.face == FaceState::Passed
    }
    pub fn last_event_at(&self) -> Millis {
        self.last_at
    }
    /// Highest sequence number folded for an origin (0 when none).
    pub fn last_seq(&self, origin: Origin) -> u64 {
        match origin {
            Origin::Server => self.server_seqs.max(),
            Origin::Client => self.max_seq_client,
        }
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// The shared profile (cheap to clone).
    pub fn profile_shared(&self) -> &Arc<Profile> {
        &self.profile
    }
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

/// The position an event claims, if any.
fn claim(body: &EventBody) -> Option<i64> {
    match body {
        EventBody::Played { position_ms }
        | EventBody::Paused { position_ms }
        | EventBody::RateChanged { position_ms, .. }
        | EventBody::Heartbeat { position_ms, .. }
        | EventBody::VisibilityChanged { position_ms, .. }
        | EventBody::FocusChanged { position_ms, .. } => Some(*position_ms),
        EventBody::Seeked { from_ms, .. } => Some(*from_ms),
        EventBody::Terminated { position_ms, .. } => *position_ms,
        EventBody::SessionStarted
        | EventBody::ChallengeIssued { .. }
        | EventBody::ChallengeExpired { .. }
        | EventBody::FaceChecked { .. }
        | EventBody::SnapshotStored { .. }
        | EventBody::ConcurrentSessionRefused { .. }
        | EventBody::Initialized { .. }
        | EventBody::ChallengeAnswered { .. }
        | EventBody::Signal { .. } => None,
    }
}

/// Extends `last` by `next` when they are contiguous with the same status; credited spans
/// also need contiguous video. Returns whether it merged.
fn merge(last: &mut Span, next: &Span) -> bool {
    if last.to != next.from || last.credited != next.credited || last.reason != next.reason {
        return false;
    }
    let video = match (last.video, next.video) {
        (None, None) => None,
        (Some([a, b]), Some([c, d])) if b == c => Some([a, d]),
        (Some(_) | None, Some(_) | None) if !last.credited => None,
        (Some(_) | None, Some(_) | None) => return false,
    };
    last.to = next.to;
    last.video = video;
    last.evidence.clone_from(&next.evidence);
    true
}
