//! Learning sessions: start (admission), status, verdict, log, uploads; and the enrolment
//! summary. Platform endpoints take a platform token; uploads take the session's learner token.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::{CallingLearner, CallingPlatform};
use crate::api::error::{ApiResult, Problem};
use crate::app::App;
use crate::app::sessions::{EnrolmentSummary, ReplayReport, StartSession, StartedSession};
use crate::app::uploads::{FaceCheckResult, MAX_IMAGE_BYTES, StoredSnapshot};
use crate::domain::{Event, SessionVerdict};
use crate::model::SessionRecord;

/// Starts a learning session after checking R14, R13, R5, R11 and R2.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), request_body = StartSession, responses(
    (status = 201, body = StartedSession),
    (status = 409, description = "A rule refuses the start; `rule` names it", body = Problem),
    (status = 404, body = Problem), (status = 422, body = Problem)))]
#[post("/sessions")]
pub async fn start(
    app: web::Data<App>,
    p: CallingPlatform,
    body: web::Json<StartSession>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.start_session(&p.0, body.into_inner()).await?))
}

/// Reads a session record.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = SessionRecord), (status = 404, body = Problem)))]
#[get("/sessions/{id}")]
pub async fn get(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.session_of(&p.0, &id).await?.0))
}

/// The session's current verdict: credit, timeline with reason codes, rules and evidence.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = SessionVerdict), (status = 404, body = Problem)))]
#[get("/sessions/{id}/verdict")]
pub async fn verdict(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (rec, ctx) = app.session_of(&p.0, &id).await?;
    Ok(HttpResponse::Ok().json(app.session_verdict(&rec, &ctx).await?))
}

/// The session's event log in canonical order.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = [Event]), (status = 404, body = Problem)))]
#[get("/sessions/{id}/events")]
pub async fn events(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (rec, _) = app.session_of(&p.0, &id).await?;
    Ok(HttpResponse::Ok().json(
        app.store
            .events(&rec.id)
            .await
            .map_err(crate::app::AppError::from)?,
    ))
}

/// Recomputes the verdict from the log and says whether it matches the stored one.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = ReplayReport), (status = 404, body = Problem)))]
#[post("/sessions/{id}/replay")]
pub async fn replay(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (rec, _) = app.session_of(&p.0, &id).await?;
    Ok(HttpResponse::Ok().json(app.replay(&rec.id).await?))
}

/// An enrolment's verdict: credited 课时, online share against R7, rules, whether it counts.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = EnrolmentSummary), (status = 404, body = Problem)))]
#[get("/enrolments/{id}/summary")]
pub async fn enrolment_summary(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.enrolment_summary(&p.0, &id).await?))
}

/// Which challenge an upload answers.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
pub struct NonceQuery {
    /// The nonce of the server's request.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Ignored here (the learner token may travel in the query for browsers).
    #[serde(default)]
    pub access_token: Option<String>,
}

fn content_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_owned())
}

/// Uploads the photo a snapshot request (R6) asked for. Body: the image bytes.
#[utoipa::path(tag = "learner", security(("learner" = [])), params(("id" = String, Path), NonceQuery),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 201, body = StoredSnapshot), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem)))]
#[post("/sessions/{id}/snapshots")]
pub async fn upload_snapshot(
    app: web::Data<App>,
    learner: CallingLearner,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<NonceQuery>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    learner.for_session(&id)?;
    let body = crate::api::read_limited(body, MAX_IMAGE_BYTES).await?;
    let nonce = q.nonce.as_deref().ok_or(crate::app::AppError::Invalid {
        field: "nonce",
        why: "is required".into(),
    })?;
    let stored = app
        .store_snapshot(&id, nonce, content_type(&req).as_deref(), &body)
        .await?;
    Ok(HttpResponse::Created().json(stored))
}

/// Runs a face check (liveness + match) on an image: at session start, or answering a face
/// re-check (`nonce`). Needs the learner's face consent.
#[utoipa::path(tag = "learner", security(("learner" = [])), params(("id" = String, Path), NonceQuery),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 201, body = FaceCheckResult), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
#[post("/sessions/{id}/face-checks")]
pub async fn face_check(
    app: web::Data<App>,
    learner: CallingLearner,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<NonceQuery>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    learner.for_session(&id)?;
    let body = crate::api::read_limited(body, MAX_IMAGE_BYTES).await?;
    let result = app
        .face_check(
            &id,
            q.nonce.as_deref(),
            content_type(&req).as_deref(),
            &body,
        )
        .await?;
    Ok(HttpResponse::Created().json(result))
}

/// Body limit for the frames of a liveness challenge (base64 inflates by a third).
const MAX_LIVENESS_BODY: usize = 16 * 1024 * 1024;

/// Asks for an active liveness challenge (R4): the server draws a random order of head poses
/// and logs the challenge; the answer carries the steps to prompt, one frame each. Returns
/// the challenge still open when there is one.
#[utoipa::path(tag = "learner", security(("learner" = [])), params(("id" = String, Path)),
    responses((status = 201, body = crate::app::liveness::LivenessChallenge), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/sessions/{id}/liveness-challenges")]
pub async fn liveness_challenge(
    app: web::Data<App>,
    learner: CallingLearner,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    learner.for_session(&id)?;
    Ok(HttpResponse::Created().json(app.issue_liveness(&id).await?))
}

/// Answers an active liveness challenge with one camera frame per step, in step order. The
/// result (every frame's scores, the model versions) is logged as a face check.
#[utoipa::path(tag = "learner", security(("learner" = [])),
    params(("id" = String, Path), ("nonce" = String, Path)),
    request_body = crate::app::liveness::LivenessAnswer,
    responses((status = 201, body = crate::app::liveness::LivenessResult), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem)))]
#[post("/sessions/{id}/liveness-challenges/{nonce}")]
pub async fn liveness_answer(
    app: web::Data<App>,
    learner: CallingLearner,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (id, nonce) = path.into_inner();
    learner.for_session(&id)?;
    let body = crate::api::read_limited(body, MAX_LIVENESS_BODY).await?;
    let answer: crate::app::liveness::LivenessAnswer = serde_json::from_slice(&body)
        .map_err(|e| crate::api::error::ApiError::Malformed(e.to_string()))?;
    Ok(HttpResponse::Created().json(app.answer_liveness(&id, &nonce, &answer).await?))
}
