//! Smoke test of the load generator (`load-tests/`): a few seconds against a spawned server,
//! on whichever pass this is (embedded, or PostgreSQL + Redis). It must stream and end
//! sessions; no timing is asserted (speed lives in BENCHMARKS.md).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_streams_events() {
    let mut app = proctor_e2e::spawn_app(1.0).await;
    let creds = app.data_dir.path().join("smoke-credentials.json");
    std::fs::write(
        &creds,
        serde_json::to_string(&app.creds).expect("credentials as JSON"),
    )
    .expect("write credentials");
    let args = proctor_load::Args {
        base: app.base.clone(),
        credentials: creds,
        learners: 8,
        rate: 400,
        seconds: 2,
        window: 8,
        gateway_pid: Some(std::process::id()),
        worker_pid: Some(std::process::id()),
        redis_url: proctor_e2e::test_redis_url(),
        lrs_url: None,
        lrs_auth: String::new(),
        lrs_max: 0,
        threads: 1,
        aligned: false,
    };
    let report = proctor_load::run(&args).await.expect("the load run");
    eprintln!("{}", report.to_json());
    assert_eq!(report.learners, 8);
    assert_eq!(report.arrivals, "spread");
    assert!(report.events_acked > 0, "no event was acknowledged");
    assert!(report.ack_ms.n > 0, "no ack latency was recorded");
    assert_eq!(report.ended, 8, "every session ended with a stored verdict");
    if args.redis_url.is_some() {
        assert!(report.xadd_per_s.is_some_and(|x| x > 0.0));
    }
    app.stop().await;
}
