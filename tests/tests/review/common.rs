//! Shared set-up for the reviewers' workbench tests: a flagged session in province 41 (the demo
//! platform's) with a snapshot, reviewer accounts in 41 and 11, and a cookie-carrying client.

#![allow(dead_code)]

use proctor::app::review::Role;
use proctor_e2e::{TestApp, png, spawn_app};
use reqwest::redirect::Policy;

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug)]
pub struct World {
    pub t: TestApp,
    pub session: String,
    pub class: String,
    pub snapshot: String,
}

/// A flagged session (a failed face check) with a stored verdict and a snapshot row.
pub async fn world() -> World {
    let t = spawn_app(1.0).await;
    let token = t.token().await;
    let e = t.enrol(&token, true).await;
    let (s, st) = t.start(&token, &e, 0).await;
    assert_eq!(s, 201, "{st}");
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let lt = st["learner_token"]
        .as_str()
        .expect("learner token")
        .to_owned();
    let r = t
        .http
        .post(t.url(&format!("/api/v1/sessions/{sid}/face-checks")))
        .bearer_auth(&lt)
        .header("content-type", "image/png")
        .body(png(false))
        .send()
        .await
        .expect("face check");
    assert_eq!(r.status().as_u16(), 201, "face check");
    let mut stored = None;
    for _ in 0..400 {
        stored = t.app.store.verdict_json(&sid).await.expect("verdict");
        if stored
            .as_deref()
            .is_some_and(|v| v.contains("\"flagged_for_review\":true"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        stored
            .as_deref()
            .is_some_and(|v| v.contains("\"flagged_for_review\":true")),
        "the failed face check flags the session: {stored:?}"
    );
    let (rec, _) = t
        .app
        .store
        .session(&sid)
        .await
        .expect("store")
        .expect("session");
    let enrolment = t
        .app
        .store
        .enrolment(&rec.enrolment_id)
        .await
        .expect("store")
        .expect("enrolment");
    // A snapshot file and row, as the upload path would store them.
    let snap_id = uuid::Uuid::now_v7().to_string();
    let bytes = png(true);
    let locator = t
        .app
        .evidence
        .put(&format!("{sid}/{snap_id}.png"), &bytes)
        .expect("evidence put");
    t.app
        .store
        .insert_snapshot(
            &proctor::model::Snapshot {
                id: snap_id.clone(),
                session_id: sid.clone(),
                nonce: format!("n-{snap_id}"),
                sha256: "0".repeat(64),
                content_type: "image/png".into(),
                bytes: i64::try_from(bytes.len()).expect("len"),
                at: rec.created_at,
            },
            &locator,
        )
        .await
        .expect("snapshot row");
    World {
        t,
        session: sid,
        class: enrolment.class_id,
        snapshot: snap_id,
    }
}

/// A signed-in reviewer's client.
#[derive(Debug)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    pub name: String,
}

pub async fn reviewer(w: &World, name: &str, province: &str, role: Role) -> Client {
    w.t.app
        .create_reviewer(name, province, role, PASSWORD, false)
        .await
        .expect("create reviewer");
    sign_in(w, name, PASSWORD, None).await.expect("sign in")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Signs in; `Err(status)` when refused.
pub async fn sign_in(
    w: &World,
    name: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<Client, u16> {
    let http = http();
    let r = http
        .post(w.t.url("/review/login"))
        .form(&[
            ("name", name),
            ("password", password),
            ("totp", totp.unwrap_or("")),
        ])
        .send()
        .await
        .expect("login");
    if r.status().as_u16() != 303 {
        return Err(r.status().as_u16());
    }
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/review", "Max-Age="] {
        assert!(set.contains(attr), "the cookie has {attr}: {set}");
    }
    let cookie = set.split(';').next().expect("cookie pair").to_owned();
    let page = http
        .get(w.t.url("/review/queue"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("queue")
        .text()
        .await
        .expect("body");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("a csrf token on the page: {page}"))
        .to_owned();
    Ok(Client {
        http,
        base: w.t.base.clone(),
        cookie,
        csrf,
        name: name.to_owned(),
    })
}

impl Client {
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        let s = r.status().as_u16();
        (s, r.text().await.unwrap_or_default())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let mut f: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        f.extend_from_slice(form);
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(&f)
            .send()
            .await
            .expect("post");
        let s = r.status().as_u16();
        (s, r.text().await.unwrap_or_default())
    }
}
