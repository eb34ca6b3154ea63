//! `Idempotency-Key` on the platform API's POST endpoints. The first request with a key runs
//! and its response (status, content type, body) is kept for 24 h; a retry with the same key
//! and the same request (method, path, query, body) gets that response again (with
//! `Idempotent-Replayed: true`) without running twice; the same key with a different request
//! is refused (422 problem+json), and while the first is still running a retry gets 409.
//! Keys are per platform (the bearer token's subject). Kept in Redis (`SET NX EX`) when the
//! service has one, so every gateway sees them; in process memory otherwise. A 5xx response
//! is not kept: the client may retry it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::app::{App, AppError};

pub const HEADER: &str = "Idempotency-Key";
const TTL: Duration = Duration::from_secs(24 * 3600);

/// What is kept per key.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Record {
    InFlight {
        fp: String,
    },
    Done {
        fp: String,
        status: u16,
        content_type: String,
        body_b64: String,
    },
}

/// The in-memory store (no Redis): key → (record, expiry).
#[derive(Debug, Default, Clone)]
pub struct Memory(Arc<Mutex<HashMap<String, (Record, Instant)>>>);

enum Claim {
    Mine,
    Existing(Record),
}

impl Memory {
    fn claim(&self, key: &str, fp: &str) -> Claim {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if m.len() > 10_000 {
            m.retain(|_, (_, exp)| *exp > now);
        }
        match m.get(key) {
            Some((r, exp)) if *exp > now => Claim::Existing(r.clone()),
            Some(_) | None => {
                m.insert(
                    key.to_owned(),
                    (Record::InFlight { fp: fp.to_owned() }, now + TTL),
                );
                Claim::Mine
            }
        }
    }
    fn put(&self, key: &str, r: Option<Record>) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match r {
            Some(r) => {
                m.insert(key.to_owned(), (r, Instant::now() + TTL));
            }
            None => {
                m.remove(key);
            }
        }
    }
}

async fn claim(app: &App, mem: &Memory, key: &str, fp: &str) -> Result<Claim, ApiError> {
    let Some(conn) = &app.redis else {
        return Ok(mem.claim(key, fp));
    };
    let mut conn = conn.clone();
    let rkey = format!("{}:idem:{{{key}}}", conn.ns());
    let inflight = serde_json::to_string(&Record::InFlight { fp: fp.to_owned() })
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let unavailable = |_| {
        ApiError::App(AppError::Unavailable {
            what: "idempotency store",
            retry_after_s: 2,
        })
    };
    let set: Option<String> = conn
        .query(
            redis::cmd("SET")
                .arg(&rkey)
                .arg(inflight)
                .arg("NX")
                .arg("EX")
                .arg(TTL.as_secs()),
        )
        .await
        .map_err(unavailable)?;
    if set.is_some() {
        return Ok(Claim::Mine);
    }
    let got: Option<String> = conn
        .query(redis::cmd("GET").arg(&rkey))
        .await
        .map_err(unavailable)?;
    match got.and_then(|s| serde_json::from_str::<Record>(&s).ok()) {
        Some(r) => Ok(Claim::Existing(r)),
        // Expired between the two calls: run it.
        None => Ok(Claim::Mine),
    }
}

async fn put(app: &App, mem: &Memory, key: &str, r: Option<Record>) {
    let Some(conn) = &app.redis else {
        mem.put(key, r);
        return;
    };
    let mut conn = conn.clone();
    let rkey = format!("{}:idem:{{{key}}}", conn.ns());
    let res: redis::RedisResult<()> = match r.and_then(|r| serde_json::to_string(&r).ok()) {
        Some(v) => {
            conn.query(
                redis::cmd("SET")
                    .arg(&rkey)
                    .arg(v)
                    .arg("EX")
                    .arg(TTL.as_secs()),
            )
            .await
        }
        None => conn.query(redis::cmd("DEL").arg(&rkey)).await,
    };
    if let Err(e) = res {
        tracing::warn!(error = %e, "Failed to store an idempotency record.");
    }
}

fn valid_key(k: &str) -> bool {
    (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The middleware (wrapped around the whole app; acts on POST `/api/v1/…` with the header).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().map(str::to_owned));
    // JSON (or empty) bodies only: uploads (images, evidence) pass through untouched.
    let ct = req.content_type();
    let applies = req.method() == Method::POST
        && req.path().starts_with("/api/v1/")
        && (ct.is_empty() || ct.starts_with("application/json"));
    let Some(key) = key.filter(|_| applies) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let bad = |req: ServiceRequest, e: ApiError| Ok(req.into_response(e.error_response()));
    let key = match key {
        Ok(k) if valid_key(&k) => k,
        Ok(_) | Err(_) => {
            return bad(
                req,
                ApiError::Malformed(format!(
                    "{HEADER} must be 1 to 255 visible ASCII characters"
                )),
            );
        }
    };
    let Some(app) = req
        .app_data::<web::Data<App>>()
        .map(|d| d.clone().into_inner())
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let mem = req
        .app_data::<web::Data<Memory>>()
        .map(|m| m.get_ref().clone())
        .unwrap_or_default();
    // Per platform: an unauthenticated request is left to the handler (401).
    let platform = super::auth::bearer(req.request())
        .and_then(|t| app.keys.verify_platform(&t).ok())
        .map(|c| c.sub);
    let Some(platform) = platform else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (http, mut payload) = req.into_parts();
    let body = match <web::Bytes as actix_web::FromRequest>::from_request(&http, &mut payload).await
    {
        Ok(b) => b,
        Err(e) => return Ok(ServiceResponse::new(http, e.error_response())),
    };
    let fp = crate::auth::sha256_hex(
        &[
            http.method().as_str().as_bytes(),
            b" ",
            http.uri().to_string().as_bytes(),
            b"\n",
            &body,
        ]
        .concat(),
    );
    let store_key = format!("{platform}:{}", crate::auth::sha256_hex(key.as_bytes()));
    match claim(&app, &mem, &store_key, &fp).await {
        Err(e) => return Ok(ServiceResponse::new(http, e.error_response())),
        Ok(Claim::Existing(Record::InFlight { fp: f })) => {
            let e = if f == fp {
                ApiError::App(AppError::Conflict(format!(
                    "a request with this {HEADER} is still being processed; retry later"
                )))
            } else {
                mismatch()
            };
            return Ok(ServiceResponse::new(http, e.error_response()));
        }
        Ok(Claim::Existing(Record::Done {
            fp: f,
            status,
            content_type,
            body_b64,
        })) => {
            if f != fp {
                return Ok(ServiceResponse::new(http, mismatch().error_response()));
            }
            let body = base64::engine::general_purpose::STANDARD
                .decode(body_b64)
                .unwrap_or_default();
            let resp = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .insert_header((header::CONTENT_TYPE, content_type))
                .insert_header(("Idempotent-Replayed", "true"))
                .body(body);
            return Ok(ServiceResponse::new(http, resp));
        }
        Ok(Claim::Mine) => {}
    }
    let req = ServiceRequest::from_parts(http, actix_web::dev::Payload::from(body));
    let res = next.call(req).await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            put(&app, &mem, &store_key, None).await;
            return Err(e);
        }
    };
    let (http, resp) = res.into_parts();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let (head, body) = resp.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let record = (!status.is_server_error()).then(|| Record::Done {
        fp,
        status: status.as_u16(),
        content_type,
        body_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
    });
    put(&app, &mem, &store_key, record).await;
    Ok(ServiceResponse::new(
        http,
        head.set_body(BoxBody::new(bytes)),
    ))
}

fn mismatch() -> ApiError {
    ApiError::App(AppError::Invalid {
        field: "Idempotency-Key",
        why: "was already used with a different request".into(),
    })
}

/// Adds the header parameter to every POST operation of the OpenAPI document.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    for item in doc.paths.paths.values_mut() {
        if let Some(op) = item.post.as_mut() {
            let p = ParameterBuilder::new()
                .name(HEADER)
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .description(Some("Makes the POST safe to retry: the same key with the same request within 24 h returns the first response again (header `Idempotent-Replayed: true`) without repeating the effect; the same key with a different request is refused with 422; 409 while the first is still running. 1–255 visible ASCII characters, per platform."))
                .schema(Some(utoipa::openapi::schema::Object::with_type(utoipa::openapi::schema::Type::String)))
                .build();
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(utoipa::openapi::RefOr::T(p));
        }
    }
}
