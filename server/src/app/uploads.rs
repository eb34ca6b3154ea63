//! Learner uploads: snapshots answering a server's snapshot request (R6) and images for face
//! checks (R4). Each upload is checked against the session's log (the nonce must be an open
//! challenge of the right kind), analysed by the face pipeline (a corrupt or non-image upload
//! is refused before anything is stored), stored with its sha256, then recorded as a server
//! event carrying the analysis (face count, scores, model versions, perceptual hash).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, AppError, AppResult, new_id};
use crate::adapters::face::image_kind;
use crate::auth::sha256_hex;
use crate::domain::events::FaceMethod;
use crate::domain::session::Outstanding;
use crate::domain::{ChallengeKind, EventBody, Millis};
use crate::model::Snapshot;

/// Largest accepted image, in bytes.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;

/// A stored snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredSnapshot {
    pub snapshot_id: String,
    pub sha256: String,
    pub at: Millis,
}

/// A face check's result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaceCheckResult {
    pub check_id: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_permille: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_permille: Option<i32>,
    pub detail: String,
    pub at: Millis,
}

pub(crate) fn check_image(bytes: &[u8], declared: Option<&str>) -> AppResult<&'static str> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(AppError::Invalid {
            field: "body",
            why: format!("image exceeds {MAX_IMAGE_BYTES} bytes"),
        });
    }
    let kind = image_kind(bytes).ok_or(AppError::Invalid {
        field: "body",
        why: "is not a JPEG, PNG or WebP image".into(),
    })?;
    if let Some(d) = declared
        && d != kind
    {
        return Err(AppError::Invalid {
            field: "content-type",
            why: format!("says {d} but the bytes are {kind}"),
        });
    }
    Ok(kind)
}

impl App {
    /// The demo only: enrols a learner of the demo platform from a camera frame, so a
    /// newcomer can try the whole flow with their own face. Real platforms enrol the
    /// real-name photo.
    pub(crate) async fn demo_enrol(
        &self,
        learner: &crate::model::Learner,
        bytes: &[u8],
    ) -> AppResult<()> {
        let platform = self
            .store
            .platform(&learner.platform_id)
            .await?
            .ok_or(AppError::NotFound("platform"))?;
        let text = "proctor demo: face processing consent for this demonstration only";
        let consent = super::face::ConsentText {
            consent_text_version: "demo-1".into(),
            consent_text_sha256: crate::auth::sha256_hex(text.as_bytes()),
            profile: None,
        };
        self.enrol_face(&platform, &learner.id, &consent, bytes)
            .await
            .map(|_| ())
    }

    /// The open challenges of a session, from its stored log.
    pub(crate) async fn open_challenges(
        &self,
        session_id: &str,
    ) -> AppResult<(Vec<Outstanding>, bool, String)> {
        let f = self.session_facts(session_id).await?;
        Ok((f.open, f.ended, f.learner_id))
    }

    /// Stores a snapshot answering the open snapshot request `nonce`.
    pub async fn store_snapshot(
        &self,
        session_id: &str,
        nonce: &str,
        declared: Option<&str>,
        bytes: &[u8],
    ) -> AppResult<StoredSnapshot> {
        let content_type = check_image(bytes, declared)?;
        let (open, ended, learner_id) = self.open_challenges(session_id).await?;
        if ended {
            return Err(AppError::Conflict("the session has ended".into()));
        }
        let now = self.now();
        if !open
            .iter()
            .any(|o| o.nonce == nonce && o.kind == ChallengeKind::Snapshot && o.deadline > now)
        {
            return Err(AppError::Conflict(format!(
                "no open snapshot request with nonce {nonce} in this session"
            )));
        }
        let analysis = match self.analyse_face(bytes).await {
            Ok(a) => Some(a),
            // The snapshot is still R6 evidence without the models; reviewers see it unanalysed.
            Err(AppError::Unavailable { .. }) => None,
            Err(e) => return Err(e),
        };
        let summary = match &analysis {
            Some(a) => Some(self.snapshot_analysis(&learner_id, a).await?),
            None => None,
        };
        let id = new_id();
        let sha256 = sha256_hex(bytes);
        let ext = content_type.trim_start_matches("image/");
        let key = format!("snapshots/{session_id}/{id}.{ext}");
        let evidence = self.evidence.clone();
        let data = bytes.to_vec();
        let path = tokio::task::spawn_blocking(move || evidence.put(&key, &data))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::warn!(error = %e, "Failed to write a snapshot to the evidence store.");
                AppError::Unavailable {
                    what: "evidence store",
                    retry_after_s: 5,
                }
            })?;
        let snap = Snapshot {
            id: id.clone(),
            session_id: session_id.to_owned(),
            nonce: nonce.to_owned(),
            sha256: sha256.clone(),
            content_type: content_type.to_owned(),
            bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            at: now,
        };
        self.store
            .insert_snapshot(&snap, &path)
            .await
            .map_err(|e| {
                if matches!(e, crate::adapters::store::StoreError::Conflict(_)) {
                    AppError::Conflict(format!("a snapshot for nonce {nonce} is already stored"))
                } else {
                    e.into()
                }
            })?;
        let m = crate::metrics::metrics();
        m.snapshots_stored.inc();
        m.snapshot_bytes.inc_by(bytes.len() as u64);
        let ev = self
            .append_server_event(
                session_id,
                EventBody::SnapshotStored {
                    nonce: nonce.to_owned(),
                    snapshot_id: id.clone(),
                    sha256: sha256.clone(),
                    analysis: summary,
                },
            )
            .await?;
        if let Some(a) = &analysis {
            self.store
                .insert_frame_hash(&id, &learner_id, session_id, a.dhash, ev.at)
                .await?;
        }
        Ok(StoredSnapshot {
            snapshot_id: id,
            sha256,
            at: ev.at,
        })
    }

    /// Runs a face check on an image and records the result. `nonce` names the face
    /// re-check challenge it answers; none at session start.
    pub async fn face_check(
        &self,
        session_id: &str,
        nonce: Option<&str>,
        declared: Option<&str>,
        bytes: &[u8],
    ) -> AppResult<FaceCheckResult> {
        check_image(bytes, declared)?;
        let (open, ended, learner_id) = self.open_challenges(session_id).await?;
        if ended {
            return Err(AppError::Conflict("the session has ended".into()));
        }
        let learner = self
            .store
            .learner(&learner_id)
            .await?
            .ok_or(AppError::NotFound("learner"))?;
        if !learner.face_consent {
            return Err(AppError::Forbidden(
                "the learner has not consented to face processing; the non-face alternative check applies".into(),
            ));
        }
        if let Some(n) = nonce
            && !open
                .iter()
                .any(|o| o.nonce == n && o.kind == ChallengeKind::FaceRecheck)
        {
            return Err(AppError::Conflict(format!(
                "no open face re-check with nonce {n} in this session"
            )));
        }
        if nonce.is_none() && self.active_challenge_required(session_id).await? {
            // Only the first pass must be active; a plain check still counts after it (the
            // fold enforces the same, this refusal just says so early).
            let events = self.store.events(session_id).await?;
            let passed_before = events.iter().any(|e| {
                matches!(e.body, EventBody::FaceChecked { passed: true, ref nonce, .. } if nonce.is_some())
            });
            if !passed_before {
                return Err(AppError::Conflict(
                    "this profile requires an active liveness challenge at session start (POST /api/v1/sessions/{id}/liveness-challenges)".into(),
                ));
            }
        }
        let mut enrolled = self.enrolled_embedding(&learner_id).await?;
        if enrolled.is_none() && self.demo_platform.get() == Some(&learner.platform_id) {
            // The demo only: the first camera frame enrols the learner, so a newcomer can try
            // the whole flow with their own face. Real platforms enrol the real-name photo.
            self.demo_enrol(&learner, bytes).await?;
            enrolled = self.enrolled_embedding(&learner_id).await?;
        }
        let enrolled = enrolled.ok_or_else(|| {
            AppError::Conflict(
                "the learner has no enrolled face template: the platform must enrol the real-name photo first (POST /api/v1/learners/{id}/face-enrolment)".into(),
            )
        })?;
        let checks = &crate::metrics::metrics().face_checks;
        let analysis = self.analyse_face(bytes).await.inspect_err(|e| {
            if matches!(e, AppError::Unavailable { .. }) {
                checks.with_label_values(&["unavailable"]).inc();
            }
        })?;
        let outcome = crate::adapters::face::decide(&analysis, &enrolled);
        checks
            .with_label_values(&[if outcome.passed { "passed" } else { "failed" }])
            .inc();
        let check_id = new_id();
        let ev = self
            .append_server_event(
                session_id,
                EventBody::FaceChecked {
                    check_id: check_id.clone(),
                    nonce: nonce.map(str::to_owned),
                    method: FaceMethod::Face,
                    passed: outcome.passed,
                    match_permille: outcome.match_permille,
                    liveness_permille: outcome.liveness_permille,
                    detail: outcome.detail.clone(),
                },
            )
            .await?;
        Ok(FaceCheckResult {
            check_id,
            passed: outcome.passed,
            match_permille: outcome.match_permille,
            liveness_permille: outcome.liveness_permille,
            detail: outcome.detail,
            at: ev.at,
        })
    }
}
