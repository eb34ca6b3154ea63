//! Records the service keeps about platforms, courses, classes, learners, enrolments and
//! sessions, as stored and as the API returns them. Plain data: validation lives in `app`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Millis, ProfileRef};

/// A training platform (an OAuth2 client of the API).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Platform {
    pub id: String,
    pub name: String,
    /// Province code (GB/T 2260 first two digits, e.g. "41" for Henan).
    pub province: String,
    pub client_id: String,
    pub registered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banned_since: Option<Millis>,
    pub created_at: Millis,
}

/// One lesson of a course.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Lesson {
    pub id: String,
    pub course_id: String,
    /// 1-based order within the course (R5).
    pub position: u32,
    pub title: String,
    pub duration_ms: i64,
    /// sha256 of the video file, hex (R13).
    pub content_hash: String,
    /// Whether the province approved this content hash (R13).
    pub approved: bool,
}

/// A course: ordered lessons.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Course {
    pub id: String,
    pub platform_id: String,
    pub title: String,
    pub lessons: Vec<Lesson>,
    pub created_at: Millis,
}

/// A subsidised training class, bound to a profile version for its whole life.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Class {
    pub id: String,
    pub platform_id: String,
    pub course_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupation: Option<String>,
    /// The city or county (six-digit GB/T 2260 code), when the platform named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub profile: ProfileRef,
    /// Planned total hours of the class, in 课时.
    pub planned_total_hours: u32,
    /// Planned online (theory) hours, in 课时 (R7: at most the profile's share of the total).
    pub planned_online_hours: u32,
    pub created_at: Millis,
}

/// A real-name learner. The ID number is kept only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Learner {
    pub id: String,
    pub platform_id: String,
    /// The platform's own id for the learner.
    pub external_ref: String,
    pub real_name: String,
    /// The learner gave separate consent to face processing (PIPL). Without it only the
    /// non-face alternative check is offered.
    pub face_consent: bool,
    pub created_at: Millis,
}

/// A learner in a class.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Enrolment {
    pub id: String,
    pub class_id: String,
    pub learner_id: String,
    pub enrolled_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examined_at: Option<Millis>,
}

/// A learning session as stored (its verdict is separate).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionRecord {
    pub id: String,
    pub enrolment_id: String,
    pub learner_id: String,
    pub lesson_id: String,
    pub platform_id: String,
    pub profile: ProfileRef,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
}

/// A stored snapshot image (evidence, R6).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub id: String,
    pub session_id: String,
    pub nonce: String,
    pub sha256: String,
    pub content_type: String,
    pub bytes: i64,
    pub at: Millis,
}
