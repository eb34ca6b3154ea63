//! Courses, classes, learners and enrolments, scoped to the calling platform.

use actix_web::{HttpResponse, get, post, web};

use crate::api::auth::CallingPlatform;
use crate::api::error::{ApiResult, Problem};
use crate::app::App;
use crate::app::catalog::{NewClass, NewCourse, NewEnrolment, NewLearner};
use crate::model::{Class, Course, Enrolment, Learner};

/// Creates a course with its lessons in study order.
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), request_body = NewCourse, responses(
    (status = 201, body = Course), (status = 422, body = Problem), (status = 401, body = Problem)))]
#[post("/courses")]
pub async fn create_course(
    app: web::Data<App>,
    p: CallingPlatform,
    body: web::Json<NewCourse>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.create_course(&p.0, body.into_inner()).await?))
}

/// Reads a course; `approved` on each lesson says whether its content hash is approved (R13).
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = Course), (status = 404, body = Problem)))]
#[get("/courses/{id}")]
pub async fn get_course(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.course(&p.0, &id).await?))
}

/// Creates a class bound to the newest version of a policy profile (R7, R9, R10 checked).
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), request_body = NewClass, responses(
    (status = 201, body = Class), (status = 409, description = "A plan rule refuses it", body = Problem),
    (status = 422, body = Problem)))]
#[post("/classes")]
pub async fn create_class(
    app: web::Data<App>,
    p: CallingPlatform,
    body: web::Json<NewClass>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.create_class(&p.0, body.into_inner()).await?))
}

/// Reads a class.
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = Class), (status = 404, body = Problem)))]
#[get("/classes/{id}")]
pub async fn get_class(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.class(&p.0, &id).await?))
}

/// Registers a real-name learner.
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), request_body = NewLearner, responses(
    (status = 201, body = Learner), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/learners")]
pub async fn create_learner(
    app: web::Data<App>,
    p: CallingPlatform,
    body: web::Json<NewLearner>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.create_learner(&p.0, body.into_inner()).await?))
}

/// Reads a learner.
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = Learner), (status = 404, body = Problem)))]
#[get("/learners/{id}")]
pub async fn get_learner(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.learner(&p.0, &id).await?))
}

/// Enrols a learner in a class (R11 cooldown and R12 class size checked).
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), request_body = NewEnrolment, responses(
    (status = 201, body = Enrolment), (status = 409, body = Problem), (status = 404, body = Problem)))]
#[post("/enrolments")]
pub async fn create_enrolment(
    app: web::Data<App>,
    p: CallingPlatform,
    body: web::Json<NewEnrolment>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(app.create_enrolment(&p.0, body.into_inner()).await?))
}

/// Reads an enrolment.
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = Enrolment), (status = 404, body = Problem)))]
#[get("/enrolments/{id}")]
pub async fn get_enrolment(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.enrolment(&p.0, &id).await?.0))
}

/// Records that the enrolment's training was examined (starts the R11 cooldown).
#[utoipa::path(tag = "catalogue", security(("bearer" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = Enrolment), (status = 404, body = Problem)))]
#[post("/enrolments/{id}/examined")]
pub async fn mark_examined(
    app: web::Data<App>,
    p: CallingPlatform,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(app.mark_examined(&p.0, &id, None).await?))
}

/// The policy profiles this server knows (all versions), as data.
#[utoipa::path(tag = "catalogue", responses((status = 200, body = [crate::domain::Profile])))]
#[get("/profiles")]
pub async fn profiles() -> ApiResult<HttpResponse> {
    let all = crate::domain::Profile::builtin()
        .map_err(|e| crate::app::AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(all))
}
