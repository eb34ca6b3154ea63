//! Appeals: the platform submits a learner's appeal through the API (its own sessions only);
//! reviewers of the province see the session as `appealed` until a later decision takes effect.

#[path = "review/common.rs"]
mod common;

use common::{reviewer, world};
use proctor::app::review::Role;
use proctor_e2e::{post_json, token_for};
use serde_json::json;

#[tokio::test]
async fn platforms_appeal_their_sessions_and_reviewers_see_them() {
    let mut w = world().await;
    let sid = w.session.clone();
    let token = w.t.token().await;
    let url = w.t.url(&format!("/api/v1/sessions/{sid}/appeals"));

    let (s, body) = post_json(&w.t.http, &url, &token, json!({"reason": ""})).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["field"], "reason");
    let (s, body) = post_json(&w.t.http, &url, &token, json!({"reason": "x", "extra": 1})).await;
    assert_eq!(s, 400, "{body}");
    // Another platform (even in the same province) cannot appeal this session.
    let other =
        w.t.app
            .create_platform("other", "41")
            .await
            .expect("platform");
    let other_token = token_for(&w.t.http, &w.t.base, &other.client_id, &other.client_secret).await;
    let (s, _) = post_json(&w.t.http, &url, &other_token, json!({"reason": "mine"})).await;
    assert_eq!(s, 404);
    let (s, _) = post_json(
        &w.t.http,
        &w.t.url("/api/v1/sessions/nope/appeals"),
        &token,
        json!({"reason": "x"}),
    )
    .await;
    assert_eq!(s, 404);
    let r =
        w.t.http
            .post(&url)
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .expect("post");
    assert_eq!(r.status().as_u16(), 401, "a token is required");

    let (s, body) = post_json(
        &w.t.http,
        &url,
        &token,
        json!({"reason": "我的摄像头坏了，人脸核验失败"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["session_id"], sid.as_str());

    let a = reviewer(&w, "ann", "41", Role::Reviewer).await;
    let b = reviewer(&w, "ben", "41", Role::Reviewer).await;
    let (_, q) = a.get("/review/queue?status=appealed").await;
    assert!(
        q.contains(&sid),
        "the appealed session is in the appealed filter"
    );
    let (_, q) = a.get("/review/queue?status=not_reviewed").await;
    assert!(!q.contains(&sid));
    let (_, page) = a.get(&format!("/review/sessions/{sid}")).await;
    assert!(
        page.contains("id=\"appeals\"") && page.contains("摄像头坏了"),
        "the appeal is on the session page"
    );

    // A decision countersigned after the appeal settles it.
    let (s, _) = a
        .post(
            &format!("/review/sessions/{sid}/decisions"),
            &[("outcome", "overturn"), ("reason_code", "R4_face_liveness")],
        )
        .await;
    assert_eq!(s, 303);
    let d =
        w.t.app
            .store
            .decisions_of_session(&sid)
            .await
            .expect("decisions")[0]
            .id
            .clone();
    let (s, _) = b
        .post(&format!("/review/decisions/{d}/countersign"), &[])
        .await;
    assert_eq!(s, 303);
    let (_, q) = a.get("/review/queue?status=overturned").await;
    assert!(q.contains(&sid));
    let audit = w.t.app.store.audit_rows(0, 1000).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|r| r.action == "appeal_submitted" && r.target == sid)
    );
    w.t.stop().await;
}
