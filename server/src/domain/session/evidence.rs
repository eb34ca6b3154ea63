//! A fold's challenges, checks and findings, held in one box that exists only while any of
//! them does: a worker's fold mostly has none between pop-ups once its closed records are
//! released (`records.rs`), so most folds pay a pointer for them, not seven lists.

use std::collections::{BTreeMap, BTreeSet};

use super::super::verdict::{
    ChallengeRecord, FaceCheckRecord, Finding, RuleId, SignalRecord, SnapshotRecord,
};
use super::{Outstanding, SessionFold};

/// A fold's challenges, checks and findings: held apart (boxed) because a worker's fold
/// mostly has none of them between pop-ups once its closed records are released.
#[derive(Debug, Clone, Default)]
pub(super) struct Evidence {
    pub(super) outstanding: Vec<Outstanding>,
    pub(super) challenges: Vec<ChallengeRecord>,
    pub(super) face_checks: Vec<FaceCheckRecord>,
    pub(super) snapshots: Vec<SnapshotRecord>,
    pub(super) signals: Vec<SignalRecord>,
    pub(super) findings: BTreeMap<RuleId, Vec<Finding>>,
    pub(super) violated: BTreeSet<RuleId>,
}

impl Evidence {
    fn is_empty(&self) -> bool {
        self.outstanding.is_empty()
            && self.challenges.is_empty()
            && self.face_checks.is_empty()
            && self.snapshots.is_empty()
            && self.signals.is_empty()
            && self.findings.is_empty()
            && self.violated.is_empty()
    }
}

/// What a fold without evidence reads.
static NO_EVIDENCE: Evidence = Evidence {
    outstanding: Vec::new(),
    challenges: Vec::new(),
    face_checks: Vec::new(),
    snapshots: Vec::new(),
    signals: Vec::new(),
    findings: BTreeMap::new(),
    violated: BTreeSet::new(),
};

impl SessionFold {
    pub(super) fn ev(&self) -> &Evidence {
        self.ev.as_deref().unwrap_or(&NO_EVIDENCE)
    }

    pub(super) fn ev_mut(&mut self) -> &mut Evidence {
        self.ev.get_or_insert_with(Box::default)
    }

    /// Frees the evidence box once everything in it is gone.
    pub(super) fn tidy(&mut self) {
        if self.ev.as_deref().is_some_and(Evidence::is_empty) {
            self.ev = None;
        }
    }
}

/// Pushes onto a list that usually holds one item at a time once its closed records are
/// released (the open span, a pending challenge): its first allocation holds one, so a
/// worker's thousands of folds do not each keep room for four; later growth is as usual.
pub(super) fn push_small<T>(v: &mut Vec<T>, item: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(item);
}
