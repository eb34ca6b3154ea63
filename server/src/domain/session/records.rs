//! Evidence a fold hands off. The front of each of a verdict's lists is *closed*: timeline
//! spans before the last confirmed pop-up (never merged or relabelled again), challenges that
//! are no longer pending, and every face check, snapshot, signal and finding (never changed
//! once recorded). A worker stores closed records beside the session's verdict and then
//! releases them from its fold ([`SessionFold::release`]), so a long session does not keep its
//! whole history in memory. The fold's verdict after a release is a *head*: totals over the
//! whole session, lists without the released front. [`SessionVerdict::restore`] puts the
//! stored records back in front, giving the verdict a fold that released nothing gives.

use serde::{Deserialize, Serialize};

use super::super::verdict::{
    ChallengeOutcome, ChallengeRecord, FaceCheckRecord, Finding, RuleId, SessionVerdict,
    SignalRecord, SnapshotRecord, Span,
};
use super::SessionFold;

/// One of a verdict's evidence lists (findings: one list per rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordList {
    Timeline,
    Challenges,
    FaceChecks,
    Snapshots,
    Signals,
    Findings(RuleId),
}

impl RecordList {
    /// The stable name a store keeps the list under.
    pub fn key(self) -> &'static str {
        match self {
            RecordList::Timeline => "timeline",
            RecordList::Challenges => "challenges",
            RecordList::FaceChecks => "face_checks",
            RecordList::Snapshots => "snapshots",
            RecordList::Signals => "signals",
            RecordList::Findings(rule) => match rule {
                RuleId::R1NoFastForward => "findings.R1_no_fast_forward",
                RuleId::R2SingleWindow => "findings.R2_single_window",
                RuleId::R3PopupCheck => "findings.R3_popup_check",
                RuleId::R4FaceLiveness => "findings.R4_face_liveness",
                RuleId::R5SequentialLessons => "findings.R5_sequential_lessons",
                RuleId::R6RandomSnapshots => "findings.R6_random_snapshots",
                RuleId::R7OnlineShareCap => "findings.R7_online_share_cap",
                RuleId::R8LessonHourLength => "findings.R8_lesson_hour_length",
            },
        }
    }

    /// The list a [`RecordList::key`] names.
    pub fn from_key(key: &str) -> Option<RecordList> {
        let fixed = [
            RecordList::Timeline,
            RecordList::Challenges,
            RecordList::FaceChecks,
            RecordList::Snapshots,
            RecordList::Signals,
        ];
        fixed
            .into_iter()
            .chain(RuleId::ALL.into_iter().map(RecordList::Findings))
            .find(|l| l.key() == key)
    }
}

/// A closed record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Span(Span),
    Challenge(ChallengeRecord),
    FaceCheck(FaceCheckRecord),
    Snapshot(SnapshotRecord),
    Signal(SignalRecord),
    Finding(RuleId, Finding),
}

impl Record {
    pub fn list(&self) -> RecordList {
        match self {
            Record::Span(_) => RecordList::Timeline,
            Record::Challenge(_) => RecordList::Challenges,
            Record::FaceCheck(_) => RecordList::FaceChecks,
            Record::Snapshot(_) => RecordList::Snapshots,
            Record::Signal(_) => RecordList::Signals,
            Record::Finding(rule, _) => RecordList::Findings(*rule),
        }
    }
}

/// A number per evidence list: how many records a fold released (the head's lists start
/// there), or how many are closed. Counts are absolute: from the session's first record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCounts {
    pub timeline: u32,
    pub challenges: u32,
    pub face_checks: u32,
    pub snapshots: u32,
    pub signals: u32,
    /// Per rule, in [`RuleId::ALL`] order.
    pub findings: [u32; 8],
}

impl RecordCounts {
    pub fn is_zero(&self) -> bool {
        *self == RecordCounts::default()
    }

    pub fn get(&self, list: RecordList) -> u32 {
        match list {
            RecordList::Timeline => self.timeline,
            RecordList::Challenges => self.challenges,
            RecordList::FaceChecks => self.face_checks,
            RecordList::Snapshots => self.snapshots,
            RecordList::Signals => self.signals,
            RecordList::Findings(rule) => self.findings[rule.index()],
        }
    }

    /// The sum over every rule's findings.
    pub fn findings_total(&self) -> u32 {
        self.findings.iter().sum()
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Drops `v`'s items below absolute index `to` (`v` starts at `released`), passing each to
/// `gone`, counts them as released, and gives memory back once the rest is much smaller.
fn release_front<T>(v: &mut Vec<T>, released: &mut u32, to: u32, gone: impl FnMut(T)) {
    let n = usize::try_from(to.saturating_sub(*released))
        .unwrap_or(usize::MAX)
        .min(v.len());
    v.drain(..n).for_each(gone);
    *released += count(n);
    if v.is_empty() {
        *v = Vec::new();
    } else if v.capacity() > 2 * v.len() + 4 {
        v.shrink_to_fit();
    }
}

/// Appends copies of `items[from..upto]` (absolute indices; `items` starts at `base`, the
/// released count) with their indices, cloning nothing outside that range.
fn copy_closed<T: Clone>(
    out: &mut Vec<(u32, Record)>,
    (base, from, upto): (u32, u32, u32),
    items: &[T],
    wrap: impl Fn(T) -> Record,
) {
    let start = from.max(base);
    let lo = usize::try_from(start - base).unwrap_or(usize::MAX);
    let hi = usize::try_from(upto.saturating_sub(base)).unwrap_or(0);
    for (i, item) in (start..).zip(items.get(lo..hi).unwrap_or_default()) {
        out.push((i, wrap(item.clone())));
    }
}

impl SessionFold {
    /// How many records of each list were released (the verdict head's lists start there).
    pub fn released(&self) -> RecordCounts {
        self.released
    }

    /// How many records of each list are closed (never change again), counted from the first.
    pub fn closed(&self) -> RecordCounts {
        let r = &self.released;
        let ev = self.ev();
        let pending = ev
            .challenges
            .iter()
            .position(|c| c.outcome == ChallengeOutcome::Pending)
            .unwrap_or(ev.challenges.len());
        let mut findings = r.findings;
        for (i, rule) in RuleId::ALL.iter().enumerate() {
            findings[i] += count(ev.findings.get(rule).map_or(0, Vec::len));
        }
        RecordCounts {
            timeline: r.timeline + count(self.popup_barrier),
            challenges: r.challenges + count(pending),
            face_checks: r.face_checks + count(ev.face_checks.len()),
            snapshots: r.snapshots + count(ev.snapshots.len()),
            signals: r.signals + count(ev.signals.len()),
            findings,
        }
    }

    /// Copies of the closed records from `from` on (absolute indices; those already released
    /// are not held any more and are skipped), with their indices.
    pub fn closed_records(&self, from: &RecordCounts) -> Vec<(u32, Record)> {
        let upto = self.closed();
        let r = &self.released;
        let ev = self.ev();
        let mut out = Vec::new();
        copy_closed(
            &mut out,
            (r.timeline, from.timeline, upto.timeline),
            &self.timeline,
            Record::Span,
        );
        copy_closed(
            &mut out,
            (r.challenges, from.challenges, upto.challenges),
            &ev.challenges,
            Record::Challenge,
        );
        copy_closed(
            &mut out,
            (r.face_checks, from.face_checks, upto.face_checks),
            &ev.face_checks,
            Record::FaceCheck,
        );
        copy_closed(
            &mut out,
            (r.snapshots, from.snapshots, upto.snapshots),
            &ev.snapshots,
            Record::Snapshot,
        );
        copy_closed(
            &mut out,
            (r.signals, from.signals, upto.signals),
            &ev.signals,
            Record::Signal,
        );
        for (rule, list) in &ev.findings {
            let i = rule.index();
            copy_closed(
                &mut out,
                (r.findings[i], from.findings[i], upto.findings[i]),
                list,
                |f| Record::Finding(*rule, f),
            );
        }
        out
    }

    /// Drops the closed records below `upto` (stored elsewhere) from memory. Records that are
    /// not closed, or already released, stay as they are, so any `upto` is safe; only what a
    /// store holds may be released, or the restored verdict misses it.
    pub fn release(&mut self, upto: &RecordCounts) {
        let closed = self.closed();
        let (mut credited, mut spans) = (0, 0);
        let uncredited = &mut self.released_uncredited;
        release_front(
            &mut self.timeline,
            &mut self.released.timeline,
            upto.timeline.min(closed.timeline),
            |s| {
                spans += 1;
                let len = s.to.saturating_sub(s.from);
                match s.reason {
                    Some(reason) if !s.credited => {
                        match uncredited.binary_search_by_key(&reason, |t| t.0) {
                            Ok(i) => uncredited[i].1 += len,
                            Err(i) => uncredited.insert(i, (reason, len)),
                        }
                    }
                    Some(_) | None => credited += len,
                }
            },
        );
        self.released_credited += credited;
        self.popup_barrier -= spans;
        let r = &mut self.released;
        let to = |list: RecordList| upto.get(list).min(closed.get(list));
        let Some(ev) = self.ev.as_deref_mut() else {
            return;
        };
        release_front(
            &mut ev.challenges,
            &mut r.challenges,
            to(RecordList::Challenges),
            drop,
        );
        release_front(
            &mut ev.face_checks,
            &mut r.face_checks,
            to(RecordList::FaceChecks),
            drop,
        );
        release_front(
            &mut ev.snapshots,
            &mut r.snapshots,
            to(RecordList::Snapshots),
            drop,
        );
        release_front(
            &mut ev.signals,
            &mut r.signals,
            to(RecordList::Signals),
            drop,
        );
        for rule in RuleId::ALL {
            if let Some(list) = ev.findings.get_mut(&rule) {
                let to = to(RecordList::Findings(rule));
                release_front(list, &mut r.findings[rule.index()], to, drop);
                if list.is_empty() {
                    ev.findings.remove(&rule);
                }
            }
        }
        self.tidy();
    }
}

impl SessionVerdict {
    /// Puts released records back in front of a verdict head's lists: `released` is the
    /// head's [`SessionFold::released`], `records` must hold every index below it (others are
    /// ignored). Fails, naming the list, when one is missing.
    pub fn restore(
        &mut self,
        released: &RecordCounts,
        records: Vec<(u32, Record)>,
    ) -> Result<(), String> {
        let mut records: Vec<(u32, Record)> = records
            .into_iter()
            .filter(|(i, r)| *i < released.get(r.list()))
            .collect();
        records.sort_by_key(|(i, r)| (r.list(), *i));
        records.dedup_by_key(|(i, r)| (r.list(), *i));
        let mut prefix = RecordCounts::default();
        let mut timeline = Vec::new();
        let mut challenges = Vec::new();
        let mut face_checks = Vec::new();
        let mut snapshots = Vec::new();
        let mut signals = Vec::new();
        let mut findings: Vec<(RuleId, Vec<Finding>)> = Vec::new();
        for (i, rec) in records {
            let list = rec.list();
            let next = match list {
                RecordList::Timeline => &mut prefix.timeline,
                RecordList::Challenges => &mut prefix.challenges,
                RecordList::FaceChecks => &mut prefix.face_checks,
                RecordList::Snapshots => &mut prefix.snapshots,
                RecordList::Signals => &mut prefix.signals,
                RecordList::Findings(rule) => &mut prefix.findings[rule.index()],
            };
            if i != *next {
                return Err(format!("{} record {} is missing", list.key(), *next));
            }
            *next += 1;
            match rec {
                Record::Span(s) => timeline.push(s),
                Record::Challenge(c) => challenges.push(c),
                Record::FaceCheck(f) => face_checks.push(f),
                Record::Snapshot(s) => snapshots.push(s),
                Record::Signal(s) => signals.push(s),
                Record::Finding(rule, f) => match findings.last_mut() {
                    Some((r, list)) if *r == rule => list.push(f),
                    Some(_) | None => findings.push((rule, vec![f])),
                },
            }
        }
        if prefix != *released {
            let short = [
                RecordList::Timeline,
                RecordList::Challenges,
                RecordList::FaceChecks,
                RecordList::Snapshots,
                RecordList::Signals,
            ]
            .into_iter()
            .chain(RuleId::ALL.into_iter().map(RecordList::Findings))
            .find(|l| prefix.get(*l) != released.get(*l))
            .unwrap_or(RecordList::Timeline);
            return Err(format!(
                "{} records {}..{} are missing",
                short.key(),
                prefix.get(short),
                released.get(short)
            ));
        }
        self.timeline.splice(0..0, timeline);
        self.challenges.splice(0..0, challenges);
        self.face_checks.splice(0..0, face_checks);
        self.snapshots.splice(0..0, snapshots);
        self.signals.splice(0..0, signals);
        for (rule, list) in findings {
            let Some(result) = self.rules.iter_mut().find(|r| r.rule == rule) else {
                return Err(format!("the verdict has no result for {}", rule.code()));
            };
            result.findings.splice(0..0, list);
        }
        Ok(())
    }
}
