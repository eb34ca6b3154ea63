//! Policy profiles: the numbers behind the rules, per jurisdiction, as versioned data files
//! (`server/profiles/*.toml`). No province appears in an `if`: code reads parameters only.
//! A class stores the `(id, version)` it was created under; a verdict names it.

use serde::{Deserialize, Serialize};

/// A reference to one version of a profile, as stored on a class and printed in verdicts.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct ProfileRef {
    pub id: String,
    pub version: u32,
}

impl std::fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// What happens when a learner who holds the lease starts a second session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConcurrent {
    /// The new session is refused; the old one continues. Both facts are recorded.
    Refuse,
    /// The new session takes over; the old one is terminated. Both facts are recorded.
    Supersede,
}

/// R1 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FastForward {
    /// Reported playback may run ahead of server time, measured since the last anchor (play,
    /// seek, resume), by at most `clamp(ratio × elapsed, 500 ms, drift_tolerance_ms)`.
    pub drift_tolerance_ms: i64,
    pub drift_tolerance_ratio: f64,
    pub max_rate: f64,
    /// A lesson is complete when coverage ≥ duration − this.
    pub coverage_slack_ms: i64,
}

/// R2 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SingleWindow {
    pub lease_ttl_ms: i64,
    pub on_concurrent: OnConcurrent,
}

/// R3 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Popup {
    pub max_gap_ms: i64,
    pub answer_deadline_ms: i64,
    pub min_delay_ms: i64,
    pub max_delay_ms: i64,
}

/// R4 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Face {
    pub required_before_credit: bool,
    pub recheck_min_ms: i64,
    pub recheck_max_ms: i64,
    pub recheck_deadline_ms: i64,
    /// Keep the enrolment (real-name) photo, sealed like templates; otherwise it is dropped
    /// once the template is made.
    #[serde(default)]
    pub keep_enrolment_photo: bool,
    /// The active liveness challenge at session start; absent when the profile offers none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_challenge: Option<ActiveChallenge>,
}

/// R4: the active liveness challenge (head poses in a random order, checked across frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveChallenge {
    /// When true, no face check counts as the session's first pass unless it answers an
    /// active challenge; when false the challenge is offered and a plain check also passes.
    pub required: bool,
    /// How many poses the challenge asks for (2 to 6).
    pub steps: u32,
    /// Time to answer, from issue.
    pub deadline_ms: i64,
}

/// R6 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshots {
    pub per_lesson_hour: u32,
    pub answer_deadline_ms: i64,
    pub retention_days: u32,
}

/// R7 parameters; absent when the source states no cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnlineCap {
    pub max_online_share: f64,
}

/// R8 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LessonHour {
    pub minutes: u32,
}

/// R9, R10, R12 parameters: checks on a class plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub min_practical_share: f64,
    pub max_class_size: u32,
    #[serde(default)]
    pub offline_hours_min: Option<u32>,
    #[serde(default)]
    pub fully_online_occupations: Vec<String>,
    #[serde(default)]
    pub offline_required_occupations: Vec<String>,
    #[serde(default)]
    pub exam_months: Vec<u32>,
}

/// R11 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    pub retraining_cooldown_days: u32,
}

/// R17 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub signers: u32,
    pub publicity_days: u32,
    pub publicity_working_days: bool,
}

/// R16 parameters (补课).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeUp {
    /// A make-up session (a lesson studied again after a session on it that did not count)
    /// counts toward attendance only once reviewers' effective decision confirms it.
    pub requires_review: bool,
}

/// One version of one jurisdiction's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub source: String,
    pub fast_forward: FastForward,
    pub single_window: SingleWindow,
    pub popup: Popup,
    pub face: Face,
    pub snapshots: Snapshots,
    #[serde(default)]
    pub online_cap: Option<OnlineCap>,
    pub lesson_hour: LessonHour,
    pub plan: Plan,
    pub enrolment: Enrolment,
    pub review: Review,
    /// Absent in profiles that predate R16: make-up sessions then count like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make_up: Option<MakeUp>,
}

/// Why a profile file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile is not valid TOML for the profile schema: {0}")]
    Parse(String),
    #[error("profile {profile} is inconsistent: {why}")]
    Invalid { profile: String, why: String },
    #[error("no policy profile {0}")]
    Unknown(String),
}

/// The profiles shipped with the binary. Each is a data file; adding a jurisdiction is
/// adding a file here, not a branch in the rules.
const BUILTIN: &[&str] = &[
    include_str!("../../profiles/henan-2023.toml"),
    include_str!("../../profiles/huangchuan-2021.toml"),
    include_str!("../../profiles/henan-2023-v2.toml"),
    include_str!("../../profiles/huangchuan-2021-v2.toml"),
];

/// The profile a class gets when the platform names none.
pub const DEFAULT_PROFILE: &str = "henan-2023";

impl Profile {
    /// Parses and validates one profile file.
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Every built-in profile, all versions.
    pub fn builtin() -> Result<Vec<Profile>, ProfileError> {
        BUILTIN.iter().map(|t| Profile::parse(t)).collect()
    }

    /// The newest built-in version of profile `id`.
    pub fn latest(id: &str) -> Result<Profile, ProfileError> {
        Profile::builtin()?
            .into_iter()
            .filter(|p| p.id == id)
            .max_by_key(|p| p.version)
            .ok_or_else(|| ProfileError::Unknown(id.to_owned()))
    }

    /// A specific built-in version.
    pub fn find(r: &ProfileRef) -> Result<Profile, ProfileError> {
        Profile::builtin()?
            .into_iter()
            .find(|p| p.id == r.id && p.version == r.version)
            .ok_or_else(|| ProfileError::Unknown(r.to_string()))
    }

    pub fn reference(&self) -> ProfileRef {
        ProfileRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    /// One 课时 in milliseconds.
    pub fn lesson_hour_ms(&self) -> i64 {
        i64::from(self.lesson_hour.minutes) * super::time::MINUTE
    }

    /// The R1 tolerance after `interval_ms` of server time since the playback anchor.
    pub fn drift_tolerance_ms(&self, interval_ms: i64) -> i64 {
        let ff = &self.fast_forward;
        // Truncation is intended: tolerances are whole milliseconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let by_ratio = (interval_ms.max(0) as f64 * ff.drift_tolerance_ratio) as i64;
        by_ratio.clamp(500, ff.drift_tolerance_ms.max(500))
    }

    fn validate(&self) -> Result<(), ProfileError> {
        let bad = |why: &str| {
            Err(ProfileError::Invalid {
                profile: format!("{}@{}", self.id, self.version),
                why: why.to_owned(),
            })
        };
        let pop = &self.popup;
        if pop.max_gap_ms <= 0 || pop.answer_deadline_ms <= 0 {
            return bad("popup gaps and deadlines must be positive");
        }
        if !(0 < pop.min_delay_ms && pop.min_delay_ms <= pop.max_delay_ms) {
            return bad("popup.min_delay_ms must be positive and at most max_delay_ms");
        }
        if pop.max_delay_ms > pop.max_gap_ms {
            return bad("popup.max_delay_ms must not exceed max_gap_ms");
        }
        if self.face.recheck_min_ms > self.face.recheck_max_ms || self.face.recheck_min_ms <= 0 {
            return bad("face.recheck_min_ms must be positive and at most recheck_max_ms");
        }
        if let Some(a) = &self.face.active_challenge
            && (!(2..=6).contains(&a.steps) || a.deadline_ms <= 0)
        {
            return bad("face.active_challenge needs 2 to 6 steps and a positive deadline");
        }
        if self.lesson_hour.minutes == 0 {
            return bad("lesson_hour.minutes must be positive");
        }
        if self.fast_forward.max_rate <= 0.0
            || !(0.0..=1.0).contains(&self.fast_forward.drift_tolerance_ratio)
        {
            return bad(
                "fast_forward.max_rate must be positive and drift_tolerance_ratio in 0..=1",
            );
        }
        if let Some(cap) = &self.online_cap
            && !(0.0..=1.0).contains(&cap.max_online_share)
        {
            return bad("online_cap.max_online_share must be within 0..=1");
        }
        if self.single_window.lease_ttl_ms <= 0 || self.snapshots.answer_deadline_ms <= 0 {
            return bad("lease TTL and snapshot deadline must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_differ_only_in_data() {
        let all = Profile::builtin().expect("built-in profiles parse");
        let henan = all.iter().find(|p| p.id == "henan-2023").expect("henan");
        let hc = all
            .iter()
            .find(|p| p.id == "huangchuan-2021")
            .expect("huangchuan");
        assert_eq!(
            henan.online_cap.as_ref().map(|c| c.max_online_share),
            Some(0.40)
        );
        assert!(
            hc.online_cap.is_none(),
            "the 40 % cap is not stated for Huangchuan"
        );
        assert!((hc.plan.min_practical_share - 0.65).abs() < 1e-9);
        assert_eq!(hc.review.publicity_days, 3);
        assert_eq!(henan.popup.max_gap_ms, 300_000);
        assert_eq!(henan.lesson_hour_ms(), 40 * 60 * 1000);
    }

    #[test]
    fn default_profile_is_builtin() {
        assert_eq!(
            Profile::latest(DEFAULT_PROFILE).expect("default").id,
            DEFAULT_PROFILE
        );
        assert!(matches!(
            Profile::latest("atlantis-1999"),
            Err(ProfileError::Unknown(_))
        ));
    }

    #[test]
    fn inconsistent_profiles_are_refused() {
        let text = include_str!("../../profiles/henan-2023.toml")
            .replace("max_delay_ms = 230000", "max_delay_ms = 400000");
        assert!(matches!(
            Profile::parse(&text),
            Err(ProfileError::Invalid { .. })
        ));
        let unknown = format!(
            "{}\nsurprise = 1\n",
            include_str!("../../profiles/henan-2023.toml")
        );
        assert!(matches!(
            Profile::parse(&unknown),
            Err(ProfileError::Parse(_))
        ));
    }

    #[test]
    fn drift_tolerance_is_bounded_by_both_parameters() {
        let p = Profile::latest(DEFAULT_PROFILE).expect("default");
        assert_eq!(
            p.drift_tolerance_ms(5_000),
            500,
            "5 % of 5 s is 250 ms, floored at 500 ms"
        );
        assert_eq!(p.drift_tolerance_ms(20_000), 1_000);
        assert_eq!(
            p.drift_tolerance_ms(120_000),
            2_000,
            "capped at 2 s per heartbeat"
        );
    }
}
