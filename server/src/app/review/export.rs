//! The per-class export for the provincial system (docs/export.md): each learner's credited
//! 课时, whether the training counts, the rule results, and each session's effective decision
//! with its two signers. JSON is the full form; CSV has one row per session.

use serde::Serialize;

use super::{Reviewer, effective};
use crate::app::{App, AppError, AppResult};
use crate::domain::{Profile, RuleStatus, SessionVerdict};

#[derive(Debug, Clone, Serialize)]
pub struct ClassExport {
    pub class_id: String,
    pub class_name: String,
    pub platform_id: String,
    pub province: String,
    pub profile: crate::domain::ProfileRef,
    pub exported_at: crate::domain::Millis,
    pub learners: Vec<LearnerExport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LearnerExport {
    pub learner_id: String,
    pub real_name: String,
    pub enrolment_id: String,
    /// Whole 课时 that count (R6, R7, R8 applied).
    pub lesson_hours: u32,
    pub credited_ms: i64,
    /// Whether the online training counts (the enrolment verdict).
    pub counts: bool,
    /// `rule code` → `held` / `violated` / `not_applicable`, from the enrolment verdict.
    pub rules: std::collections::BTreeMap<String, RuleStatus>,
    pub sessions: Vec<SessionExport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionExport {
    pub session_id: String,
    pub lesson_id: String,
    pub credited_ms: i64,
    pub counts: bool,
    pub violated: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionExport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionExport {
    /// `confirm` or `overturn`.
    pub outcome: String,
    pub reason_code: String,
    pub comment: String,
    /// The two signers' names, first signer first.
    pub signers: [String; 2],
    pub effective_at: crate::domain::Millis,
    /// End of the publicity period (公示, R17); the decision is final from then on.
    pub publicity_ends_at: crate::domain::Millis,
    /// Whether the publicity period has ended at export time.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl App {
    /// The export of a class in the reviewer's province (else not found); audited.
    pub async fn export_class(&self, who: &Reviewer, class_id: &str) -> AppResult<ClassExport> {
        if !self.store.class_in_province(class_id, &who.scope()).await? {
            return Err(AppError::NotFound("class"));
        }
        let class = self
            .store
            .class(class_id)
            .await?
            .ok_or(AppError::NotFound("class"))?;
        let platform = self
            .store
            .platform(&class.platform_id)
            .await?
            .ok_or(AppError::NotFound("class"))?;
        let sessions = self
            .store
            .review_sessions_of_class(class_id, &who.scope())
            .await?;
        let review = Profile::find(&class.profile)
            .map_err(|e| AppError::Internal(e.to_string()))?
            .review;
        let now = self.now();
        let mut learners = Vec::new();
        for (enrolment_id, learner_id, real_name) in
            self.store.enrolments_of_class(class_id).await?
        {
            let summary = self.enrolment_summary(&platform, &enrolment_id).await?;
            let v = summary.verdict;
            let mut out_sessions = Vec::new();
            for s in sessions.iter().filter(|s| s.enrolment_id == enrolment_id) {
                let sv: Option<SessionVerdict> = s
                    .verdict_json
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                let decisions = self.store.decisions_of_session(&s.id).await?;
                let decision = match effective(&decisions) {
                    None => None,
                    Some(d) => {
                        let ids = [d.signer1.clone(), d.signer2.clone().unwrap_or_default()];
                        let names = self.store.reviewer_names(&ids).await?;
                        let name = |id: &str| {
                            names
                                .iter()
                                .find(|(i, _)| i == id)
                                .map_or_else(|| id.to_owned(), |(_, n)| n.clone())
                        };
                        let effective_at = d.signed2_at.unwrap_or(d.signed1_at);
                        let publicity_ends_at = super::publicity::publicity_end(
                            effective_at,
                            review.publicity_days,
                            review.publicity_working_days,
                        );
                        Some(DecisionExport {
                            publicity_ends_at,
                            is_final: now >= publicity_ends_at,
                            outcome: d.outcome.clone(),
                            reason_code: d.reason_code.clone(),
                            comment: d.comment.clone(),
                            signers: [name(&ids[0]), name(&ids[1])],
                            effective_at,
                        })
                    }
                };
                out_sessions.push(SessionExport {
                    session_id: s.id.clone(),
                    lesson_id: s.lesson_id.clone(),
                    credited_ms: sv.as_ref().map_or(0, |v| v.credited_ms),
                    counts: sv.as_ref().is_some_and(|v| v.counts),
                    violated: sv
                        .iter()
                        .flat_map(|v| v.rules.iter())
                        .filter(|r| r.status == RuleStatus::Violated)
                        .map(|r| r.rule.code())
                        .collect(),
                    decision,
                });
            }
            learners.push(LearnerExport {
                learner_id,
                real_name,
                enrolment_id,
                lesson_hours: v.lesson_hours,
                credited_ms: v.credited_ms,
                counts: v.counts,
                rules: v
                    .rules
                    .iter()
                    .map(|r| (r.rule.code().to_owned(), r.status))
                    .collect(),
                sessions: out_sessions,
            });
        }
        self.audit(
            &who.id,
            "export_class",
            &who.province,
            class_id,
            &format!("learners={}", learners.len()),
        )
        .await?;
        Ok(ClassExport {
            class_id: class.id,
            class_name: class.name,
            platform_id: platform.id,
            province: platform.province,
            profile: class.profile,
            exported_at: self.now(),
            learners,
        })
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// CSV (RFC 4180, UTF-8, header row): one row per session, the learner's columns repeated.
pub fn to_csv(e: &ClassExport) -> String {
    let mut out = String::from(
        "class_id,learner_id,real_name,enrolment_id,lesson_hours,enrolment_credited_ms,enrolment_counts,enrolment_rules_violated,session_id,lesson_id,session_credited_ms,session_counts,session_rules_violated,decision,decision_reason,signer1,signer2,decision_effective_at,publicity_ends_at,final\r\n",
    );
    for l in &e.learners {
        let rules: Vec<&str> = l
            .rules
            .iter()
            .filter(|(_, s)| **s == RuleStatus::Violated)
            .map(|(k, _)| k.as_str())
            .collect();
        let learner_cols = [
            csv_field(&e.class_id),
            csv_field(&l.learner_id),
            csv_field(&l.real_name),
            csv_field(&l.enrolment_id),
            l.lesson_hours.to_string(),
            l.credited_ms.to_string(),
            l.counts.to_string(),
            csv_field(&rules.join(";")),
        ];
        let mut push = |session_cols: [String; 12]| {
            out.push_str(
                &learner_cols
                    .iter()
                    .chain(session_cols.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push_str("\r\n");
        };
        if l.sessions.is_empty() {
            push(Default::default());
        }
        for s in &l.sessions {
            let d = s.decision.as_ref();
            push([
                csv_field(&s.session_id),
                csv_field(&s.lesson_id),
                s.credited_ms.to_string(),
                s.counts.to_string(),
                csv_field(&s.violated.join(";")),
                d.map(|d| d.outcome.clone()).unwrap_or_default(),
                d.map(|d| csv_field(&d.reason_code)).unwrap_or_default(),
                d.map(|d| csv_field(&d.signers[0])).unwrap_or_default(),
                d.map(|d| csv_field(&d.signers[1])).unwrap_or_default(),
                d.map(|d| d.effective_at.0.to_string()).unwrap_or_default(),
                d.map(|d| d.publicity_ends_at.0.to_string())
                    .unwrap_or_default(),
                d.map(|d| d.is_final.to_string()).unwrap_or_default(),
            ]);
        }
    }
    out
}
