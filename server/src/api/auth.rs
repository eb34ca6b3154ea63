//! Request authentication: platform bearer tokens (OAuth2 client credentials) and learner
//! tokens (one session each). Extractors fail with problem+json.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, web};

use super::error::ApiError;
use crate::app::{App, AppError};
use crate::auth::{LearnerClaims, TokenError};
use crate::model::Platform;

/// The calling platform, from a valid bearer token.
#[derive(Debug, Clone)]
pub struct CallingPlatform(pub Platform);

/// The learner and session a learner token was issued for.
#[derive(Debug, Clone)]
pub struct CallingLearner(pub LearnerClaims);

/// The bearer token from `Authorization`, or from `?access_token=` (browsers cannot set
/// headers on a WebSocket).
pub fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        return h
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(|s| s.trim().to_owned());
    }
    url_param(req.query_string(), "access_token")
}

fn url_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::TokenExpired,
        TokenError::Invalid(why) => ApiError::Unauthorized(format!("invalid token: {why}")),
    }
}

fn app(req: &HttpRequest) -> Result<Arc<App>, ApiError> {
    req.app_data::<web::Data<App>>()
        .map(|d| d.clone().into_inner())
        .ok_or_else(|| ApiError::App(AppError::Internal("app state missing".into())))
}

impl FromRequest for CallingPlatform {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer(req);
        let app = app(req);
        Box::pin(async move {
            let app = app?;
            let token =
                token.ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
            let claims = app.keys.verify_platform(&token).map_err(token_error)?;
            let platform = app
                .store
                .platform(&claims.sub)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| {
                    ApiError::Unauthorized("the token's platform no longer exists".into())
                })?;
            Ok(CallingPlatform(platform))
        })
    }
}

impl FromRequest for CallingLearner {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready((|| {
            let app = app(req)?;
            let token = bearer(req)
                .ok_or_else(|| ApiError::Unauthorized("a learner token is required".into()))?;
            Ok(CallingLearner(
                app.keys.verify_learner(&token).map_err(token_error)?,
            ))
        })())
    }
}

impl CallingLearner {
    /// Refuses a token issued for another session.
    pub fn for_session(&self, session_id: &str) -> Result<&LearnerClaims, ApiError> {
        if self.0.sid == session_id {
            Ok(&self.0)
        } else {
            Err(ApiError::App(AppError::Forbidden(
                "this learner token belongs to another session".into(),
            )))
        }
    }
}
