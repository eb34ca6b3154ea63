//! The one table from errors to HTTP: every error leaves as `application/problem+json`
//! (RFC 9457) with a stable `type`, a `title`, the `status`, a `detail`, and for rule refusals
//! the `rule` that refused. 5xx bodies never carry internals; those go to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppError;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/rule-refused`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For `rule-refused`: the rule code, e.g. `R5_sequential_lessons`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For `invalid-request`: the offending field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way out of a handler.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    /// The body or query could not be parsed (bad JSON, unknown field, wrong type).
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request body too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMedia(String),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    #[error("token expired")]
    TokenExpired,
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        let (kind, title, detail, rule, field) = match self {
            ApiError::App(AppError::Invalid { field, why }) => (
                "invalid-request",
                "Invalid request",
                format!("{field} {why}"),
                None,
                Some((*field).to_owned()),
            ),
            ApiError::App(AppError::Rule { rule, detail }) => (
                "rule-refused",
                "Refused by a policy rule",
                detail.clone(),
                Some((*rule).to_owned()),
                None,
            ),
            ApiError::App(AppError::NotFound(what)) => (
                "not-found",
                "Not found",
                format!("no such {what}"),
                None,
                None,
            ),
            ApiError::App(AppError::Forbidden(why)) => {
                ("forbidden", "Forbidden", why.clone(), None, None)
            }
            ApiError::App(AppError::Conflict(why)) => {
                ("conflict", "Conflict", why.clone(), None, None)
            }
            ApiError::App(AppError::Unavailable { what, .. }) => (
                "unavailable",
                "Temporarily unavailable",
                format!("the {what} is unavailable; nothing was changed, retry later"),
                None,
                None,
            ),
            ApiError::App(AppError::Internal(_)) => (
                "internal",
                "Internal error",
                "an internal error occurred; it has been logged".to_owned(),
                None,
                None,
            ),
            ApiError::Malformed(why) => (
                "malformed-request",
                "Malformed request",
                why.clone(),
                None,
                None,
            ),
            ApiError::TooLarge(why) => (
                "payload-too-large",
                "Payload too large",
                why.clone(),
                None,
                None,
            ),
            ApiError::UnsupportedMedia(why) => (
                "unsupported-media-type",
                "Unsupported media type",
                why.clone(),
                None,
                None,
            ),
            ApiError::Unauthorized(why) => {
                ("unauthorized", "Unauthorized", why.clone(), None, None)
            }
            ApiError::TokenExpired => (
                "token-expired",
                "Token expired",
                "the bearer token has expired".to_owned(),
                None,
                None,
            ),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
            rule,
            field,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::App(AppError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::App(AppError::Rule { .. }) => StatusCode::CONFLICT,
            ApiError::App(AppError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::App(AppError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::App(AppError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::App(AppError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::App(AppError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized(_) | ApiError::TokenExpired => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::App(AppError::Internal(why)) = self {
            tracing::error!(error = %why, "Request failed with an internal error.");
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.content_type("application/problem+json");
        if let ApiError::App(AppError::Unavailable { retry_after_s, .. }) = self {
            resp.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
        }
        if matches!(self, ApiError::Unauthorized(_) | ApiError::TokenExpired) {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"proctor\""),
            ));
        }
        resp.json(self.problem())
    }
}

/// Turns actix's JSON extractor errors into problem+json.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    // JsonPayloadError is non-exhaustive: anything not named here is a malformed body.
    let e = if matches!(err, E::OverflowKnownLength { .. } | E::Overflow { .. }) {
        ApiError::TooLarge(err.to_string())
    } else if matches!(err, E::ContentType) {
        ApiError::UnsupportedMedia("expected application/json".into())
    } else {
        ApiError::Malformed(err.to_string())
    };
    e.into()
}

/// Turns query-string errors into problem+json.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::Malformed(err.to_string()).into()
}

/// Turns path errors into problem+json.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::Malformed(err.to_string()).into()
}

pub type ApiResult<T> = Result<T, ApiError>;
