//! The enrolment fold: a learner's session verdicts across a course's ordered lessons,
//! cut into 课时 (R8), checked for snapshots per 课时 (R6), order (R5) and the class's
//! online share cap (R7). PLACEHOLDER BODY: the full fold is being written.

use super::ids::{EnrolmentId, LearnerId, LessonId};
use super::profile::Profile;
use super::verdict::{EnrolmentVerdict, SessionVerdict};

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

pub fn enrolment_verdict(profile: &Profile, input: &EnrolmentInput) -> EnrolmentVerdict {
    EnrolmentVerdict {
        enrolment_id: input.enrolment_id.clone(),
        learner_id: input.learner_id.clone(),
        profile: profile.reference(),
        lessons: vec![],
        credited_ms: 0,
        lesson_hours: 0,
        lesson_hour_records: vec![],
        online_cap_hours: None,
        planned_online_hours: input.planned_online_hours,
        planned_total_hours: input.planned_total_hours,
        online_share_permille: 0,
        uncredited: vec![],
        rules: vec![],
        all_lessons_complete: false,
        counts: false,
        flagged_for_review: false,
        reviewed_by: vec![],
    }
}
