//! The HTTP and WebSocket API: routes, authentication, problem+json errors and the OpenAPI
//! 3.1 document generated from the handlers (utoipa). The committed copy `server/openapi.json`
//! is checked against the generated one by a test.

pub mod auth;
pub mod error;
pub mod idempotency;
pub mod routes;
pub mod socket;
pub mod upgrade;
pub mod ws;

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use utoipa::OpenApi;
use utoipa::openapi::security::{Flow, OAuth2, SecurityScheme};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use error::{ApiError, ApiResult};

/// Largest JSON request body.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "proctor API",
        description = "Anti-fraud proctoring for subsidised online vocational training. Platforms register \
            courses, classes, learners and enrolments, start learning sessions (admission checks R2, R5, R11, R13, \
            R14), and read verdicts. Learners' browsers connect to `GET /api/v1/sessions/{id}/ws` with the learner \
            token (`?access_token=`); see docs/protocol.md. Every error is application/problem+json (RFC 9457).",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "OAuth2 client credentials and signing keys"),
        (name = "catalogue", description = "Courses, classes, learners, enrolments, policy profiles"),
        (name = "sessions", description = "Learning sessions and verdicts"),
        (name = "learner", description = "Uploads from the learner's browser (learner token)"),
        (name = "operations", description = "Health, readiness and Prometheus metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
                utoipa::openapi::security::ClientCredentials::new(
                    "/oauth/token",
                    utoipa::openapi::security::Scopes::new(),
                ),
            )])),
        );
        components.add_security_scheme(
            "learner",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The learner token from POST /api/v1/sessions (or ?access_token=)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Health and readiness only: what a worker-only process serves.
pub fn configure_health(cfg: &mut ServiceConfig) {
    cfg.service(routes::health::healthz)
        .service(routes::health::readyz)
        .service(routes::metrics::scrape);
}

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    use routes::{catalog, face, health, oauth, sessions};
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(routes::metrics::scrape)
        .service(oauth::token)
        .service(oauth::jwks)
        .service(
            utoipa_actix_web::scope("/api/v1")
                .service(catalog::create_course)
                .service(catalog::get_course)
                .service(catalog::create_class)
                .service(catalog::get_class)
                .service(catalog::create_learner)
                .service(catalog::get_learner)
                .service(face::enrol)
                .service(face::withdraw)
                .service(catalog::create_enrolment)
                .service(catalog::get_enrolment)
                .service(catalog::mark_examined)
                .service(catalog::profiles)
                .service(sessions::start)
                .service(sessions::get)
                .service(sessions::verdict)
                .service(sessions::events)
                .service(sessions::replay)
                .service(routes::appeals::submit)
                .service(sessions::enrolment_summary)
                .service(sessions::upload_snapshot)
                .service(sessions::face_check)
                .service(sessions::liveness_challenge)
                .service(sessions::liveness_answer)
                .service(ws::beacon)
                .map(|s| s.service(ws::connect)),
        );
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts()
        .1;
    idempotency::document(&mut doc);
    doc
}

/// The OpenAPI document as pretty JSON with a trailing newline (the committed form).
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// JSON extractor limits and problem+json errors.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        .error_handler(error::json_error)
}

/// Unknown routes answer problem+json too.
pub async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::App(crate::app::AppError::NotFound("route")).error_response()
}

/// Reads a request body up to `limit` bytes; larger bodies are refused with 413 before they
/// are buffered in full.
pub async fn read_limited(mut payload: web::Payload, limit: usize) -> ApiResult<web::Bytes> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "the body exceeds {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
