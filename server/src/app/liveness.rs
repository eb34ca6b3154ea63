//! The active liveness challenge at session start (R4). The learner's client asks for one;
//! the server draws a random order of head poses, logs the challenge (nonce, steps, deadline)
//! as a `challenge_issued` event, and answers with the steps to prompt. The client sends one
//! camera frame per step; each frame runs through the face pipeline (passive anti-spoofing,
//! match against the enrolled template), and `adapters::face::liveness` decides whether the
//! poses came in order from one live, enrolled person. The result, with every frame's scores
//! and the model versions, is logged as a `face_checked` event answering the nonce, so the
//! fold (R4) sees only the result. Invariants: a challenge is answered at most once; bad
//! input (wrong frame count, a non-image, a corrupt image) is refused before anything is
//! logged; a failed challenge stops credit and flags the session, it never ends the study.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, AppError, AppResult, new_id};
use crate::adapters::face::liveness::{self, Pose};
use crate::domain::events::FaceMethod;
use crate::domain::session::Outstanding;
use crate::domain::{ChallengeKind, EventBody, Millis, Profile, SessionFold};

/// An active liveness challenge for the learner's client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LivenessChallenge {
    pub nonce: String,
    /// Poses in the order to perform them: `turn_left`, `turn_right`, `face_camera` (left and
    /// right are the learner's own; frames are sent as the camera sees them, unmirrored).
    pub steps: Vec<String>,
    /// One instruction per step, to show the learner.
    pub prompts: Vec<String>,
    pub deadline: Millis,
    pub deadline_in_ms: i64,
}

/// The frames answering a challenge, one per step, in step order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivenessAnswer {
    /// Base64 (standard alphabet) JPEG, PNG or WebP images.
    pub frames: Vec<String>,
}

/// One frame's scores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LivenessFrame {
    pub step: String,
    pub faces: u32,
    /// The head-turn proxy × 1000 (positive: the learner's left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaw_permille: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_permille: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_permille: Option<i32>,
    /// Why this frame fails, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The result of an active challenge, as logged.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LivenessResult {
    pub check_id: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_permille: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_permille: Option<i32>,
    pub frames: Vec<LivenessFrame>,
    pub detail: String,
    pub at: Millis,
}

/// The steps and a combined prompt of a liveness challenge's stored `expected`.
pub fn steps_and_prompt(expected: Option<&str>) -> (Vec<String>, String) {
    let steps = expected
        .and_then(liveness::decode_steps)
        .unwrap_or_default();
    let prompt = steps
        .iter()
        .map(|p| p.prompt())
        .collect::<Vec<_>>()
        .join(" → ");
    (steps.iter().map(|p| p.code().to_owned()).collect(), prompt)
}

/// Names the frame in an invalid-input error.
fn in_frame(i: usize, e: AppError) -> AppError {
    if let AppError::Invalid { why, .. } = e {
        AppError::Invalid {
            field: "frames",
            why: format!("frame {}: {why}", i + 1),
        }
    } else {
        e
    }
}

/// What a liveness request needs to know about a session, from its stored log.
pub(super) struct SessionFacts {
    pub(super) profile: Profile,
    pub(super) open: Vec<Outstanding>,
    pub(super) ended: bool,
    pub(super) learner_id: String,
}

impl App {
    /// What the stored log says now: the session's profile, its open challenges, whether it
    /// ended, and its learner.
    pub(super) async fn session_facts(&self, session_id: &str) -> AppResult<SessionFacts> {
        let (rec, ctx) = self.session_with_context(session_id).await?;
        let profile = Profile::find(&rec.profile).map_err(|e| AppError::Internal(e.to_string()))?;
        let events = self.store.events(session_id).await?;
        let fold = SessionFold::refold(profile.clone(), ctx, events);
        Ok(SessionFacts {
            profile,
            open: fold.outstanding(),
            ended: fold.ended(),
            learner_id: rec.learner_id,
        })
    }

    /// Whether the session's profile requires the first face pass to be an active challenge.
    pub(crate) async fn active_challenge_required(&self, session_id: &str) -> AppResult<bool> {
        let facts = self.session_facts(session_id).await?;
        Ok(facts
            .profile
            .face
            .active_challenge
            .is_some_and(|a| a.required))
    }

    /// Issues an active liveness challenge (or returns the one still open).
    pub async fn issue_liveness(&self, session_id: &str) -> AppResult<LivenessChallenge> {
        let facts = self.session_facts(session_id).await?;
        if facts.ended {
            return Err(AppError::Conflict("the session has ended".into()));
        }
        let Some(spec) = facts.profile.face.active_challenge.clone() else {
            return Err(AppError::Conflict(format!(
                "profile {} offers no active liveness challenge",
                facts.profile.id
            )));
        };
        self.face_learner(&facts.learner_id).await?;
        let now = self.now();
        let to_msg = |nonce: String, deadline: Millis, expected: Option<&str>| {
            let steps = expected
                .and_then(liveness::decode_steps)
                .unwrap_or_default();
            LivenessChallenge {
                nonce,
                steps: steps.iter().map(|p| p.code().to_owned()).collect(),
                prompts: steps.iter().map(|p| p.prompt().to_owned()).collect(),
                deadline,
                deadline_in_ms: deadline.0 - now.0,
            }
        };
        if let Some(o) = facts
            .open
            .iter()
            .find(|o| o.kind == ChallengeKind::Liveness && o.deadline > now)
        {
            return Ok(to_msg(o.nonce.clone(), o.deadline, o.expected.as_deref()));
        }
        let steps = {
            use rand::Rng;
            let mut rng = rand::rng();
            liveness::random_steps(spec.steps as usize, &mut || rng.random::<u64>())
        };
        let nonce = format!("{:032x}", {
            use rand::Rng;
            rand::rng().random::<u128>()
        });
        let deadline = now.plus(spec.deadline_ms);
        let expected = liveness::encode_steps(&steps);
        let ev = self
            .append_server_event(
                session_id,
                EventBody::ChallengeIssued {
                    nonce: nonce.clone(),
                    kind: ChallengeKind::Liveness,
                    deadline,
                    expected: Some(expected.clone()),
                },
            )
            .await?;
        let mut msg = to_msg(nonce, deadline, Some(&expected));
        msg.deadline_in_ms = deadline.0 - ev.at.0;
        Ok(msg)
    }

    /// The learner, who must have consented to face processing.
    async fn face_learner(&self, learner_id: &str) -> AppResult<crate::model::Learner> {
        let learner = self
            .store
            .learner(learner_id)
            .await?
            .ok_or(AppError::NotFound("learner"))?;
        if !learner.face_consent {
            return Err(AppError::Forbidden(
                "the learner has not consented to face processing; the non-face alternative check applies".into(),
            ));
        }
        Ok(learner)
    }

    /// Checks the frames answering liveness challenge `nonce` and logs the result.
    pub async fn answer_liveness(
        &self,
        session_id: &str,
        nonce: &str,
        answer: &LivenessAnswer,
    ) -> AppResult<LivenessResult> {
        let facts = self.session_facts(session_id).await?;
        if facts.ended {
            return Err(AppError::Conflict("the session has ended".into()));
        }
        let now = self.now();
        let Some(open) = facts
            .open
            .iter()
            .find(|o| o.nonce == nonce && o.kind == ChallengeKind::Liveness && o.deadline > now)
        else {
            return Err(AppError::Conflict(format!(
                "no open liveness challenge with nonce {nonce} in this session"
            )));
        };
        let steps = open
            .expected
            .as_deref()
            .and_then(liveness::decode_steps)
            .ok_or_else(|| AppError::Internal(format!("challenge {nonce} has no steps")))?;
        if answer.frames.len() != steps.len() {
            return Err(AppError::Invalid {
                field: "frames",
                why: format!(
                    "the challenge has {} steps; send exactly one frame per step",
                    steps.len()
                ),
            });
        }
        let mut images = Vec::with_capacity(steps.len());
        for (i, f) in answer.frames.iter().enumerate() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(f)
                .map_err(|e| AppError::Invalid {
                    field: "frames",
                    why: format!("frame {} is not base64: {e}", i + 1),
                })?;
            super::uploads::check_image(&bytes, None).map_err(|e| in_frame(i, e))?;
            images.push(bytes);
        }
        let learner = self.face_learner(&facts.learner_id).await?;
        let mut enrolled = self.enrolled_embedding(&learner.id).await?;
        if enrolled.is_none() && self.demo_platform.get() == Some(&learner.platform_id) {
            // The demo only, as for plain checks: the frame facing the camera enrols a
            // newcomer who has not uploaded a photo.
            let front = steps.iter().position(|p| *p == Pose::Front).unwrap_or(0);
            self.demo_enrol(&learner, &images[front]).await?;
            enrolled = self.enrolled_embedding(&learner.id).await?;
        }
        let enrolled = enrolled.ok_or_else(|| {
            AppError::Conflict(
                "the learner has no enrolled face template: the platform must enrol the real-name photo first (POST /api/v1/learners/{id}/face-enrolment)".into(),
            )
        })?;
        let mut analyses = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            analyses.push(self.analyse_face(img).await.map_err(|e| in_frame(i, e))?);
        }
        let d = liveness::decide(&analyses, &steps, &enrolled);
        let check_id = new_id();
        let ev = self
            .append_server_event(
                session_id,
                EventBody::FaceChecked {
                    check_id: check_id.clone(),
                    nonce: Some(nonce.to_owned()),
                    method: FaceMethod::Face,
                    passed: d.passed,
                    match_permille: d.match_permille,
                    liveness_permille: d.liveness_permille,
                    detail: d.detail.clone(),
                },
            )
            .await?;
        Ok(LivenessResult {
            check_id,
            passed: d.passed,
            match_permille: d.match_permille,
            liveness_permille: d.liveness_permille,
            frames: d
                .frames
                .iter()
                .map(|f| LivenessFrame {
                    step: f.step.code().to_owned(),
                    faces: f.faces,
                    yaw_permille: f.yaw.map(|y| (y * 1000.0).round() as i32),
                    match_permille: f.distance.map(crate::adapters::face::similarity_permille),
                    liveness_permille: f.liveness.map(crate::adapters::face::permille),
                    failure: f.failure.clone(),
                })
                .collect(),
            detail: d.detail,
            at: ev.at,
        })
    }
}
