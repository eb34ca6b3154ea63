//! Learners' appeals against a session's verdict, submitted by the platform (reviewers see them
//! in the workbench queue as `appealed`).

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::adapters::store::review::Appeal;
use crate::api::auth::CallingPlatform;
use crate::api::error::{ApiResult, Problem};
use crate::app::App;

/// An appeal: the learner's reasons, in their words.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppeal {
    /// 1 to 2000 characters.
    pub reason: String,
}

/// Submits a learner's appeal against the session's verdict; provincial reviewers decide it
/// (two signatures, R17).
#[utoipa::path(tag = "sessions", security(("bearer" = [])), params(("id" = String, Path)), request_body = NewAppeal, responses(
    (status = 201, body = Appeal), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[post("/sessions/{id}/appeals")]
pub async fn submit(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
    body: web::Json<NewAppeal>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.submit_appeal(&p.0, &id, &body.reason).await?))
}
