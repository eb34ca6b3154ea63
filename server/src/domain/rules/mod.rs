//! One module per rule, R1–R8 of RULES.md. Each holds the rule's pure arithmetic and tests;
//! the session fold (`session.rs`), admission and the enrolment fold call them. Invariant:
//! no rule reads a clock or a province name: numbers come from the [`Profile`].
//!
//! [`Profile`]: super::profile::Profile

pub mod r1_no_fast_forward;
pub mod r2_single_window;
pub mod r3_popup_check;
pub mod r4_face_liveness;
pub mod r5_sequential_lessons;
pub mod r6_random_snapshots;
pub mod r7_online_share_cap;
pub mod r8_lesson_hour_length;

use super::verdict::{Finding, RuleId, RuleResult, RuleStatus};

/// A rule's result: `Violated` when `violated`, else `Held`; findings kept in order.
pub fn result(rule: RuleId, violated: bool, findings: Vec<Finding>) -> RuleResult {
    let status = if violated {
        RuleStatus::Violated
    } else {
        RuleStatus::Held
    };
    RuleResult {
        rule,
        status,
        findings,
    }
}

/// A rule that does not apply at this level.
pub fn not_applicable(rule: RuleId) -> RuleResult {
    RuleResult {
        rule,
        status: RuleStatus::NotApplicable,
        findings: vec![],
    }
}
