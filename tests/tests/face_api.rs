//! Face enrolment and face checks through the HTTP API with the real ONNX models: a refused
//! enrolment names its reason and stores nothing; an enrolled learner passes with another
//! photo of themselves and fails with someone else's; withdrawal deletes the template. FAILS
//! when the models are missing (`scripts/test` runs `models/setup.sh` first).

use std::path::Path;

use proctor::startup::FaceBackend;
use proctor_e2e::{CONSENT_SHA256, post_json, spawn_app_with};
use serde_json::{Value, json};

fn photo(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/faces")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_then_check_with_the_real_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut t = spawn_app_with(1.0, FaceBackend::onnx_under(&root)).await;
    let token = t.token().await;
    let ready: Value = t
        .http
        .get(t.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(
        ready["face"]["state"], "ok",
        "models must be installed (models/setup.sh): {ready}"
    );

    let class = post_json(&t.http, &t.url("/api/v1/classes"), &token,
        json!({"name": "face", "course_id": t.creds.course_id, "planned_total_hours": 30, "planned_online_hours": 10})).await;
    let learner = post_json(&t.http, &t.url("/api/v1/learners"), &token,
        json!({"external_ref": "face-1", "real_name": "奥巴马", "id_number": "110101196108040011", "face_consent": true})).await;
    assert_eq!(learner.0, 201, "{}", learner.1);
    let lid = learner.1["id"].as_str().expect("id").to_owned();
    let enrol_url = t.url(&format!(
        "/api/v1/learners/{lid}/face-enrolment?consent_text_version=v1&consent_text_sha256={CONSENT_SHA256}"
    ));
    let upload = |url: String, bytes: Vec<u8>, tok: String| {
        let http = t.http.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(tok)
                .body(bytes)
                .send()
                .await
                .expect("upload");
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            (status, ct, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // No face: refused with the reason, nothing stored.
    let (s, ct, body) = upload(enrol_url.clone(), photo("coffee.png"), token.clone()).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    assert!(
        body["detail"].as_str().unwrap_or("").contains("no_face"),
        "{body}"
    );
    assert!(
        t.app
            .store
            .face_template(&lid)
            .await
            .expect("store")
            .is_none()
    );
    // Not an image.
    let (s, _, _) = upload(
        enrol_url.clone(),
        b"GIF89a not really".to_vec(),
        token.clone(),
    )
    .await;
    assert_eq!(s, 422);

    let (s, _, body) = upload(enrol_url.clone(), photo("obama.jpg"), token.clone()).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["receipt"]["action"], "granted");
    assert!(
        body["models"]
            .as_str()
            .unwrap_or("")
            .contains("dlib_resnet_v1@"),
        "{body}"
    );

    let e = post_json(
        &t.http,
        &t.url("/api/v1/enrolments"),
        &token,
        json!({"class_id": class.1["id"], "learner_id": lid}),
    )
    .await;
    assert_eq!(e.0, 201, "{}", e.1);
    let (s, st) = t.start(&token, e.1["id"].as_str().expect("id"), 0).await;
    assert_eq!(s, 201, "{st}");
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let lt = st["learner_token"].as_str().expect("lt").to_owned();
    let check_url = t.url(&format!("/api/v1/sessions/{sid}/face-checks"));

    let (s, _, same) = upload(check_url.clone(), photo("obama2.jpg"), lt.clone()).await;
    assert_eq!(s, 201, "{same}");
    assert_eq!(same["passed"], true, "{same}");
    let (s, _, other) = upload(check_url.clone(), photo("biden.jpg"), lt.clone()).await;
    assert_eq!(s, 201, "{other}");
    assert_eq!(other["passed"], false, "{other}");
    assert!(
        other["match_permille"].as_i64().unwrap_or(1000) < 400,
        "{other}"
    );
    // Both are evidence in the session log, with the model versions.
    let events = t.app.store.events(&sid).await.expect("events");
    let checks: Vec<_> = events
        .iter()
        .filter(|e| e.body.verb() == "face_checked")
        .collect();
    assert_eq!(checks.len(), 2);

    // Withdrawal deletes the template; face checks are then refused.
    let r = t
        .http
        .delete(enrol_url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("withdraw");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        t.app
            .store
            .face_template(&lid)
            .await
            .expect("store")
            .is_none()
    );
    let receipts = t.app.store.consent_receipts(&lid).await.expect("receipts");
    assert_eq!(
        receipts
            .iter()
            .map(|r| r.action.as_str())
            .collect::<Vec<_>>(),
        ["granted", "withdrawn"]
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrolment_photo_is_kept_sealed_only_when_the_profile_says_so() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut t = spawn_app_with(1.0, FaceBackend::onnx_under(&root)).await;
    let token = t.token().await;
    let learner = post_json(&t.http, &t.url("/api/v1/learners"), &token,
        json!({"external_ref": "photo-1", "real_name": "奥巴马", "id_number": "110101196108040011", "face_consent": true})).await;
    assert_eq!(learner.0, 201, "{}", learner.1);
    let lid = learner.1["id"].as_str().expect("id").to_owned();
    let enrol = |profile: Option<&str>| {
        let http = t.http.clone();
        let mut url = t.url(&format!(
            "/api/v1/learners/{lid}/face-enrolment?consent_text_version=v1&consent_text_sha256={CONSENT_SHA256}"
        ));
        if let Some(p) = profile {
            url.push_str(&format!("&profile={p}"));
        }
        let token = token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .body(photo("obama.jpg"))
                .send()
                .await
                .expect("enrol");
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let bytes = photo("obama.jpg");

    // huangchuan-2021 keeps the photo: sealed at rest, opening to the exact bytes.
    let (s, body) = enrol(Some("huangchuan-2021")).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["photo_kept"], true, "{body}");
    let sealed = t
        .app
        .store
        .face_photo(&lid)
        .await
        .expect("store")
        .expect("kept");
    let opened = t.app.templates.open_photo(&lid, &sealed).expect("opens");
    assert_eq!(opened, bytes);
    use base64::Engine;
    let plain_b64 = base64::engine::general_purpose::STANDARD.encode(&bytes[..64]);
    assert!(
        !sealed.sealed.contains(&plain_b64[..40]),
        "not stored in the clear"
    );
    assert!(
        t.app.templates.open(&lid, &sealed).is_err(),
        "a sealed photo does not open as a template (different associated data)"
    );
    assert!(t.app.templates.open_photo("someone-else", &sealed).is_err());

    // Re-enrolling under a profile that does not keep it drops the kept photo.
    let (s, body) = enrol(None).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["photo_kept"], false, "{body}");
    assert!(t.app.store.face_photo(&lid).await.expect("store").is_none());

    // Withdrawal deletes a kept photo with the template.
    let (s, _) = enrol(Some("huangchuan-2021")).await;
    assert_eq!(s, 201);
    let r = t
        .http
        .delete(t.url(&format!(
            "/api/v1/learners/{lid}/face-enrolment?consent_text_version=v1&consent_text_sha256={CONSENT_SHA256}"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .expect("withdraw");
    assert_eq!(r.status().as_u16(), 200);
    assert!(t.app.store.face_photo(&lid).await.expect("store").is_none());

    // An unknown profile is refused before anything is analysed or stored.
    let (s, body) = enrol(Some("nowhere-1999")).await;
    assert_eq!(s, 422, "{body}");
    t.stop().await;
}
