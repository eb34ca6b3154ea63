//! OAuth2 client credentials (RFC 6749 §4.4): a platform trades its client id and secret for a
//! one-hour bearer JWT. Credentials come in the form body or HTTP Basic.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::{ApiError, ApiResult};
use crate::app::{App, AppError};

/// The token request (form-encoded).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The token response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

fn basic(req: &HttpRequest) -> Option<(String, String)> {
    let h = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ")?)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Issues an access token for a platform.
#[utoipa::path(tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Access token", body = TokenResponse),
        (status = 400, description = "Malformed request or unsupported grant", body = crate::api::error::Problem),
        (status = 401, description = "Unknown client or wrong secret", body = crate::api::error::Problem)))]
#[post("/oauth/token")]
pub async fn token(
    app: web::Data<App>,
    req: HttpRequest,
    form: web::Form<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let form = form.into_inner();
    if form.grant_type != "client_credentials" {
        return Err(ApiError::Malformed(format!(
            "unsupported grant_type {:?}; use client_credentials",
            form.grant_type
        )));
    }
    let (id, secret) = match (basic(&req), form.client_id, form.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return Err(ApiError::Unauthorized(
                "client_id and client_secret are required".into(),
            ));
        }
    };
    let platform = app.authenticate_client(&id, &secret).await.map_err(|e| {
        if let AppError::Forbidden(why) = e {
            ApiError::Unauthorized(why)
        } else {
            ApiError::App(e)
        }
    })?;
    let (access_token, expires_in) = app
        .keys
        .issue_platform(&platform.id, &platform.province)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
        }))
}

/// The public keys that sign tokens (JWK Set).
#[utoipa::path(tag = "auth", responses((status = 200, description = "JWK Set", body = Object)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(app: web::Data<App>) -> HttpResponse {
    HttpResponse::Ok().json(app.keys.jwks())
}
