//! `/metrics` under real traffic: simulated learners (honest and cheating) run through the
//! service, then a scrape must show every family the operators' dashboards and alerts use,
//! with sensible values, templated routes and no id in any label. A worker-only process
//! (Redis Streams) serves `/metrics` too, with its partitions' lag.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use proctor::cli::simulate::run_scenarios;
use proctor_e2e::{proctor_bin, spawn_app};

/// One sample: metric name, its labels, its value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text exposition (names, labels, values; comments skipped).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value.parse().expect("a numeric value");
        let (name, labels) = match head.split_once('{') {
            None => (head.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                for pair in split_labels(body) {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    labels.insert(k.to_owned(), v.trim_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(body: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in body.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// The sum of a family's samples whose labels include `want`.
fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// A UUID (any version) or a 32-hex-digit id: never allowed in a label value.
fn looks_like_id(v: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = v.split('-').collect();
    let uuid = parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p));
    uuid || (v.len() >= 24 && hex(v))
}

#[test]
fn the_id_check_recognises_ids() {
    assert!(looks_like_id("0190c8e2-8b1c-7a3d-9f00-123456789abc"));
    assert!(looks_like_id("0123456789abcdef0123456789abcdef"));
    assert!(!looks_like_id("/api/v1/sessions/{id}"));
    assert!(!looks_like_id("R3_popup_check"));
    assert!(!looks_like_id("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_under_simulated_learners_shows_every_family() {
    let mut t = spawn_app(60.0).await;
    let outcomes = run_scenarios(
        &t.base,
        &t.creds,
        &[
            "honest",
            "missed_popup",
            "face_fail_then_pass",
            "hidden_tab",
        ],
    )
    .await
    .expect("simulation runs");
    assert!(outcomes.iter().all(|o| o.passed), "{outcomes:#?}");
    // A route that does not exist is labelled as unmatched, never by its path.
    let r = t
        .http
        .get(t.url("/no/such/0190c8e2-8b1c-7a3d-9f00-123456789abc"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);

    // Sockets close asynchronously after the last verdict: scrape until none is open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (text, s) = loop {
        let r = t.http.get(t.url("/metrics")).send().await.expect("scrape");
        assert_eq!(r.status(), 200);
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = r.text().await.expect("body");
        let s = parse(&text);
        if sum(&s, "proctor_ws_connections", &[]) == 0.0 || tokio::time::Instant::now() > deadline {
            break (text, s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    for (name, labels, _) in &s {
        assert!(name.starts_with("proctor_"), "{name}");
        for (k, v) in labels {
            assert!(
                !looks_like_id(v),
                "{name}{{{k}=\"{v}\"}}: label values must never carry ids"
            );
        }
    }
    let positive = |name: &str, want: &[(&str, &str)]| {
        let v = sum(&s, name, want);
        assert!(v > 0.0, "{name}{want:?} = {v}\n{text}");
        v
    };
    positive("proctor_build_info", &[("role", "all")]);
    // HTTP by route template and status, with latency.
    positive(
        "proctor_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/api/v1/sessions"),
            ("status", "201"),
        ],
    );
    positive(
        "proctor_http_requests_total",
        &[("route", "/api/v1/sessions/{id}/ws"), ("status", "101")],
    );
    positive(
        "proctor_http_requests_total",
        &[("route", "unmatched"), ("status", "404")],
    );
    positive(
        "proctor_http_request_duration_seconds_count",
        &[("route", "/api/v1/sessions")],
    );
    // WebSocket and ingest.
    let msgs_in = positive("proctor_ws_messages_total", &[("direction", "in")]);
    positive("proctor_ws_messages_total", &[("direction", "out")]);
    let ingested = positive("proctor_events_ingested_total", &[("transport", "ws")]);
    assert!(
        ingested <= msgs_in,
        "ingested {ingested} > received {msgs_in}"
    );
    assert!(
        sum(&s, "proctor_events_persisted_total", &[]) >= ingested,
        "every ingested event is persisted"
    );
    assert_eq!(
        sum(&s, "proctor_ws_connections", &[]),
        0.0,
        "every simulated socket has closed"
    );
    assert!(
        s.iter()
            .any(|(n, _, _)| n == "proctor_events_rejected_total")
    );
    // Pipeline.
    assert_eq!(sum(&s, "proctor_bus_partitions", &[]), 2.0);
    assert_eq!(sum(&s, "proctor_bus_partitions_owned", &[]), 2.0);
    assert!(
        s.iter()
            .any(|(n, l, _)| n == "proctor_bus_lag_entries" && l.get("partition").is_some()),
        "lag per partition"
    );
    // Each worker has heard its idle partition up to about now, so it judges silence there
    // (a lease is 30 s of server time).
    for p in ["0", "1"] {
        let unheard = s
            .iter()
            .find(|(n, l, _)| {
                n == "proctor_worker_unheard_seconds"
                    && l.get("partition").map(String::as_str) == Some(p)
            })
            .map(|(_, _, v)| *v);
        assert!(
            unheard.is_some_and(|v| (0.0..30.0).contains(&v)),
            "partition {p}: proctor_worker_unheard_seconds = {unheard:?}\n{text}"
        );
    }
    positive("proctor_fold_duration_seconds_count", &[("kind", "apply")]);
    positive("proctor_fold_duration_seconds_count", &[("kind", "refold")]);
    positive(
        "proctor_fold_duration_seconds_count",
        &[("kind", "verdicts")],
    );
    positive("proctor_event_latency_seconds_count", &[("stage", "fold")]);
    positive(
        "proctor_event_latency_seconds_count",
        &[("stage", "verdict")],
    );
    positive(
        "proctor_store_operation_duration_seconds_count",
        &[("operation", "append_events")],
    );
    positive(
        "proctor_store_operation_duration_seconds_count",
        &[("operation", "save_verdicts")],
    );
    assert_eq!(sum(&s, "proctor_store_errors_total", &[]), 0.0);
    // Compliance: verdicts, violations, challenges, face checks.
    positive("proctor_verdicts_total", &[("outcome", "counts")]);
    positive("proctor_verdicts_total", &[]);
    // Confirmed pop-ups and face checks close records: the workers stored them beside the
    // verdicts and released them from memory.
    positive("proctor_verdict_records_stored_total", &[]);
    positive("proctor_violations_total", &[("rule", "R3_popup_check")]);
    assert!(
        s.iter().any(|(n, l, _)| n == "proctor_violations_total"
            && l.get("platform").is_some_and(|p| !p.is_empty())),
        "violations carry the platform's name"
    );
    positive("proctor_challenges_issued_total", &[("kind", "popup")]);
    positive("proctor_challenges_answered_total", &[("kind", "popup")]);
    positive("proctor_challenges_missed_total", &[("kind", "popup")]);
    positive(
        "proctor_challenge_answer_seconds_count",
        &[("kind", "popup")],
    );
    positive("proctor_face_checks_total", &[("result", "passed")]);
    positive("proctor_face_checks_total", &[("result", "failed")]);
    // The stand-in always answers: face checks are available.
    assert_eq!(sum(&s, "proctor_face_available", &[]), 1.0);
    assert!(s.iter().any(|(n, _, _)| n == "proctor_face_queue_depth"));
    assert!(
        s.iter()
            .any(|(n, _, _)| n == "proctor_face_inference_duration_seconds_count")
    );
    assert!(
        s.iter()
            .any(|(n, _, _)| n == "proctor_snapshots_stored_total")
    );
    assert!(
        s.iter()
            .any(|(n, _, _)| n == "proctor_bus_reclaimed_entries_total")
    );
    // No webhooks exist yet: the family is there and stays at zero.
    assert_eq!(sum(&s, "proctor_webhook_deliveries_total", &[]), 0.0);
    assert!(
        s.iter()
            .any(|(n, l, _)| n == "proctor_webhook_deliveries_total"
                && l.get("outcome").map(String::as_str) == Some("failed"))
    );
    positive("proctor_process_resident_memory_bytes", &[]);
    t.stop().await;
}

/// A free port from this suite's range (41000–41999).
fn free_port() -> u16 {
    for _ in 0..200 {
        let p = 41000 + (uuid::Uuid::new_v4().as_u128() % 1000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port in 41000-41999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_only_process_serves_metrics_with_partition_lag() {
    let redis =
        std::env::var("PROCTOR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(proctor_bin().expect("binary"))
        .args([
            "serve",
            "--role",
            "worker",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--partitions",
            "3",
            "--face",
            "stand-in",
            "--no-demo",
            "--redis-url",
            &redis,
            "--redis-namespace",
            &format!("e2e-metrics-{}", uuid::Uuid::new_v4().simple()),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn proctor serve --role worker");
    let http = reqwest::Client::new();
    // The sampler reads XINFO GROUPS every 5 s and ownership is taken within a second or two:
    // wait until every partition is owned and reports its lag, or fail.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let samples = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            panic!("the worker exited ({status}); is Redis at {redis} running?\n{err}");
        }
        if let Ok(r) = http.get(format!("{base}/metrics")).send().await
            && r.status() == 200
        {
            let s = parse(&r.text().await.expect("body"));
            let lags = s
                .iter()
                .filter(|(n, _, _)| n == "proctor_bus_lag_entries")
                .count();
            if sum(&s, "proctor_bus_partitions_owned", &[]) == 3.0 && lags == 3 {
                break s;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker's /metrics never showed 3 owned partitions with their lag"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        sum(&samples, "proctor_build_info", &[("role", "worker")]),
        1.0
    );
    assert_eq!(sum(&samples, "proctor_bus_partitions", &[]), 3.0);
    for p in ["0", "1", "2"] {
        assert_eq!(
            sum(&samples, "proctor_bus_lag_entries", &[("partition", p)]),
            0.0
        );
        assert!(
            samples
                .iter()
                .any(|(n, l, _)| n == "proctor_bus_pending_entries"
                    && l.get("partition").map(String::as_str) == Some(p))
        );
    }
    // Health is there too; the learner API is not (worker only).
    let r = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/api/v1/profiles"))
        .send()
        .await
        .expect("profiles");
    assert_eq!(r.status(), 404);
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the worker stops within 30 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_inference_is_timed_per_model_with_the_real_models() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut t =
        proctor_e2e::spawn_app_with(1.0, proctor::startup::FaceBackend::onnx_under(&root)).await;
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/faces/obama.jpg");
    let photo = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let before = parse(
        &t.http
            .get(t.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(
        sum(&before, "proctor_face_available", &[]),
        1.0,
        "models load"
    );
    let analysis = t
        .app
        .analyse_face(&photo)
        .await
        .expect("the ONNX pipeline analyses a face photo");
    assert_eq!(analysis.faces, 1);
    let after = parse(
        &t.http
            .get(t.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body"),
    );
    for model in ["yunet", "dlib_resnet", "minifasnet_2_7", "minifasnet_4_0"] {
        let count = "proctor_face_inference_duration_seconds_count";
        let grew =
            sum(&after, count, &[("model", model)]) - sum(&before, count, &[("model", model)]);
        assert!(grew >= 1.0, "{model}: {grew} inferences timed");
        assert!(
            sum(
                &after,
                "proctor_face_inference_duration_seconds_sum",
                &[("model", model)]
            ) > 0.0
        );
    }
    assert_eq!(sum(&after, "proctor_face_queue_depth", &[]), 0.0);
    t.stop().await;
}
