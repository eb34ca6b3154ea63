//! Helpers for end-to-end tests: spawn the real service (in process on port 0, or the real
//! `proctor` binary), obtain platform tokens, and speak the learner WebSocket protocol.

pub mod proxy;
pub mod redis_server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use proctor::app::demo::DemoCredentials;
use proctor::startup::{Application, Settings};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A running service with its own data directory.
#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub creds: DemoCredentials,
    pub app: std::sync::Arc<proctor::app::App>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The store the end-to-end suite runs against: `PROCTOR_TEST_STORE=postgres` for a fresh
/// PostgreSQL database per test (on `PROCTOR_TEST_PG_URL`, default the local server's `test`
/// database), anything else for SQLite in the test's data directory. A missing PostgreSQL
/// fails the test; it never falls back to SQLite.
pub async fn test_database_url() -> Option<String> {
    if std::env::var("PROCTOR_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    Some(fresh_pg_database().await)
}

/// A fresh, empty PostgreSQL database on `PROCTOR_TEST_PG_URL` (default the local server's
/// `test` database), for tests of PostgreSQL itself on every pass. Panics when PostgreSQL is
/// unreachable.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("PROCTOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is unreachable (PROCTOR_TEST_PG_URL): {e}")
        });
    let name = format!("proctor_e2e_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// The bus the end-to-end suite runs on: `PROCTOR_TEST_BUS=redis` for Redis Streams on
/// `PROCTOR_TEST_REDIS_URL` (each test app in its own key namespace), anything else for the
/// in-process bus.
pub fn test_redis_url() -> Option<String> {
    (std::env::var("PROCTOR_TEST_BUS").as_deref() == Ok("redis")).then(|| {
        std::env::var("PROCTOR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    })
}

/// Starts the service on port 0 with the demo seed, at `time_scale`.
/// Starts the service on port 0 with the demo seed, at `time_scale`, with the stand-in face.
pub async fn spawn_app(time_scale: f64) -> TestApp {
    spawn_app_with(time_scale, proctor::startup::FaceBackend::StandIn).await
}

/// Starts the service on port 0 with the demo seed and the given face backend.
pub async fn spawn_app_with(time_scale: f64, face: proctor::startup::FaceBackend) -> TestApp {
    spawn_app_custom(time_scale, face, test_redis_url(), 2).await
}

/// Starts the service (role `all`) on the given Redis (`None`: the in-process bus) with
/// `partitions` partitions, on the test pass's store.
pub async fn spawn_app_on(
    time_scale: f64,
    redis_url: Option<String>,
    partitions: usize,
) -> TestApp {
    spawn_app_custom(
        time_scale,
        proctor::startup::FaceBackend::StandIn,
        redis_url,
        partitions,
    )
    .await
}

/// What a fault test changes about the service it starts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub time_scale: f64,
    pub redis_url: Option<String>,
    pub partitions: usize,
    /// `None`: the test pass's store.
    pub database_url: Option<String>,
    pub bus_max_backlog: u64,
}

/// Starts the service (role `all`) with `opts`.
pub async fn spawn_app_opts(opts: AppOptions) -> TestApp {
    let database_url = match opts.database_url {
        Some(u) => Some(u),
        None => test_database_url().await,
    };
    spawn_settings(
        opts.time_scale,
        proctor::startup::FaceBackend::StandIn,
        opts.redis_url,
        opts.partitions,
        database_url,
        opts.bus_max_backlog,
    )
    .await
}

async fn spawn_app_custom(
    time_scale: f64,
    face: proctor::startup::FaceBackend,
    redis_url: Option<String>,
    partitions: usize,
) -> TestApp {
    let db = test_database_url().await;
    spawn_settings(
        time_scale,
        face,
        redis_url,
        partitions,
        db,
        proctor::adapters::redis::bus::DEFAULT_MAX_BACKLOG,
    )
    .await
}

async fn spawn_settings(
    time_scale: f64,
    face: proctor::startup::FaceBackend,
    redis_url: Option<String>,
    partitions: usize,
    database_url: Option<String>,
    bus_max_backlog: u64,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.path().to_path_buf(),
        database_url,
        public_url: None,
        time_scale,
        partitions,
        heartbeat_interval_ms: 5000,
        demo: true,
        role: proctor::startup::Role::All,
        redis_url,
        bus_max_backlog,
        redis_namespace: format!("e2e-{}", uuid::Uuid::new_v4().simple()),
        // Most tests drive the verdict logic with synthetic images (the stand-in); the face
        // models have their own tests (tests/tests/face_*.rs).
        face,
        template_key: None,
    };
    let application = Application::build(settings)
        .await
        .expect("the service builds");
    let base = application.base_url().to_owned();
    let app = application.app();
    let creds = app.seed_demo(data_dir.path()).await.expect("demo seed");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until(async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    TestApp {
        base,
        data_dir,
        creds,
        app,
        http,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the service gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await
                .expect("service task")
                .expect("service stops cleanly");
        }
    }

    pub async fn token(&self) -> String {
        token_for(
            &self.http,
            &self.base,
            &self.creds.client_id,
            &self.creds.client_secret,
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A learner enrolled in a fresh class on the demo course; returns the enrolment id.
    pub async fn enrol(&self, token: &str, face_consent: bool) -> String {
        let class = self.new_class(token).await;
        self.enrol_in(token, &class, face_consent).await
    }

    /// A fresh class on the demo course; returns its id.
    pub async fn new_class(&self, token: &str) -> String {
        let class = post_json(&self.http, &self.url("/api/v1/classes"), token,
            json!({"name": "e2e", "course_id": self.creds.course_id, "planned_total_hours": 30, "planned_online_hours": 10})).await;
        assert_eq!(class.0, 201, "{}", class.1);
        class.1["id"].as_str().expect("class id").to_owned()
    }

    /// A new learner enrolled in `class`; returns the enrolment id.
    pub async fn enrol_in(&self, token: &str, class: &str, face_consent: bool) -> String {
        let n = rand_digits();
        let learner = post_json(&self.http, &self.url("/api/v1/learners"), token,
            json!({"external_ref": format!("e2e-{n}"), "real_name": "测试", "id_number": format!("{n}X"), "face_consent": face_consent})).await;
        assert_eq!(learner.0, 201, "{}", learner.1);
        if face_consent {
            let lid = learner.1["id"].as_str().expect("learner id");
            let r = self
                .http
                .post(self.url(&format!(
                    "/api/v1/learners/{lid}/face-enrolment?consent_text_version=e2e-1&consent_text_sha256={CONSENT_SHA256}"
                )))
                .bearer_auth(token)
                .header("content-type", "image/png")
                .body(png(true))
                .send()
                .await
                .expect("face enrolment");
            assert_eq!(r.status().as_u16(), 201, "face enrolment");
        }
        let e = post_json(
            &self.http,
            &self.url("/api/v1/enrolments"),
            token,
            json!({"class_id": class, "learner_id": learner.1["id"]}),
        )
        .await;
        assert_eq!(e.0, 201, "{}", e.1);
        e.1["id"].as_str().expect("enrolment id").to_owned()
    }

    /// Starts a session on lesson `index` (0-based) and returns the start response.
    pub async fn start(&self, token: &str, enrolment: &str, index: usize) -> (u16, Value) {
        post_json(
            &self.http,
            &self.url("/api/v1/sessions"),
            token,
            json!({"enrolment_id": enrolment, "lesson_id": self.creds.lesson_ids[index]}),
        )
        .await
    }

    /// The number of stored events of a session, by origin.
    pub async fn stored_events(&self, session: &str) -> Vec<proctor::domain::Event> {
        self.app.store.events(session).await.expect("events")
    }
}

/// 17 random digits (a plausible ID-number prefix).
pub fn rand_digits() -> String {
    let n = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    ) % 100_000_000_000_000_000;
    format!("{n:017}")
}

pub async fn token_for(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
    let r: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    r["access_token"].as_str().expect("access_token").to_owned()
}

/// The demo platform's credentials that `proctor serve` wrote into `data_dir`, and a token
/// for them.
pub async fn demo_token(
    http: &reqwest::Client,
    base: &str,
    data_dir: &std::path::Path,
) -> (Value, String) {
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("demo-credentials.json")).expect("creds"),
    )
    .expect("json");
    let token = token_for(
        http,
        base,
        creds["client_id"].as_str().expect("id"),
        creds["client_secret"].as_str().expect("s"),
    )
    .await;
    (creds, token)
}

/// POST JSON with a bearer token; returns (status, body as JSON or Null).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GET with a bearer token; returns (status, content type, body as JSON or Null).
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> (u16, String, Value) {
    let r = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, r.json().await.unwrap_or(Value::Null))
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the learner socket of a started session and returns it with the welcome message.
pub async fn open_ws(started: &Value) -> (Ws, Value) {
    let url = format!(
        "{}?access_token={}",
        started["ws_url"].as_str().expect("ws_url"),
        started["learner_token"].as_str().expect("learner_token")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect");
    let welcome = recv(&mut ws).await.expect("welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Opens the learner socket of a started session and has it play from 0 (client seq 1,
/// acknowledged).
pub async fn open_playing(started: &Value) -> Ws {
    let (mut ws, _) = open_ws(started).await;
    send(
        &mut ws,
        serde_json::json!({"seq": 1, "type": "played", "position_ms": 0}),
    )
    .await;
    recv_kind(&mut ws, "ack").await;
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON message, or `Err(close frame)` if the socket closed (None when no frame).
pub async fn recv(ws: &mut Ws) -> Result<Value, Option<(u16, String)>> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .map_err(|_| None)?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Ok(serde_json::from_str(&t).expect("json message"));
            }
            Some(Ok(Message::Close(f))) => {
                return Err(f.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Err(None),
        }
    }
}

/// Receives until a message of `kind` arrives (other messages are skipped).
pub async fn recv_kind(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match recv(ws).await {
            Ok(m) if m["type"] == kind => return m,
            Ok(_) => {}
            Err(close) => panic!("socket closed while waiting for {kind}: {close:?}"),
        }
    }
}

/// A bright stand-in image (the stand-in face check passes it) or a dark one (fails).
/// sha256 of the (test) consent text the learners agreed to.
pub const CONSENT_SHA256: &str = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

pub fn png(bright: bool) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(std::iter::repeat_n(if bright { 180u8 } else { 0u8 }, 512));
    v
}

/// The `proctor` binary built alongside the tests.
pub fn proctor_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("test binary has no target dir")?;
    let bin = dir.join("proctor");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build the workspace first (cargo test --workspace does)",
        bin.display()
    );
    Ok(bin)
}

/// What happened to one streamed session.
#[derive(Debug, Clone, Default)]
pub struct Streamed {
    pub session: String,
    /// The highest acknowledged client sequence number.
    pub acked: u64,
    /// The worker's `ended` effect (message or close 4410) reached the socket.
    pub saw_ended: bool,
    /// Sockets the server closed with 4503 (backpressure).
    pub backpressured: u32,
    /// WebSocket upgrades the server refused (e.g. 503 while the store is down).
    pub refused: u32,
}

/// One learner's session streamed over a WebSocket: `events` client events (heartbeats, the
/// last one `terminated`), sent `gap` apart.
/// Reads until the server ends the session or the socket closes or goes quiet for `quiet`.
/// A socket the server closes mid-stream (backpressure, a restart) is reopened and the
/// unacknowledged events are sent again, as the SDK does.
pub async fn stream_session(
    app: &TestApp,
    token: &str,
    events: u64,
    gap: Duration,
    quiet: Duration,
) -> Streamed {
    let enrolment = app.enrol(token, false).await;
    let (status, started) = app.start(token, &enrolment, 0).await;
    assert_eq!(status, 201, "{started}");
    stream_started(&started, events, gap, quiet).await
}

/// Enrols `n` learners (no face consent) and starts a session on the first lesson for each;
/// returns the start responses.
pub async fn start_learners(app: &TestApp, token: &str, n: usize) -> Vec<Value> {
    let mut started = Vec::with_capacity(n);
    for _ in 0..n {
        let enrolment = app.enrol(token, false).await;
        let (status, s) = app.start(token, &enrolment, 0).await;
        assert_eq!(status, 201, "{s}");
        started.push(s);
    }
    started
}

/// Streams `events` heartbeats (100 ms apart) on every started session at once.
pub async fn stream_all(started: &[Value], events: u64) -> Vec<Streamed> {
    futures_util::stream::iter(started.iter())
        .map(|s| {
            stream_started(
                s,
                events,
                Duration::from_millis(100),
                Duration::from_secs(10),
            )
        })
        .buffer_unordered(started.len().max(1))
        .collect()
        .await
}

/// `stream_session` for a session already started (`started`: the start response).
pub async fn stream_started(
    started: &Value,
    events: u64,
    gap: Duration,
    quiet: Duration,
) -> Streamed {
    let (mut backpressured, mut refused) = (0u32, 0u32);
    let mut acked = 0u64;
    let mut ended = false;
    let mut saw_ended = false;
    let mut attempts = 0;
    while !ended && attempts < 60 {
        attempts += 1;
        let url = format!(
            "{}?access_token={}",
            started["ws_url"].as_str().expect("ws_url"),
            started["learner_token"].as_str().expect("learner_token")
        );
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
            refused += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        // The welcome tells where the server is; resend from there.
        let Ok(welcome) = recv(&mut ws).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if welcome["type"] != "welcome" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        acked = acked.max(welcome["last_seq"].as_u64().unwrap_or(0));
        let mut broken = false;
        for seq in acked + 1..=events {
            let body = if seq == events {
                json!({"seq": seq, "type": "terminated", "reason": "ended"})
            } else {
                json!({"seq": seq, "type": "heartbeat", "position_ms": 0, "rate_permille": 1000, "paused": true, "visible": true, "focused": true})
            };
            if ws
                .send(Message::Text(body.to_string().into()))
                .await
                .is_err()
            {
                broken = true;
                break;
            }
            tokio::time::sleep(gap).await;
        }
        loop {
            match tokio::time::timeout(quiet, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("json");
                    if v["type"] == "ack" {
                        acked = acked.max(v["seq"].as_u64().unwrap_or(0));
                    }
                    if v["type"] == "ended" {
                        ended = true;
                        saw_ended = true;
                        break;
                    }
                }
                Ok(Some(Ok(Message::Close(f)))) => {
                    let code = f.map(|f| u16::from(f.code));
                    if code == Some(4410) {
                        ended = true;
                        saw_ended = true;
                    }
                    if code == Some(4503) {
                        backpressured += 1;
                    }
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(None) | Ok(Some(Err(_))) => break,
                Err(_) => {
                    // Quiet: everything acknowledged but no `ended` yet; reconnect to ask.
                    break;
                }
            }
        }
        if !broken && acked >= events {
            // All acknowledged; the `ended` effect is best effort (the stored verdict is the
            // record), so stop here.
            ended = true;
        }
        if !ended {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Streamed {
        session: started["session_id"]
            .as_str()
            .expect("session id")
            .to_owned(),
        acked,
        saw_ended,
        backpressured,
        refused,
    }
}

/// After a run: waits (up to `wait`) until every session has its acknowledged client events
/// stored and a final verdict, then checks each client event is stored exactly once, in
/// order, and the stored verdict equals a clean replay of the log (`proctor replay`'s check,
/// through the API).
pub async fn assert_logs_match_replays(
    app: &TestApp,
    token: &str,
    results: &[(String, u64)],
    wait: Duration,
) {
    for (sid, acked) in results {
        assert!(*acked > 0, "session {sid}: nothing was acknowledged");
    }
    assert_stored_logs_match_replays(&app.app.store, &app.http, &app.base, token, results, wait)
        .await;
}

/// [`assert_logs_match_replays`] against any store and server (e.g. the real `proctor`
/// binaries of a fault test): `base` is the server's URL.
pub async fn assert_stored_logs_match_replays(
    store: &proctor::adapters::store::Store,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    results: &[(String, u64)],
    wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + wait;
    for (sid, acked) in results {
        loop {
            let stored = store.last_client_seq(sid).await.unwrap_or(0);
            let verdict = store.verdict_json(sid).await.ok().flatten();
            let ended = verdict
                .as_deref()
                .is_some_and(|v| v.contains("\"ended\":true"));
            if (stored >= *acked && ended) || tokio::time::Instant::now() > deadline {
                assert!(
                    stored >= *acked,
                    "session {sid}: acknowledged {acked}, stored {stored}"
                );
                assert!(ended, "session {sid} has no final verdict");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let events = store.events(sid).await.expect("events");
        let client: Vec<u64> = events
            .iter()
            .filter(|e| e.origin == proctor::domain::Origin::Client)
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            client,
            (1..=client.len() as u64).collect::<Vec<_>>(),
            "session {sid}: client events stored once each, in order"
        );
        let r = post_json(
            http,
            &format!("{base}/api/v1/sessions/{sid}/replay"),
            token,
            json!({}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(
            r.1["matches"],
            true,
            "session {sid}: stored verdict differs from a replay of its log: {}\nstored: {}\nlog: {}",
            r.1,
            store
                .verdict_json(sid)
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
            serde_json::to_string(&events).unwrap_or_default()
        );
    }
}
