//! Reviewers' actions: two-person decisions and legal holds (POST forms with the CSRF token).

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    outcome: String,
    reason_code: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn decide(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    check_csrf(&who, &form.csrf)?;
    let d = app
        .sign_decision(
            &who,
            &path,
            &form.outcome,
            form.reason_code.trim(),
            form.comment.trim(),
        )
        .await?;
    Ok(back_to(&format!("/review/sessions/{}", d.session_id)))
}

pub(super) async fn countersign(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    check_csrf(&who, &form.csrf)?;
    let d = app.countersign(&who, &path).await?;
    Ok(back_to(&format!("/review/sessions/{}", d.session_id)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldForm {
    #[serde(default)]
    csrf: String,
    reason: String,
}

pub(super) async fn hold(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
    form: web::Form<HoldForm>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    check_csrf(&who, &form.csrf)?;
    app.place_hold(&who, &path, &form.reason).await?;
    Ok(back_to(&format!("/review/sessions/{}", path.as_str())))
}

pub(super) async fn release_hold(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    check_csrf(&who, &form.csrf)?;
    app.release_hold(&who, &path).await?;
    Ok(back_to(&format!("/review/sessions/{}", path.as_str())))
}

/// Where a form goes after it was handled (303 See Other).
fn back_to(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
