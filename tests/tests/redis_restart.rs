//! Redis killed (-9) and restarted mid-stream. The service runs on a PRIVATE redis-server
//! (started here on a port of the pipeline range, `appendonly yes`, `appendfsync always`, its
//! own directory; the shared Redis is never touched; the test fails when redis-server is
//! missing). Gateways and workers reconnect by themselves; learners whose sockets were closed
//! reconnect and resend. Every acknowledged event is stored exactly once and every verdict
//! equals a replay of its log. Runs in the Redis pass of `scripts/test`.

use std::time::Duration;

use proctor_e2e::redis_server::RedisServer;

// Below the ephemeral range (32768–60999): a client socket may take any port in it as its
// local port while the server is down, and the restart could not bind.
const PORT: u16 = 23010;
const LEARNERS: usize = 16;
const EVENTS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_mid_stream_and_nothing_is_lost() {
    if proctor_e2e::test_redis_url().is_none() {
        eprintln!(
            "the Redis restart test runs in the Redis pass of scripts/test (PROCTOR_TEST_BUS=redis)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start(
        PORT,
        dir.path(),
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let app = proctor_e2e::spawn_app_on(1.0, Some(redis.url()), 2).await;
    let token = app.token().await;
    let started = proctor_e2e::start_learners(&app, &token, LEARNERS).await;
    let learners = proctor_e2e::stream_all(&started, EVENTS);
    let restart = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mid = app
            .app
            .store
            .last_client_seq(started[0]["session_id"].as_str().expect("sid"));
        let before = mid.await.unwrap_or(0);
        redis.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis.restart();
        before
    };
    let (streamed, stored_at_kill) = tokio::join!(learners, restart);
    assert!(
        stored_at_kill < EVENTS,
        "Redis must die while the sessions still stream"
    );
    // Sockets noticed: some were closed (4503) or failed mid-send and reconnected.
    let disrupted: u32 = streamed.iter().map(|s| s.backpressured + s.refused).sum();
    eprintln!("sockets closed or refused while Redis was down: {disrupted}");
    for s in &streamed {
        assert_eq!(
            s.acked, EVENTS,
            "session {}: streaming resumes after the restart",
            s.session
        );
    }
    let results: Vec<(String, u64)> = streamed.into_iter().map(|s| (s.session, s.acked)).collect();
    proctor_e2e::assert_logs_match_replays(&app, &token, &results, Duration::from_secs(60)).await;
}
