//! PostgreSQL unreachable for 30 s while learners stream, on the production pipeline
//! (PostgreSQL + Redis Streams). The shared PostgreSQL is never stopped: the service reaches
//! it through a TCP proxy (`proctor_e2e::proxy`) that the test cuts (every connection dropped,
//! new ones refused) and restores. While it is cut, REST that needs the store answers 503
//! problem+json with Retry-After, and learner sockets are pushed back (close 4503 once the
//! workers' backlog is over its bound, 503 on reconnect). After it is restored every
//! acknowledged event is stored exactly once and every verdict equals a replay of its log.
//! Runs in the PostgreSQL + Redis pass of `scripts/test`.

use std::time::Duration;

use proctor_e2e::proxy::Proxy;
use serde_json::json;

const LEARNERS: usize = 16;
const EVENTS: u64 = 60;
const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_pushes_back_and_loses_nothing() {
    let (Some(redis), Some(db)) = (
        proctor_e2e::test_redis_url(),
        proctor_e2e::test_database_url().await,
    ) else {
        eprintln!(
            "the outage test runs in the PostgreSQL + Redis pass of scripts/test (PROCTOR_TEST_STORE=postgres PROCTOR_TEST_BUS=redis)"
        );
        return;
    };
    // postgres://user@host:port/db → the proxy in between.
    let (head, rest) = db.split_once('@').expect("user@host in the database URL");
    let (hostport, name) = rest.split_once('/').expect("database name");
    let proxy = Proxy::start(hostport.to_owned()).await;
    let via_proxy = format!("{head}@127.0.0.1:{}/{name}", proxy.port);

    let app = proctor_e2e::spawn_app_opts(proctor_e2e::AppOptions {
        // Half speed: the 30 s outage is 15 s of server time, under the 30 s lease TTL, so
        // sessions survive it and can finish.
        time_scale: 0.5,
        redis_url: Some(redis),
        partitions: 2,
        database_url: Some(via_proxy),
        bus_max_backlog: 40,
    })
    .await;
    let token = app.token().await;
    // Sessions are started before the outage (starting one needs the store).
    let started = proctor_e2e::start_learners(&app, &token, LEARNERS).await;

    let learners = proctor_e2e::stream_all(&started, EVENTS);
    let outage = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        // REST that needs the store: 503 problem+json with Retry-After.
        let r = app
            .http
            .post(app.url("/api/v1/classes"))
            .bearer_auth(&token)
            .json(&json!({"name": "during the outage", "course_id": app.creds.course_id, "planned_total_hours": 30, "planned_online_hours": 10}))
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
        let retry = r.headers().get("retry-after").is_some();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        tokio::time::sleep(OUTAGE.saturating_sub(Duration::from_secs(3))).await;
        proxy.restore();
        (status, ct, retry, body)
    };
    let (streamed, (status, ct, retry, body)) = tokio::join!(learners, outage);

    assert_eq!(status, 503, "REST during the outage: {body}");
    assert_eq!(ct, "application/problem+json", "{body}");
    assert!(retry, "a 503 carries Retry-After");
    // The learners were pushed back: sockets closed with 4503 (backlog over its bound) and
    // reconnections refused while the store was away.
    let pushed: u32 = streamed.iter().map(|s| s.backpressured).sum();
    let refused: u32 = streamed.iter().map(|s| s.refused).sum();
    assert!(
        pushed > 0,
        "no socket was closed with 4503 during the outage"
    );
    assert!(refused > 0, "no reconnection was refused during the outage");
    for s in &streamed {
        assert_eq!(
            s.acked, EVENTS,
            "session {}: streaming resumes after the outage",
            s.session
        );
    }
    let results: Vec<(String, u64)> = streamed.into_iter().map(|s| (s.session, s.acked)).collect();
    proctor_e2e::assert_logs_match_replays(&app, &token, &results, Duration::from_secs(60)).await;
}
