//! Enrolments as reviewers see them: each learner's enrolment verdict (课时 counted, lessons,
//! make-up sessions awaiting verification, R16) in the reviewer's scope, riskiest first.
//! Invariant: an enrolment outside the scope is "not found", and every view is audited.

use std::collections::BTreeMap;

use super::Reviewer;
use crate::adapters::store::review::ReviewSessionRow;
use crate::app::{App, AppError, AppResult};
use crate::domain::verdict::EnrolmentVerdict;

/// One enrolment row of the queue.
#[derive(Debug, Clone)]
pub struct EnrolmentItem {
    pub enrolment_id: String,
    pub learner_name: String,
    pub platform_name: String,
    pub class_id: String,
    pub class_name: String,
    pub verdict: EnrolmentVerdict,
    /// Make-up sessions not yet confirmed by two reviewers.
    pub make_ups_awaiting: Vec<String>,
    pub risk: i64,
}

/// Make-ups (R16) that still wait for their two-person confirmation.
fn awaiting(v: &EnrolmentVerdict) -> Vec<String> {
    v.lessons
        .iter()
        .flat_map(|l| l.make_ups.iter())
        .filter(|m| !m.verified)
        .map(|m| m.session.as_str().to_owned())
        .collect()
}

/// Riskier first: make-ups to verify, flagged sessions, violated rules, not counting.
fn risk(v: &EnrolmentVerdict, awaiting: usize) -> i64 {
    let violated = v
        .rules
        .iter()
        .filter(|r| r.status == crate::domain::RuleStatus::Violated)
        .count();
    i64::try_from(awaiting * 40 + violated * 10).unwrap_or(i64::MAX)
        + if v.flagged_for_review { 30 } else { 0 }
        + if v.counts { 0 } else { 5 }
}

impl App {
    async fn enrolment_item(&self, s: &ReviewSessionRow) -> AppResult<EnrolmentItem> {
        let platform = self
            .store
            .platform(&s.platform_id)
            .await?
            .ok_or(AppError::NotFound("enrolment"))?;
        let verdict = self
            .enrolment_summary(&platform, &s.enrolment_id)
            .await?
            .verdict;
        let make_ups_awaiting = awaiting(&verdict);
        Ok(EnrolmentItem {
            enrolment_id: s.enrolment_id.clone(),
            learner_name: s.learner_name.clone(),
            platform_name: s.platform_name.clone(),
            class_id: s.class_id.clone(),
            class_name: s.class_name.clone(),
            risk: risk(&verdict, make_ups_awaiting.len()),
            make_ups_awaiting,
            verdict,
        })
    }

    /// The enrolments with sessions in the reviewer's scope, riskiest first (at most 200).
    pub async fn review_enrolments(&self, who: &Reviewer) -> AppResult<Vec<EnrolmentItem>> {
        let rows = self.store.review_sessions(&who.scope(), 1000).await?;
        let mut first: BTreeMap<String, ReviewSessionRow> = BTreeMap::new();
        for r in rows {
            first.entry(r.enrolment_id.clone()).or_insert(r);
        }
        let mut out = Vec::with_capacity(first.len());
        for s in first.values().take(200) {
            out.push(self.enrolment_item(s).await?);
        }
        out.sort_by(|a, b| {
            b.risk
                .cmp(&a.risk)
                .then_with(|| a.enrolment_id.cmp(&b.enrolment_id))
        });
        Ok(out)
    }

    /// One enrolment in the reviewer's scope (else not found); the view is audited.
    pub async fn review_enrolment(&self, who: &Reviewer, id: &str) -> AppResult<EnrolmentItem> {
        let enrolment = self
            .store
            .enrolment(id)
            .await?
            .ok_or(AppError::NotFound("enrolment"))?;
        let rows = self
            .store
            .review_sessions_of_class(&enrolment.class_id, &who.scope())
            .await?;
        let Some(s) = rows.iter().find(|r| r.enrolment_id == id) else {
            return Err(AppError::NotFound("enrolment"));
        };
        let item = self.enrolment_item(s).await?;
        self.audit(&who.id, "view_enrolment", &who.province, id, "")
            .await?;
        Ok(item)
    }
}
