//! `Idempotency-Key` on the platform API's POSTs: a retry with the same key and body replays
//! the first response without running again; the same key with another body is refused with
//! 422 problem+json; keys are per platform. Runs on both passes: in memory on the embedded
//! default, in Redis on the PostgreSQL + Redis pass.

use serde_json::{Value, json};

async fn post_key(
    t: &proctor_e2e::TestApp,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, String, Option<String>, Value) {
    let mut r = t.http.post(t.url(path)).bearer_auth(token).json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let header = |h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ct = header("content-type").unwrap_or_default();
    let replayed = header("idempotent-replayed");
    (status, ct, replayed, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let mut t = proctor_e2e::spawn_app(1.0).await;
    assert_eq!(
        t.app.redis.is_some(),
        proctor_e2e::test_redis_url().is_some(),
        "records live in Redis exactly when the service has one"
    );
    let token = t.token().await;
    let class = json!({"name": "idem", "course_id": t.creds.course_id, "planned_total_hours": 30, "planned_online_hours": 10});
    let key = format!("class-{}", uuid::Uuid::new_v4());

    let first = post_key(&t, "/api/v1/classes", &token, Some(&key), &class).await;
    assert_eq!(first.0, 201, "{}", first.3);
    assert_eq!(first.2, None, "the first request is not a replay");
    let again = post_key(&t, "/api/v1/classes", &token, Some(&key), &class).await;
    assert_eq!(again.0, 201);
    assert_eq!(again.2.as_deref(), Some("true"));
    assert_eq!(again.3, first.3, "the same response, the same class");

    // The same key with a different body: refused.
    let other = json!({"name": "idem 2", "course_id": t.creds.course_id, "planned_total_hours": 30, "planned_online_hours": 10});
    let reused = post_key(&t, "/api/v1/classes", &token, Some(&key), &other).await;
    assert_eq!(reused.0, 422, "{}", reused.3);
    assert_eq!(reused.1, "application/problem+json");
    // Another key, or none: a new class each time.
    let fresh = post_key(&t, "/api/v1/classes", &token, Some("another-key"), &class).await;
    assert_eq!(fresh.0, 201);
    assert_ne!(fresh.3["id"], first.3["id"]);
    let a = post_key(&t, "/api/v1/classes", &token, None, &class).await;
    let b = post_key(&t, "/api/v1/classes", &token, None, &class).await;
    assert_ne!(a.3["id"], b.3["id"], "without a key nothing is replayed");

    // A bad key is a bad request.
    let bad = post_key(&t, "/api/v1/classes", &token, Some("has space"), &class).await;
    assert_eq!(bad.0, 400, "{}", bad.3);
    assert_eq!(bad.1, "application/problem+json");

    // Starting a session: a retried start returns the same session, not a second one (which
    // R2 would refuse or which would replace the first).
    let enrolment = t.enrol(&token, false).await;
    let start = json!({"enrolment_id": enrolment, "lesson_id": t.creds.lesson_ids[0]});
    let s1 = post_key(&t, "/api/v1/sessions", &token, Some("start-1"), &start).await;
    assert_eq!(s1.0, 201, "{}", s1.3);
    let s2 = post_key(&t, "/api/v1/sessions", &token, Some("start-1"), &start).await;
    assert_eq!(s2.0, 201);
    assert_eq!(s2.3["session_id"], s1.3["session_id"]);
    assert_eq!(s2.2.as_deref(), Some("true"));

    // Creating a learner: a retry returns the same learner.
    let learner = json!({"external_ref": "idem-l", "real_name": "甲", "id_number": format!("{}X", proctor_e2e::rand_digits())});
    let l1 = post_key(&t, "/api/v1/learners", &token, Some("start-1x"), &learner).await;
    assert_eq!(l1.0, 201, "{}", l1.3);
    let l2 = post_key(&t, "/api/v1/learners", &token, Some("start-1x"), &learner).await;
    assert_eq!(l2.3["id"], l1.3["id"]);
    t.stop().await;
}
