//! Face enrolment, withdrawal and the bounded analysis pool. A platform uploads the learner's
//! real-name photo once; the template (embedding) is sealed with AES-GCM and stored with a
//! consent receipt, and the photo is dropped when the request ends. Invariants: analyses run
//! on the blocking pool behind a semaphore (at most one per core), so a burst of uploads
//! queues instead of starving the async workers; a refused enrolment or a failed analysis
//! leaves nothing stored.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{App, AppError, AppResult, new_id};
use crate::adapters::face::{self, enrolment_embedding};
use crate::adapters::store::ConsentReceipt;
use crate::model::Platform;
use crate::ports::{FaceAnalysis, FaceError};

/// The consent text the learner agreed to (its version and sha256), for the receipt.
#[derive(Debug, Clone, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentText {
    /// The version of the face-processing consent text shown to the learner.
    pub consent_text_version: String,
    /// sha256 (hex) of that text.
    pub consent_text_sha256: String,
    /// The policy profile the learner trains under (default `henan-2023`): it decides
    /// whether the enrolment photo is kept (sealed) or dropped.
    #[serde(default)]
    pub profile: Option<String>,
}

/// The result of an enrolment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaceEnrolment {
    pub learner_id: String,
    /// The template key id (for rotation); the template itself is never returned.
    pub key_id: String,
    /// Model versions that made the template.
    pub models: String,
    pub receipt: ConsentReceipt,
    /// Whether the photo was kept (sealed) because the profile requires it.
    pub photo_kept: bool,
}

impl ConsentText {
    fn check(&self) -> AppResult<()> {
        if self.consent_text_version.trim().is_empty() || self.consent_text_version.len() > 64 {
            return Err(AppError::Invalid {
                field: "consent_text_version",
                why: "must be 1 to 64 characters".into(),
            });
        }
        if self.consent_text_sha256.len() != 64
            || !self
                .consent_text_sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        {
            return Err(AppError::Invalid {
                field: "consent_text_sha256",
                why: "must be 64 hex digits".into(),
            });
        }
        Ok(())
    }
}

impl App {
    /// Runs the face pipeline on the bounded blocking pool.
    pub async fn analyse_face(&self, bytes: &[u8]) -> AppResult<FaceAnalysis> {
        let queue = &crate::metrics::metrics().face_queue;
        queue.inc();
        let permit = self.face_slots.acquire().await;
        queue.dec();
        let _permit = permit.map_err(|e| AppError::Internal(e.to_string()))?;
        let face = self.face.clone();
        let data = bytes.to_vec();
        tokio::task::spawn_blocking(move || face.analyse(&data))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| match e {
                FaceError::BadImage(why) => AppError::Invalid { field: "body", why },
                FaceError::Unavailable(why) => {
                    tracing::warn!(reason = %why, "A face analysis could not run.");
                    AppError::Unavailable {
                        what: "face check",
                        retry_after_s: 30,
                    }
                }
            })
    }

    /// The learner's enrolled embedding, if any.
    pub async fn enrolled_embedding(&self, learner_id: &str) -> AppResult<Option<Vec<f32>>> {
        let Some(sealed) = self.store.face_template(learner_id).await? else {
            return Ok(None);
        };
        self.templates
            .open(learner_id, &sealed)
            .map(Some)
            .map_err(|e| AppError::Internal(format!("template of {learner_id}: {e}")))
    }

    /// Enrols the learner's real-name photo: one sharp, large enough face, or a refusal that
    /// names the reason. Needs the learner's face consent.
    pub async fn enrol_face(
        &self,
        platform: &Platform,
        learner_id: &str,
        consent: &ConsentText,
        photo: &[u8],
    ) -> AppResult<FaceEnrolment> {
        consent.check()?;
        let profile = crate::domain::Profile::latest(
            consent
                .profile
                .as_deref()
                .unwrap_or(crate::domain::profile::DEFAULT_PROFILE),
        )
        .map_err(|e| AppError::Invalid {
            field: "profile",
            why: e.to_string(),
        })?;
        let learner = self.learner(platform, learner_id).await?;
        if !learner.face_consent {
            return Err(AppError::Forbidden(
                "the learner has not consented to face processing; the non-face alternative check applies".into(),
            ));
        }
        let analysis = self.analyse_face(photo).await?;
        let embedding = enrolment_embedding(&analysis).map_err(|r| AppError::Invalid {
            field: "body",
            why: format!("{}: {}", r.code(), r.message()),
        })?;
        let sealed = self
            .templates
            .seal(learner_id, embedding)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let receipt = ConsentReceipt {
            id: new_id(),
            learner_id: learner_id.to_owned(),
            action: "granted".into(),
            text_version: consent.consent_text_version.clone(),
            text_sha256: consent.consent_text_sha256.to_ascii_lowercase(),
            at: self.now(),
        };
        let photo = if profile.face.keep_enrolment_photo {
            Some(
                self.templates
                    .seal_photo(learner_id, photo)
                    .map_err(|e| AppError::Internal(e.to_string()))?,
            )
        } else {
            None
        };
        self.store
            .enrol_face(&sealed, &analysis.models, &receipt, photo.as_ref())
            .await?;
        Ok(FaceEnrolment {
            learner_id: learner_id.to_owned(),
            key_id: sealed.key_id,
            models: analysis.models,
            receipt,
            photo_kept: photo.is_some(),
        })
    }

    /// Withdraws face consent: the template is deleted, later sessions use the non-face
    /// alternative check, and the withdrawal is recorded.
    pub async fn withdraw_face(
        &self,
        platform: &Platform,
        learner_id: &str,
        consent: &ConsentText,
    ) -> AppResult<ConsentReceipt> {
        consent.check()?;
        self.learner(platform, learner_id).await?;
        let receipt = ConsentReceipt {
            id: new_id(),
            learner_id: learner_id.to_owned(),
            action: "withdrawn".into(),
            text_version: consent.consent_text_version.clone(),
            text_sha256: consent.consent_text_sha256.to_ascii_lowercase(),
            at: self.now(),
        };
        self.store.withdraw_face(&receipt).await?;
        Ok(receipt)
    }

    /// A snapshot's analysis for the evidence: face count, match, liveness, frame hash, and an
    /// earlier snapshot (any learner) with nearly the same picture.
    pub(crate) async fn snapshot_analysis(
        &self,
        learner_id: &str,
        analysis: &FaceAnalysis,
    ) -> AppResult<crate::domain::events::SnapshotAnalysis> {
        let enrolled = self.enrolled_embedding(learner_id).await?;
        let d = match (&analysis.embedding, &enrolled) {
            (Some(e), Some(t)) => Some(face::distance(e, t)),
            _ => None,
        };
        let same = self
            .store
            .recent_frame_hashes(10_000)
            .await?
            .into_iter()
            .find(|(_, _, h)| {
                face::hash::distance(*h, analysis.dhash) <= face::hash::SAME_PICTURE_BITS
            })
            .map(|(id, _, _)| id);
        Ok(crate::domain::events::SnapshotAnalysis {
            faces: analysis.faces,
            match_permille: d.map(face::similarity_permille),
            liveness_permille: analysis.liveness.map(face::permille),
            dhash: format!("{:016x}", analysis.dhash),
            same_picture_as: same,
            one_live_matching_face: enrolled.as_ref().map(|_| {
                analysis.faces == 1
                    && analysis.liveness.is_some_and(|p| p >= face::LIVENESS_MIN)
                    && d.is_some_and(|d| d < face::MATCH_DISTANCE)
            }),
            detail: format!(
                "distance {}; P(real) {}; models {}",
                d.map_or("-".into(), |d| format!("{d:.3}")),
                analysis.liveness.map_or("-".into(), |p| format!("{p:.3}")),
                analysis.models
            ),
        })
    }
}
