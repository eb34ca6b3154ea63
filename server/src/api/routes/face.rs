//! Face enrolment endpoints (platform token): upload the learner's real-name photo once, or
//! withdraw face consent. The photo is analysed and dropped; only the sealed template stays.

use actix_web::{HttpResponse, delete, post, web};

use crate::adapters::store::ConsentReceipt;
use crate::api::auth::CallingPlatform;
use crate::api::error::{ApiResult, Problem};
use crate::app::App;
use crate::app::face::{ConsentText, FaceEnrolment};
use crate::app::uploads::MAX_IMAGE_BYTES;

/// Enrols the learner's real-name photo (body: the image bytes). Refused with 422 naming the
/// reason (`no_face`, `several_faces`, `face_too_small`, `too_blurred`, or an unreadable
/// image); 403 without face consent; 503 when the face models are unavailable.
#[utoipa::path(tag = "catalog", security(("bearer" = [])), params(("id" = String, Path), ConsentText),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 201, body = FaceEnrolment), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
#[post("/learners/{id}/face-enrolment")]
pub async fn enrol(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
    q: web::Query<ConsentText>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let photo = crate::api::read_limited(body, MAX_IMAGE_BYTES).await?;
    let enrolled = app.enrol_face(&p.0, &id, &q, &photo).await?;
    Ok(HttpResponse::Created().json(enrolled))
}

/// Withdraws the learner's face consent: the template is deleted and later sessions use the
/// non-face alternative check (a reviewer's manual check).
#[utoipa::path(tag = "catalog", security(("bearer" = [])), params(("id" = String, Path), ConsentText),
    responses((status = 200, body = ConsentReceipt), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[delete("/learners/{id}/face-enrolment")]
pub async fn withdraw(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
    q: web::Query<ConsentText>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.withdraw_face(&p.0, &id, &q).await?))
}
