//! `GET /metrics`: the Prometheus text exposition (every role serves it on its `--listen`
//! address). Gauges that describe this process's state right now (face availability, the
//! in-process bus's channel depths) are refreshed at scrape time; see `crate::metrics`.

use actix_web::{HttpResponse, get, web};

use crate::adapters::bus::Bus;
use crate::app::App;
use crate::metrics::metrics;

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(tag = "operations", responses((status = 200,
    description = "Prometheus text exposition of every proctor_* metric",
    content_type = "text/plain; version=0.0.4", body = String)))]
#[get("/metrics")]
pub async fn scrape(app: web::Data<App>) -> HttpResponse {
    let m = metrics();
    m.face_available.set(i64::from(app.face.state().is_ok()));
    if let Bus::Memory(bus) = &app.bus {
        for (p, depth) in bus.depths().into_iter().enumerate() {
            let p = p.to_string();
            m.bus_lag
                .with_label_values(&[&p])
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            // In process nothing is read without being handled at once: none pending.
            m.bus_pending.with_label_values(&[&p]).set(0);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render())
}
