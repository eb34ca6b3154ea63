//! Liveness and readiness. `/healthz` checks only that the process serves requests (no
//! dependencies, so a database outage never restarts pods); `/readyz` checks the store, the
//! drain state and names the face component with its state ("ok" or "unavailable: why").
//! Face checks being unavailable does not make the service unready: sessions still run, face
//! checks answer 503 and the non-face path remains.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;

/// Readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub store: String,
    pub draining: bool,
    pub face: FaceState,
    /// The server clock's speed relative to real time (1 in production).
    pub time_scale: f64,
}

/// The face component's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceState {
    pub name: String,
    pub state: String,
}

/// Liveness: the process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process serves requests")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store answers and the server is not draining.
#[utoipa::path(tag = "operations", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
#[get("/readyz")]
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    let store = match app.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let draining = app.is_draining();
    let ready = store == "ok" && !draining;
    let body = Readiness {
        ready,
        store,
        draining,
        face: FaceState {
            name: app.face.name().to_owned(),
            state: match app.face.state() {
                Ok(()) => "ok".into(),
                Err(why) => format!("unavailable: {why}"),
            },
        },
        time_scale: app.clock.scale(),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
