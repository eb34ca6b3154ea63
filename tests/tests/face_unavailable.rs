//! A missing model or runtime library: the service still starts, `/readyz` names the face
//! component as unavailable (and why), and face enrolment answers 503 problem+json.

use proctor::startup::FaceBackend;
use proctor_e2e::{CONSENT_SHA256, post_json, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_models_leave_the_service_up_and_face_checks_unavailable() {
    let missing = tempfile::tempdir().expect("tempdir");
    let mut t = spawn_app_with(
        1.0,
        FaceBackend::Onnx {
            models_dir: missing.path().join("bin"),
            runtime: missing.path().join("libonnxruntime.so"),
        },
    )
    .await;
    let r = t.http.get(t.url("/readyz")).send().await.expect("readyz");
    assert_eq!(
        r.status().as_u16(),
        200,
        "the service is ready without face models"
    );
    let ready: Value = r.json().await.expect("json");
    let state = ready["face"]["state"].as_str().unwrap_or("");
    assert!(state.starts_with("unavailable: "), "{ready}");
    assert!(state.contains("libonnxruntime"), "{ready}");

    let token = t.token().await;
    let learner = post_json(&t.http, &t.url("/api/v1/learners"), &token,
        json!({"external_ref": "nf-1", "real_name": "测试", "id_number": "110101199001010011", "face_consent": true})).await;
    let lid = learner.1["id"].as_str().expect("id");
    let r = t
        .http
        .post(t.url(&format!(
            "/api/v1/learners/{lid}/face-enrolment?consent_text_version=v1&consent_text_sha256={CONSENT_SHA256}"
        )))
        .bearer_auth(&token)
        .body(proctor_e2e::png(true))
        .send()
        .await
        .expect("enrol");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert!(
        t.app
            .store
            .face_template(lid)
            .await
            .expect("store")
            .is_none()
    );
    t.stop().await;
}
