//! The OpenAPI document: generated from the code, committed as `server/openapi.json`, served
//! at `/api/v1/openapi.json`; the docs page loads nothing from the internet.

use proctor_e2e::spawn_app;

#[test]
fn committed_openapi_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../server/openapi.json"
    ))
    .expect("server/openapi.json is committed");
    let generated = proctor::api::openapi_json();
    assert!(
        committed == generated,
        "server/openapi.json is out of date: regenerate it with `cargo run -- openapi > server/openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("valid JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    for path in [
        "/oauth/token",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}/verdict",
        "/api/v1/enrolments/{id}/summary",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn served_document_and_offline_docs_page() {
    let mut t = spawn_app(1.0).await;
    let served: serde_json::Value = t
        .http
        .get(t.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(served["info"]["title"], "proctor API");
    let html = t
        .http
        .get(t.url("/api/v1/docs/"))
        .send()
        .await
        .expect("docs")
        .text()
        .await
        .expect("html");
    assert!(html.contains("swagger-ui"), "docs page is Swagger UI");
    for attr in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "url(http",
    ] {
        assert!(
            !html.contains(attr),
            "the docs page loads something from the network: {attr}"
        );
    }
    let init = t
        .http
        .get(t.url("/api/v1/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("init")
        .text()
        .await
        .expect("js");
    assert!(
        init.contains("/api/v1/openapi.json"),
        "the docs page reads the local document"
    );
    assert!(!init.contains("petstore"), "no remote example document");
    t.stop().await;
}
