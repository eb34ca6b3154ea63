//! Prometheus metrics: every metric name the service exports is defined here, once, and
//! registered in one process-wide `Registry` (text exposition at `GET /metrics`, served by
//! every role). Naming follows Prometheus conventions: a `proctor_` prefix, base units
//! (seconds, bytes), `_total` on counters, histograms for latency.
//!
//! Invariant: label values come from small closed sets (route templates, status codes,
//! reasons, rule codes, model names, partition numbers, platform names); never a learner,
//! session, lesson or request id. Labelled families are pre-initialised with their known
//! values, so a scrape shows every family (at zero) before any traffic.
//!
//! The domain stays pure: only the shell (api, app, pipeline, adapters) records metrics.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Latency buckets for requests, store operations and folds (seconds): 0.5 ms … 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Event latency (seconds): finer where the goals are (5 ms, 20 ms, 300 ms).
const EVENT_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
    0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];
/// Face model inference (seconds): 1 ms … 5 s.
const INFERENCE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// How long learners take to answer a challenge (server seconds): 1 s … 10 min.
const ANSWER_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Challenge kinds, as the protocol names them.
pub const CHALLENGE_KINDS: &[&str] = &["popup", "snapshot", "face_recheck", "liveness"];
/// The face models behind `FaceCheck` (ONNX backend).
pub const FACE_MODELS: &[&str] = &["yunet", "dlib_resnet", "minifasnet_2_7", "minifasnet_4_0"];
/// Why the gateway refused (or did not take) a client message.
pub const REJECT_REASONS: &[&str] = &["malformed", "gap", "duplicate", "bus_unavailable"];
/// Store operations that are timed (the hot path).
pub const STORE_OPS: &[&str] = &[
    "append_events",
    "save_verdicts",
    "events",
    "session",
    "next_server_seq",
    "insert_snapshot",
];

/// Every collector, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub build_info: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ws_connections: IntGauge,
    pub ws_messages: IntCounterVec,
    pub events_ingested: IntCounterVec,
    pub events_rejected: IntCounterVec,
    pub events_persisted: IntCounter,
    pub verdict_records: IntCounter,
    pub bus_partitions: IntGauge,
    pub bus_lag: IntGaugeVec,
    pub bus_pending: IntGaugeVec,
    pub partitions_owned: IntGauge,
    pub unheard: GaugeVec,
    pub reclaimed: IntCounter,
    pub fold_duration: HistogramVec,
    pub event_latency: HistogramVec,
    pub verdicts: IntCounterVec,
    pub violations: IntCounterVec,
    pub challenges_issued: IntCounterVec,
    pub challenges_answered: IntCounterVec,
    pub challenges_missed: IntCounterVec,
    pub challenge_answer_time: HistogramVec,
    pub face_checks: IntCounterVec,
    pub face_available: IntGauge,
    pub face_inference: HistogramVec,
    pub face_queue: IntGauge,
    pub snapshots_stored: IntCounter,
    pub snapshot_bytes: IntCounter,
    pub store_duration: HistogramVec,
    pub store_errors: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub process_resident_memory: IntGauge,
    pub process_cpu: Gauge,
    pub process_open_fds: IntGauge,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &M
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter definition");
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter definition");
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid gauge definition");
    r.register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition");
    r.register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid histogram definition");
    r.register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let m = Metrics {
            build_info: gauge_vec(
                &r,
                "proctor_build_info",
                "Always 1; the labels name the running build and role.",
                &["version", "role"],
            ),
            http_requests: counter_vec(
                &r,
                "proctor_http_requests_total",
                "HTTP requests answered, by method, route template and status code.",
                &["method", "route", "status"],
            ),
            http_duration: histogram_vec(
                &r,
                "proctor_http_request_duration_seconds",
                "HTTP request latency until the response head, by method and route template.",
                &["method", "route"],
                LATENCY_BUCKETS,
            ),
            ws_connections: gauge(
                &r,
                "proctor_ws_connections",
                "Open learner WebSocket connections on this gateway.",
            ),
            ws_messages: counter_vec(
                &r,
                "proctor_ws_messages_total",
                "WebSocket messages, by direction (in: from learners, out: to learners).",
                &["direction"],
            ),
            events_ingested: counter_vec(
                &r,
                "proctor_events_ingested_total",
                "Client events accepted onto the bus (acknowledged), by transport.",
                &["transport"],
            ),
            events_rejected: counter_vec(
                &r,
                "proctor_events_rejected_total",
                "Client messages not taken, by reason (malformed, gap, duplicate, bus_unavailable).",
                &["reason"],
            ),
            events_persisted: counter(
                &r,
                "proctor_events_persisted_total",
                "Events stored by workers (client events from the bus; redeliveries included).",
            ),
            verdict_records: counter(
                &r,
                "proctor_verdict_records_stored_total",
                "Closed evidence records (timeline spans, challenges, checks, findings) stored beside verdicts, then released from worker memory.",
            ),
            bus_partitions: gauge(&r, "proctor_bus_partitions", "Configured bus partitions."),
            bus_lag: gauge_vec(
                &r,
                "proctor_bus_lag_entries",
                "Entries on a partition not yet read by its worker (Redis Streams group lag; in-process: channel depth).",
                &["partition"],
            ),
            bus_pending: gauge_vec(
                &r,
                "proctor_bus_pending_entries",
                "Entries read but not yet acknowledged on a partition (Redis Streams XPENDING count).",
                &["partition"],
            ),
            partitions_owned: gauge(
                &r,
                "proctor_bus_partitions_owned",
                "Partitions this process's workers currently own.",
            ),
            unheard: {
                let g = GaugeVec::new(
                    Opts::new(
                        "proctor_worker_unheard_seconds",
                        "How far behind now a partition's worker has surely heard everything accepted for it; it judges silence (session leases, challenge deadlines) only up to there.",
                    ),
                    &["partition"],
                )
                .expect("valid gauge definition");
                r.register(Box::new(g.clone()))
                    .expect("metric names are unique");
                g
            },
            reclaimed: counter(
                &r,
                "proctor_bus_reclaimed_entries_total",
                "Stream entries claimed (XAUTOCLAIM) from a previous partition owner.",
            ),
            fold_duration: histogram_vec(
                &r,
                "proctor_fold_duration_seconds",
                "Time to fold a batch into session state (apply), to rebuild one session from its log (refold), or to compute the verdicts handed to the writer in one pass (verdicts).",
                &["kind"],
                LATENCY_BUCKETS,
            ),
            event_latency: histogram_vec(
                &r,
                "proctor_event_latency_seconds",
                "From the gateway accepting an event to the worker folding it into the in-memory verdict state (stage fold), or to the stored verdict that covers it (stage verdict: per stored verdict, its oldest uncovered event). Wall clock across processes.",
                &["stage"],
                EVENT_LATENCY_BUCKETS,
            ),
            verdicts: counter_vec(
                &r,
                "proctor_verdicts_total",
                "Final verdicts of ended sessions, by outcome (counts / not_counted).",
                &["outcome"],
            ),
            violations: counter_vec(
                &r,
                "proctor_violations_total",
                "Rule findings, by rule code and platform name.",
                &["rule", "platform"],
            ),
            challenges_issued: counter_vec(
                &r,
                "proctor_challenges_issued_total",
                "Challenges issued (pop-ups, snapshot requests, face re-checks), by kind.",
                &["kind"],
            ),
            challenges_answered: counter_vec(
                &r,
                "proctor_challenges_answered_total",
                "Challenge answers folded before their deadline, by kind.",
                &["kind"],
            ),
            challenges_missed: counter_vec(
                &r,
                "proctor_challenges_missed_total",
                "Challenges that expired unanswered, by kind.",
                &["kind"],
            ),
            challenge_answer_time: histogram_vec(
                &r,
                "proctor_challenge_answer_seconds",
                "Time from issue to answer, in server seconds (equal to real seconds at time scale 1), by kind.",
                &["kind"],
                ANSWER_BUCKETS,
            ),
            face_checks: counter_vec(
                &r,
                "proctor_face_checks_total",
                "Face checks, by result (passed, failed, unavailable).",
                &["result"],
            ),
            face_available: gauge(
                &r,
                "proctor_face_available",
                "1 when the face models are loaded and face checks can run, else 0.",
            ),
            face_inference: histogram_vec(
                &r,
                "proctor_face_inference_duration_seconds",
                "Face model inference latency, by model.",
                &["model"],
                INFERENCE_BUCKETS,
            ),
            face_queue: gauge(
                &r,
                "proctor_face_queue_depth",
                "Face analyses waiting for a slot on the bounded analysis pool.",
            ),
            snapshots_stored: counter(
                &r,
                "proctor_snapshots_stored_total",
                "Snapshots stored as evidence.",
            ),
            snapshot_bytes: counter(
                &r,
                "proctor_snapshot_bytes_total",
                "Bytes of snapshot images stored as evidence.",
            ),
            store_duration: histogram_vec(
                &r,
                "proctor_store_operation_duration_seconds",
                "Store (database) latency of hot-path operations, by operation.",
                &["operation"],
                LATENCY_BUCKETS,
            ),
            store_errors: counter_vec(
                &r,
                "proctor_store_errors_total",
                "Store operations that failed, by operation.",
                &["operation"],
            ),
            webhook_deliveries: counter_vec(
                &r,
                "proctor_webhook_deliveries_total",
                "Webhook deliveries to platforms, by outcome. proctor has no webhooks yet: this stays 0.",
                &["outcome"],
            ),
            process_resident_memory: gauge(
                &r,
                "proctor_process_resident_memory_bytes",
                "Resident set size of this process.",
            ),
            process_cpu: {
                let g = Gauge::new(
                    "proctor_process_cpu_seconds",
                    "User and system CPU time this process has used (a monotonic gauge; use rate()).",
                )
                .expect("valid gauge definition");
                r.register(Box::new(g.clone()))
                    .expect("metric names are unique");
                g
            },
            process_open_fds: gauge(
                &r,
                "proctor_process_open_fds",
                "Open file descriptors of this process (sockets included).",
            ),
            registry: r,
        };
        for k in CHALLENGE_KINDS {
            m.challenges_issued.with_label_values(&[k]);
            m.challenges_answered.with_label_values(&[k]);
            m.challenges_missed.with_label_values(&[k]);
            m.challenge_answer_time.with_label_values(&[k]);
        }
        for model in FACE_MODELS {
            m.face_inference.with_label_values(&[model]);
        }
        for r in ["passed", "failed", "unavailable"] {
            m.face_checks.with_label_values(&[r]);
        }
        for r in REJECT_REASONS {
            m.events_rejected.with_label_values(&[r]);
        }
        for t in ["ws", "beacon"] {
            m.events_ingested.with_label_values(&[t]);
        }
        for d in ["in", "out"] {
            m.ws_messages.with_label_values(&[d]);
        }
        for o in ["counts", "not_counted"] {
            m.verdicts.with_label_values(&[o]);
        }
        for k in ["apply", "refold", "verdicts"] {
            m.fold_duration.with_label_values(&[k]);
        }
        for s in ["fold", "verdict"] {
            m.event_latency.with_label_values(&[s]);
        }
        for op in STORE_OPS {
            m.store_duration.with_label_values(&[op]);
            m.store_errors.with_label_values(&[op]);
        }
        for o in ["delivered", "failed"] {
            m.webhook_deliveries.with_label_values(&[o]);
        }
        m
    }

    /// Sets `proctor_build_info{version, role} 1`.
    pub fn set_build_info(&self, role: &str) {
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), role])
            .set(1);
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        sample_process(self);
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// A rejected client message.
    pub fn reject(&self, reason: &'static str) {
        self.events_rejected.with_label_values(&[reason]).inc();
    }

    /// Observes one face model's inference.
    pub fn infer<T>(&self, model: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.face_inference
            .with_label_values(&[model])
            .observe(t.elapsed().as_secs_f64());
        out
    }

    /// Counts an open WebSocket until the guard drops.
    pub fn ws_open(&self) -> WsGuard {
        self.ws_connections.inc();
        WsGuard
    }
}

/// Decrements `proctor_ws_connections` when the socket's task ends.
#[derive(Debug)]
pub struct WsGuard;

impl Drop for WsGuard {
    fn drop(&mut self) {
        metrics().ws_connections.dec();
    }
}

/// The label value of a challenge kind (as the protocol names it).
pub fn kind_label(kind: crate::domain::ChallengeKind) -> &'static str {
    use crate::domain::ChallengeKind;
    match kind {
        ChallengeKind::Popup => "popup",
        ChallengeKind::Snapshot => "snapshot",
        ChallengeKind::FaceRecheck => "face_recheck",
        ChallengeKind::Liveness => "liveness",
    }
}

/// Before an event is folded: an answer to an outstanding challenge, given by its deadline,
/// counts as answered and its answer time (server time) is observed.
pub fn observe_answer(fold: &crate::domain::SessionFold, event: &crate::domain::Event) {
    let crate::domain::EventBody::ChallengeAnswered { nonce, .. } = &event.body else {
        return;
    };
    if let Some(o) = fold
        .outstanding()
        .into_iter()
        .find(|o| &o.nonce == nonce && event.at <= o.deadline)
    {
        let m = metrics();
        let kind = kind_label(o.kind);
        m.challenges_answered.with_label_values(&[kind]).inc();
        #[allow(clippy::cast_precision_loss)]
        let secs = event.at.saturating_sub(o.issued_at) as f64 / 1000.0;
        m.challenge_answer_time
            .with_label_values(&[kind])
            .observe(secs);
    }
}

/// Times a store operation and counts its failure.
pub async fn store_op<T, E>(
    op: &'static str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let t = Instant::now();
    let out = f.await;
    let m = metrics();
    m.store_duration
        .with_label_values(&[op])
        .observe(t.elapsed().as_secs_f64());
    if out.is_err() {
        m.store_errors.with_label_values(&[op]).inc();
    }
    out
}

/// RSS, CPU time and open descriptors from /proc (Linux; elsewhere they stay 0).
fn sample_process(m: &Metrics) {
    // statm: size resident shared … in pages; stat: utime (14) and stime (15) in clock ticks.
    const PAGE: i64 = 4096;
    const TICKS: f64 = 100.0;
    if let Ok(s) = std::fs::read_to_string("/proc/self/statm")
        && let Some(pages) = s
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i64>().ok())
    {
        m.process_resident_memory.set(pages * PAGE);
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = s.rsplit_once(')').map(|(_, r)| r)
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command name: state is field 3, utime field 14, stime field 15.
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        m.process_cpu.set((tick(11) + tick(12)) / TICKS);
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        m.process_open_fds
            .set(i64::try_from(d.count()).unwrap_or(i64::MAX));
    }
}

/// The HTTP middleware: requests by method, route template and status, and their latency.
pub mod http {
    use std::time::Instant;

    use actix_web::Error;
    use actix_web::body::MessageBody;
    use actix_web::dev::{ServiceRequest, ServiceResponse};
    use actix_web::middleware::Next;

    /// Records one request. The route label is the matched template
    /// (`/api/v1/sessions/{id}`), `unmatched` for 404s outside every route: never the path.
    pub async fn observe(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        let start = Instant::now();
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let method = method_label(req.method());
        let res = next.call(req).await;
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        let m = super::metrics();
        m.http_requests
            .with_label_values(&[method, route.as_str(), &status.to_string()])
            .inc();
        m.http_duration
            .with_label_values(&[method, route.as_str()])
            .observe(start.elapsed().as_secs_f64());
        res
    }

    /// Methods outside the usual set share one label value.
    fn method_label(m: &actix_web::http::Method) -> &'static str {
        use actix_web::http::Method;
        match *m {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        }
    }
}

/// Bus gauges sampled by worker processes on the Redis Streams pipeline.
pub mod bus {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use tokio::sync::watch;

    use crate::adapters::redis::GROUP;
    use crate::adapters::redis::partition::Share;
    use crate::app::App;

    /// How often partition lag and pending counts are read from Redis.
    pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

    /// Every `SAMPLE_EVERY`: `XINFO GROUPS` of each partition stream (the group's `lag`:
    /// entries not yet delivered; `pending`: delivered, not acknowledged), and the number of
    /// partitions this process owns.
    pub async fn sample_redis(
        app: Arc<App>,
        share: Arc<Share>,
        partitions: usize,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut conn) = app.redis.clone() else {
            return;
        };
        let m = super::metrics();
        loop {
            m.partitions_owned
                .set(i64::try_from(share.owned.load(Ordering::SeqCst)).unwrap_or(0));
            for p in 0..partitions {
                let key = conn.stream_key(p);
                let groups: redis::RedisResult<Vec<HashMap<String, redis::Value>>> = conn
                    .query(redis::cmd("XINFO").arg("GROUPS").arg(&key))
                    .await;
                match groups {
                    Ok(groups) => {
                        let Some(g) = groups.iter().find(|g| {
                            g.get("name")
                                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                                .is_some_and(|n| n == GROUP)
                        }) else {
                            continue;
                        };
                        let int = |k: &str| {
                            g.get(k)
                                .and_then(|v| redis::from_redis_value_ref::<Option<i64>>(v).ok())
                                .flatten()
                        };
                        let label = p.to_string();
                        if let Some(lag) = int("lag") {
                            m.bus_lag.with_label_values(&[&label]).set(lag);
                        }
                        if let Some(pending) = int("pending") {
                            m.bus_pending.with_label_values(&[&label]).set(pending);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(partition = p, error = %e, "Failed to sample a partition's lag.");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                () = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        }
        m.partitions_owned.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_named_by_convention_and_rendered() {
        let m = metrics();
        m.set_build_info("all");
        let text = m.render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        // Families whose labels are only known at run time (routes, partitions, rules) appear
        // with their first sample; every other one is there from the start.
        assert!(families.len() >= 27, "{families:?}");
        for f in families {
            let (name, kind) = f.split_once(' ').expect("name and type");
            assert!(name.starts_with("proctor_"), "{name}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            if kind == "histogram" {
                assert!(name.ends_with("_seconds"), "{name}");
            }
        }
        assert!(text.contains("proctor_build_info{role=\"all\",version=\""));
        assert!(text.contains("proctor_events_rejected_total{reason=\"gap\"} 0"));
    }

    #[test]
    fn process_figures_are_sampled() {
        let m = metrics();
        m.render();
        assert!(m.process_resident_memory.get() > 1_000_000);
        assert!(m.process_open_fds.get() > 0);
    }
}
