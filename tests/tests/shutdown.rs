//! Graceful shutdown and the real binary: SIGTERM loses no accepted event; admin commands
//! work against the same data directory while `proctor serve` runs.

use std::process::Stdio;
use std::time::Duration;

use proctor_e2e::{demo_token, open_ws, proctor_bin, recv, send, token_for};
use serde_json::{Value, json};

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server at {base} never became ready");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The same store the rest of the suite uses (PROCTOR_TEST_STORE).
    let db_url = proctor_e2e::test_database_url().await.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("proctor.db").display()
        )
    });
    let mut serve = tokio::process::Command::new(proctor_bin().expect("binary"));
    serve
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db_url,
            "--data-dir",
        ])
        .arg(dir.path());
    if let Some(redis) = proctor_e2e::test_redis_url() {
        serve.args([
            "--redis-url",
            &redis,
            "--redis-namespace",
            &format!("e2e-{port}"),
        ]);
    }
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn proctor serve");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;

    // Admin commands work while the server runs (same data directory).
    let out = tokio::process::Command::new(proctor_bin().expect("binary"))
        .args([
            "admin",
            "create-platform",
            "Second platform",
            "--province",
            "41",
            "--database-url",
            &db_url,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .await
        .expect("admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("admin prints JSON");
    assert!(created["client_id"].is_string() && created["client_secret"].is_string());
    let t2 = token_for(
        &http,
        &base,
        created["client_id"].as_str().expect("id"),
        created["client_secret"].as_str().expect("s"),
    )
    .await;
    assert!(!t2.is_empty());

    let (creds, token) = demo_token(&http, &base, dir.path()).await;
    let post = |path: &str, body: Value| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let path = path.to_owned();
        async move {
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .expect("post");
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.expect("json")
        }
    };
    let class = post("/api/v1/classes", json!({"name": "sigterm", "course_id": creds["course_id"], "planned_total_hours": 30, "planned_online_hours": 10})).await;
    let n = proctor_e2e::rand_digits();
    let learner = post(
        "/api/v1/learners",
        json!({"external_ref": n, "real_name": "r", "id_number": format!("{n}X")}),
    )
    .await;
    let e = post(
        "/api/v1/enrolments",
        json!({"class_id": class["id"], "learner_id": learner["id"]}),
    )
    .await;
    let st = post(
        "/api/v1/sessions",
        json!({"enrolment_id": e["id"], "lesson_id": creds["lesson_ids"][0]}),
    )
    .await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();

    let (mut ws, _) = open_ws(&st).await;
    let mut acked = 0u64;
    for seq in 1..=300u64 {
        send(&mut ws, json!({"seq": seq, "type": "heartbeat", "position_ms": 0, "rate_permille": 1000, "paused": true, "visible": true, "focused": true})).await;
    }
    // Take the acknowledgements that arrive, then terminate mid-stream.
    while acked < 150 {
        match recv(&mut ws).await {
            Ok(m) if m["type"] == "ack" => acked = acked.max(m["seq"].as_u64().unwrap_or(0)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    // Keep reading acks until the server closes the socket (1012 = restarting).
    let close = loop {
        match recv(&mut ws).await {
            Ok(m) if m["type"] == "ack" => acked = acked.max(m["seq"].as_u64().unwrap_or(0)),
            Ok(_) => {}
            Err(f) => break f,
        }
    };
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    assert!(
        matches!(close, Some((1012, _)) | None),
        "close frame {close:?}"
    );

    let store = proctor::adapters::store::Store::connect(&db_url)
        .await
        .expect("store");
    let stored = store.last_client_seq(&sid).await.expect("last seq");
    assert!(acked >= 150, "acks received before SIGTERM: {acked}");
    assert!(
        stored >= acked,
        "acknowledged {acked} events but only {stored} are stored"
    );
    let events = store.events(&sid).await.expect("events");
    let client = events
        .iter()
        .filter(|e| e.origin == proctor::domain::Origin::Client)
        .count() as u64;
    assert_eq!(
        client, stored,
        "client events are contiguous from 1 with no duplicates"
    );
}
