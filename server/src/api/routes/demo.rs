//! The demo lesson at `/demo`: a page (embedded in the binary) that plays a real video with the
//! learner SDK, plus demo-only endpoints that start sessions for the seeded demo platform so a
//! newcomer needs no platform of their own. The SDK bundle and the video are files built by
//! `scripts/build-demo` (read from the assets directory at request time; a clear problem+json
//! names the build step when they are missing).
//!
//! Invariant: these endpoints act only on the demo platform recorded in
//! `<data-dir>/demo-credentials.json`; without that file (`--no-demo`) they answer 404.

use std::path::{Path, PathBuf};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::error::ApiResult;
use crate::app::catalog::{NewClass, NewEnrolment, NewLearner};
use crate::app::demo::DemoCredentials;
use crate::app::sessions::{StartSession, StartedSession};
use crate::app::{App, AppError};
use crate::model::Platform;

/// Where the demo finds its files.
#[derive(Debug, Clone)]
pub struct DemoSite {
    pub data_dir: PathBuf,
    /// `PROCTOR_DEMO_ASSETS`, default `sdk-js/dist` (relative to the working directory).
    pub assets_dir: PathBuf,
}

impl DemoSite {
    pub fn new(data_dir: &Path) -> DemoSite {
        DemoSite {
            data_dir: data_dir.to_owned(),
            assets_dir: std::env::var_os("PROCTOR_DEMO_ASSETS")
                .map_or_else(|| PathBuf::from("sdk-js/dist"), PathBuf::from),
        }
    }
}

const PAGE: &str = include_str!("demo.html");

/// Registers `/demo` and its endpoints.
pub fn configure(cfg: &mut web::ServiceConfig, site: DemoSite) {
    cfg.app_data(web::Data::new(site))
        .route("/demo", web::get().to(page))
        .route("/demo/", web::get().to(page))
        .route("/demo/assets/{name}", web::get().to(asset))
        .route("/demo/session", web::post().to(start))
        .route("/demo/sessions/{id}/verdict", web::get().to(verdict));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(PAGE)
}

/// The files the page loads; anything else is 404.
fn asset_file(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "proctor.umd.cjs" => Some(("proctor.umd.cjs", "text/javascript; charset=utf-8")),
        "lesson.webm" => Some(("demo/lesson.webm", "video/webm")),
        _ => None,
    }
}

async fn asset(
    site: web::Data<DemoSite>,
    req: HttpRequest,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (file, mime) = asset_file(&name).ok_or(AppError::NotFound("demo asset"))?;
    let path = site.assets_dir.join(file);
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        tracing::warn!(path = %path.display(), "A demo asset is missing; run scripts/build-demo.");
        AppError::NotFound(
            "demo asset (build it: run `scripts/build-demo` in the repository, or set PROCTOR_DEMO_ASSETS)",
        )
    })?;
    Ok(ranged(&req, bytes, mime))
}

/// Serves `bytes`, honouring a single `Range: bytes=a-b` (browsers need it to seek video).
fn ranged(req: &HttpRequest, bytes: Vec<u8>, mime: &str) -> HttpResponse {
    let len = bytes.len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let start: usize = a.parse().ok()?;
            let end: usize = if b.is_empty() {
                len.checked_sub(1)?
            } else {
                b.parse::<usize>().ok()?.min(len.checked_sub(1)?)
            };
            (start <= end).then_some((start, end))
        });
    match range {
        Some((start, end)) => HttpResponse::PartialContent()
            .content_type(mime)
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")))
            .body(bytes[start..=end].to_vec()),
        None => HttpResponse::Ok()
            .content_type(mime)
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .body(bytes),
    }
}

/// What the demo page asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoStart {
    /// Consent to face processing; without it the session takes the non-face path.
    #[serde(default = "yes")]
    face_consent: bool,
    /// Continue as the learner of this demo enrolment (a second tab, the next lesson).
    #[serde(default)]
    enrolment_id: Option<String>,
    /// Lesson index in the demo course, from 0.
    #[serde(default)]
    lesson: usize,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
struct DemoStarted {
    enrolment_id: String,
    session: StartedSession,
}

async fn demo_platform(
    app: &App,
    site: &DemoSite,
) -> Result<(Platform, DemoCredentials), AppError> {
    let text = tokio::fs::read_to_string(site.data_dir.join("demo-credentials.json"))
        .await
        .map_err(|_| AppError::NotFound("demo (the server runs with --no-demo)"))?;
    let creds: DemoCredentials =
        serde_json::from_str(&text).map_err(|e| AppError::Internal(e.to_string()))?;
    let platform = app
        .store
        .platform(&creds.platform_id)
        .await?
        .ok_or(AppError::NotFound("demo platform"))?;
    Ok((platform, creds))
}

/// Enrols a fresh demo learner (or reuses `enrolment_id`) and starts a session.
async fn start(
    app: web::Data<App>,
    site: web::Data<DemoSite>,
    body: web::Json<DemoStart>,
) -> ApiResult<HttpResponse> {
    let (platform, creds) = demo_platform(&app, &site).await?;
    let req = body.into_inner();
    let lesson_id = creds
        .lesson_ids
        .get(req.lesson)
        .cloned()
        .ok_or(AppError::Invalid {
            field: "lesson",
            why: format!("must be below {}", creds.lesson_ids.len()),
        })?;
    let enrolment_id = match req.enrolment_id {
        Some(id) => id,
        None => {
            let class = app
                .create_class(
                    &platform,
                    NewClass {
                        name: "Demo class 演示班".into(),
                        course_id: creds.course_id.clone(),
                        profile: None,
                        occupation: None,
                        region: None,
                        planned_total_hours: 30,
                        planned_online_hours: 10,
                    },
                )
                .await?;
            let n: u64 = rand::random::<u64>() % 100_000_000_000_000_000;
            let learner = app
                .create_learner(
                    &platform,
                    NewLearner {
                        external_ref: format!("demo-{n}"),
                        real_name: "演示学员 Demo learner".into(),
                        id_number: format!("{n:017}X"),
                        face_consent: req.face_consent,
                    },
                )
                .await?;
            app.create_enrolment(
                &platform,
                NewEnrolment {
                    class_id: class.id,
                    learner_id: learner.id,
                },
            )
            .await?
            .id
        }
    };
    let session = app
        .start_session(
            &platform,
            StartSession {
                enrolment_id: enrolment_id.clone(),
                lesson_id,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(DemoStarted {
        enrolment_id,
        session,
    }))
}

/// The verdict of a demo session (demo platform only), so the page can show the credit.
async fn verdict(
    app: web::Data<App>,
    site: web::Data<DemoSite>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (platform, _) = demo_platform(&app, &site).await?;
    let (rec, ctx) = app.session_of(&platform, &id).await?;
    Ok(HttpResponse::Ok().json(app.session_verdict(&rec, &ctx).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_assets_are_served() {
        assert!(asset_file("proctor.umd.cjs").is_some());
        assert!(asset_file("lesson.webm").is_some());
        assert!(asset_file("../demo-credentials.json").is_none());
        assert!(asset_file("keys").is_none());
    }
}
