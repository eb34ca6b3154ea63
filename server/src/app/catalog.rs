//! The catalogue a platform registers: courses with ordered lessons, classes bound to a
//! policy profile version, real-name learners and their enrolments. Checks on the class plan
//! (R7 online share, R9 practical share, R10 offline hours, R12 class size) and on
//! enrolment (R11) happen here. Every read is scoped to the calling platform: another
//! platform's ids answer "not found".

use serde::Deserialize;
use utoipa::ToSchema;

use super::{App, AppError, AppResult, new_id};
use crate::auth::{random_secret, sha256_hex};
use crate::domain::profile::{DEFAULT_PROFILE, Profile};
use crate::domain::{Millis, ProfileRef};
use crate::model::{Class, Course, Enrolment, Learner, Lesson, Platform};

/// A new lesson, in course order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLesson {
    pub title: String,
    /// Video duration in seconds.
    pub duration_s: u32,
    /// sha256 of the video file, 64 hex digits (R13).
    pub content_hash: String,
}

/// A new course.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCourse {
    pub title: String,
    /// Lessons in the order they must be studied (R5).
    pub lessons: Vec<NewLesson>,
}

/// A new class.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClass {
    pub name: String,
    pub course_id: String,
    /// Policy profile id; defaults to `henan-2023`. The newest version is bound.
    #[serde(default)]
    pub profile: Option<String>,
    /// Occupation (工种), for the offline-hours list of the profile (R10).
    #[serde(default)]
    pub occupation: Option<String>,
    /// The city or county the class trains in: a six-digit GB/T 2260 code inside the
    /// platform's province (e.g. `410102`). Reviewers scoped to a city or county see only
    /// its classes; without it, only province-wide reviewers see the class.
    #[serde(default)]
    pub region: Option<String>,
    pub planned_total_hours: u32,
    pub planned_online_hours: u32,
}

/// A new real-name learner.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLearner {
    /// The platform's own id for this learner.
    pub external_ref: String,
    pub real_name: String,
    /// Resident ID number; stored only as a hash, used to find the same person across
    /// platforms (R11, R19).
    pub id_number: String,
    /// Separate consent to face processing (PIPL art. 29). Without it, the non-face
    /// alternative check is used.
    #[serde(default)]
    pub face_consent: bool,
}

/// A new enrolment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolment {
    pub class_id: String,
    pub learner_id: String,
}

fn invalid(field: &'static str, why: impl Into<String>) -> AppError {
    AppError::Invalid {
        field,
        why: why.into(),
    }
}

fn non_blank(field: &'static str, s: &str, max: usize) -> AppResult<()> {
    if s.trim().is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Credentials printed once by `proctor admin create-platform`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlatformCredentials {
    pub platform_id: String,
    pub name: String,
    pub province: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
}

impl App {
    /// Registers a platform and returns its one-time credentials. Operator-only (CLI).
    pub async fn create_platform(
        &self,
        name: &str,
        province: &str,
    ) -> AppResult<PlatformCredentials> {
        non_blank("name", name, 200)?;
        if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "province",
                "must be a two-digit province code (GB/T 2260), e.g. 41",
            ));
        }
        let secret = random_secret();
        let p = Platform {
            id: new_id(),
            name: name.to_owned(),
            province: province.to_owned(),
            client_id: format!("pc_{}", &sha256_hex(random_secret().as_bytes())[..24]),
            registered: true,
            banned_since: None,
            created_at: self.now(),
        };
        self.store
            .create_platform(&p, &sha256_hex(secret.as_bytes()))
            .await?;
        Ok(PlatformCredentials {
            platform_id: p.id,
            name: p.name,
            province: p.province,
            client_id: p.client_id,
            client_secret: secret,
            token_url: format!("{}/oauth/token", self.public_url),
        })
    }

    /// Checks client credentials; returns the platform.
    pub async fn authenticate_client(&self, client_id: &str, secret: &str) -> AppResult<Platform> {
        let found = self.store.platform_by_client_id(client_id).await?;
        match found {
            Some((p, hash)) if hash == sha256_hex(secret.as_bytes()) => Ok(p),
            _ => Err(AppError::Forbidden("unknown client or wrong secret".into())),
        }
    }

    pub async fn create_course(&self, platform: &Platform, req: NewCourse) -> AppResult<Course> {
        non_blank("title", &req.title, 200)?;
        if req.lessons.is_empty() || req.lessons.len() > 500 {
            return Err(invalid("lessons", "a course has 1 to 500 lessons"));
        }
        let id = new_id();
        let mut lessons = Vec::with_capacity(req.lessons.len());
        for (i, l) in req.lessons.into_iter().enumerate() {
            non_blank("lessons[].title", &l.title, 200)?;
            if l.duration_s == 0 || l.duration_s > 24 * 3600 {
                return Err(invalid(
                    "lessons[].duration_s",
                    "must be between 1 s and 24 h",
                ));
            }
            let hash = l.content_hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "lessons[].content_hash",
                    "must be a sha256 in 64 hex digits",
                ));
            }
            lessons.push(Lesson {
                id: new_id(),
                course_id: id.clone(),
                position: u32::try_from(i + 1).map_err(|e| AppError::Internal(e.to_string()))?,
                title: l.title,
                duration_ms: i64::from(l.duration_s) * 1000,
                content_hash: hash,
                approved: false,
            });
        }
        let course = Course {
            id,
            platform_id: platform.id.clone(),
            title: req.title,
            lessons,
            created_at: self.now(),
        };
        self.store.create_course(&course).await?;
        self.course(platform, &course.id).await
    }

    pub async fn course(&self, platform: &Platform, id: &str) -> AppResult<Course> {
        match self.store.course(id, &platform.province).await? {
            Some(c) if c.platform_id == platform.id => Ok(c),
            _ => Err(AppError::NotFound("course")),
        }
    }

    pub async fn create_class(&self, platform: &Platform, req: NewClass) -> AppResult<Class> {
        non_blank("name", &req.name, 200)?;
        self.course(platform, &req.course_id).await?;
        if let Some(region) = req.region.as_deref()
            && (region.len() != 6
                || !region.bytes().all(|b| b.is_ascii_digit())
                || !region.starts_with(&platform.province))
        {
            return Err(invalid(
                "region",
                format!(
                    "must be a six-digit GB/T 2260 city or county code in province {}, e.g. {}0102",
                    platform.province, platform.province
                ),
            ));
        }
        let profile = Profile::latest(req.profile.as_deref().unwrap_or(DEFAULT_PROFILE))
            .map_err(|e| invalid("profile", e.to_string()))?;
        let (total, online) = (req.planned_total_hours, req.planned_online_hours);
        if total == 0 || total > 10_000 {
            return Err(invalid(
                "planned_total_hours",
                "must be between 1 and 10000",
            ));
        }
        if online > total {
            return Err(invalid(
                "planned_online_hours",
                "must not exceed planned_total_hours",
            ));
        }
        if let Some(cap) = &profile.online_cap
            && f64::from(online) > f64::from(total) * cap.max_online_share + 1e-9
        {
            return Err(AppError::Rule {
                rule: "R7_online_share_cap",
                detail: format!(
                    "{online} online hours of {total} exceed the {:.0} % cap of profile {}",
                    cap.max_online_share * 100.0,
                    profile.reference()
                ),
            });
        }
        if f64::from(total - online) < f64::from(total) * profile.plan.min_practical_share - 1e-9 {
            return Err(AppError::Rule {
                rule: "R9_practical_share",
                detail: format!(
                    "{} practical (offline) hours of {total} are below the {:.0} % minimum of profile {}",
                    total - online,
                    profile.plan.min_practical_share * 100.0,
                    profile.reference()
                ),
            });
        }
        if let (Some(occ), Some(min)) = (req.occupation.as_deref(), profile.plan.offline_hours_min)
            && profile
                .plan
                .offline_required_occupations
                .iter()
                .any(|o| o == occ)
            && total - online < min
        {
            return Err(AppError::Rule {
                rule: "R10_offline_hours",
                detail: format!(
                    "occupation {occ} needs at least {min} offline hours under profile {}",
                    profile.reference()
                ),
            });
        }
        let class = Class {
            id: new_id(),
            platform_id: platform.id.clone(),
            course_id: req.course_id,
            name: req.name,
            occupation: req.occupation,
            region: req.region,
            profile: ProfileRef {
                id: profile.id.clone(),
                version: profile.version,
            },
            planned_total_hours: total,
            planned_online_hours: online,
            created_at: self.now(),
        };
        self.store.create_class(&class).await?;
        Ok(class)
    }

    pub async fn class(&self, platform: &Platform, id: &str) -> AppResult<Class> {
        match self.store.class(id).await? {
            Some(c) if c.platform_id == platform.id => Ok(c),
            _ => Err(AppError::NotFound("class")),
        }
    }

    pub async fn create_learner(&self, platform: &Platform, req: NewLearner) -> AppResult<Learner> {
        non_blank("external_ref", &req.external_ref, 100)?;
        non_blank("real_name", &req.real_name, 100)?;
        let idn = req.id_number.trim().to_ascii_uppercase();
        if idn.len() != 18
            || !idn[..17].bytes().all(|b| b.is_ascii_digit())
            || !idn[17..].bytes().all(|b| b.is_ascii_digit() || b == b'X')
        {
            return Err(invalid(
                "id_number",
                "must be an 18-character resident ID number",
            ));
        }
        let learner = Learner {
            id: new_id(),
            platform_id: platform.id.clone(),
            external_ref: req.external_ref,
            real_name: req.real_name,
            face_consent: req.face_consent,
            created_at: self.now(),
        };
        self.store
            .create_learner(&learner, &sha256_hex(idn.as_bytes()))
            .await?;
        Ok(learner)
    }

    pub async fn learner(&self, platform: &Platform, id: &str) -> AppResult<Learner> {
        match self.store.learner(id).await? {
            Some(l) if l.platform_id == platform.id => Ok(l),
            _ => Err(AppError::NotFound("learner")),
        }
    }

    pub async fn create_enrolment(
        &self,
        platform: &Platform,
        req: NewEnrolment,
    ) -> AppResult<Enrolment> {
        let class = self.class(platform, &req.class_id).await?;
        self.learner(platform, &req.learner_id).await?;
        let profile =
            Profile::find(&class.profile).map_err(|e| AppError::Internal(e.to_string()))?;
        let size = self.store.class_size(&class.id).await?;
        if size >= profile.plan.max_class_size {
            return Err(AppError::Rule {
                rule: "R12_class_size",
                detail: format!(
                    "the class already has {size} learners (max {})",
                    profile.plan.max_class_size
                ),
            });
        }
        let now = self.now();
        let others = self.store.enrolments_of_person(&req.learner_id).await?;
        sessions::check_cooldown(&profile, now, &others)?;
        let e = Enrolment {
            id: new_id(),
            class_id: class.id,
            learner_id: req.learner_id,
            enrolled_at: now,
            examined_at: None,
        };
        self.store.create_enrolment(&e).await?;
        Ok(e)
    }

    pub async fn enrolment(&self, platform: &Platform, id: &str) -> AppResult<(Enrolment, Class)> {
        let e = self
            .store
            .enrolment(id)
            .await?
            .ok_or(AppError::NotFound("enrolment"))?;
        let class = self
            .class(platform, &e.class_id)
            .await
            .map_err(|_| AppError::NotFound("enrolment"))?;
        Ok((e, class))
    }

    /// Records that an enrolment's training was examined (it starts the R11 cooldown).
    pub async fn mark_examined(
        &self,
        platform: &Platform,
        id: &str,
        at: Option<Millis>,
    ) -> AppResult<Enrolment> {
        let (e, _) = self.enrolment(platform, id).await?;
        self.store
            .set_examined(&e.id, at.unwrap_or_else(|| self.now()))
            .await?;
        Ok(self.enrolment(platform, id).await?.0)
    }
}

use super::sessions;
