//! Every workbench endpoint × role × scope: reviewers see and act on their own province only
//! (404 for ids elsewhere, exactly like ids that do not exist); auditors and administrators
//! read but never sign; only auditors, administrators and senior reviewers read the audit log;
//! signed-out requests are redirected (GET) or refused (POST); POSTs need the CSRF token.

#[path = "review/common.rs"]
mod common;

use common::{reviewer, world};
use proctor::app::review::Role;

#[tokio::test]
async fn every_endpoint_by_role_and_province() {
    let mut w = world().await;
    let (sid, snap, class) = (w.session.clone(), w.snapshot.clone(), w.class.clone());
    let enrolment =
        w.t.app
            .store
            .session(&sid)
            .await
            .expect("store")
            .expect("session")
            .0
            .enrolment_id;
    let reads = [
        "/review/queue".to_owned(),
        format!("/review/enrolments/{enrolment}"),
        format!("/review/sessions/{sid}"),
        format!("/review/sessions/{sid}/replay"),
        format!("/review/snapshots/{snap}"),
        format!("/review/snapshots/{snap}?thumb=1"),
        format!("/review/classes/{class}/export.json"),
        format!("/review/classes/{class}/export.csv"),
        "/review/audit".to_owned(),
        "/review/publicity".to_owned(),
    ];

    // A pending decision for the countersign endpoint, signed by a reviewer of 41.
    let first = reviewer(&w, "first41", "41", Role::Reviewer).await;
    let (s, body) = first
        .post(
            &format!("/review/sessions/{sid}/decisions"),
            &[
                ("outcome", "confirm"),
                ("reason_code", "R4_face_liveness"),
                ("comment", "dark frame"),
            ],
        )
        .await;
    assert_eq!(s, 303, "{body}");
    let decision =
        w.t.app
            .store
            .decisions_of_session(&sid)
            .await
            .expect("decisions")[0]
            .id
            .clone();

    let roles = [
        Role::Reviewer,
        Role::SeniorReviewer,
        Role::Auditor,
        Role::Administrator,
    ];
    for province in ["41", "11"] {
        for role in roles {
            let who = format!("{}-{province}", role.code());
            let c = reviewer(&w, &who, province, role).await;
            let home = province == "41";
            for path in &reads {
                let (s, body) = c.get(path).await;
                let want = match (path.as_str(), home) {
                    ("/review/queue" | "/review/publicity", _) => 200,
                    ("/review/audit", _) if !role.can_read_audit() => 403,
                    ("/review/audit", _) => 200,
                    (_, true) => 200,
                    (_, false) => 404,
                };
                assert_eq!(s, want, "{who} GET {path}: {body}");
                if path == "/review/queue" {
                    assert_eq!(
                        body.contains(&sid),
                        home,
                        "{who} sees the session in the queue iff in province"
                    );
                }
                if path == "/review/audit" && s == 200 {
                    assert_eq!(
                        body.contains(&sid),
                        home,
                        "{who} sees audit entries of their province only"
                    );
                }
            }
            // Signing: reviewers of the province may; auditors and administrators never;
            // other provinces get 404 before any role check.
            let (s, body) = c
                .post(&format!("/review/decisions/{decision}/countersign"), &[])
                .await;
            let want = if !home {
                404
            } else if role.can_sign() {
                303
            } else {
                403
            };
            if s == 303 {
                // Undo for the next role: this test is about access, not the decision.
                sqlx::query(
                    "UPDATE review_decisions SET signer2 = NULL, signed2_at = NULL WHERE id = $1",
                )
                .bind(&decision)
                .execute(w.t.app.store.pool())
                .await
                .expect("reset");
            }
            assert_eq!(s, want, "{who} countersign: {body}");
            let (sign_status, sign_body) = c
                .post(
                    &format!("/review/sessions/{sid}/decisions"),
                    &[("outcome", "overturn"), ("reason_code", "R4_face_liveness")],
                )
                .await;
            // Legal holds: senior reviewers and administrators of the province.
            let holder = matches!(role, Role::SeniorReviewer | Role::Administrator);
            let (s, body) = c
                .post(
                    &format!("/review/sessions/{sid}/hold"),
                    &[("reason", "matrix")],
                )
                .await;
            let want = if !home {
                404
            } else if holder {
                303
            } else {
                403
            };
            assert_eq!(s, want, "{who} hold: {body}");
            let (s, body) = c
                .post(&format!("/review/sessions/{sid}/release-hold"), &[])
                .await;
            assert_eq!(s, want, "{who} release hold: {body}");
            // In province a pending decision exists, so a reviewer gets 409; others as above.
            let want = if !home {
                404
            } else if role.can_sign() {
                409
            } else {
                403
            };
            assert_eq!(sign_status, want, "{who} sign: {sign_body}");
        }
    }

    // Unknown ids are 404 like other provinces' ids.
    let (s, _) = first.get("/review/sessions/no-such-session").await;
    assert_eq!(s, 404);
    let (s, _) = first.get("/review/snapshots/no-such-snapshot").await;
    assert_eq!(s, 404);

    // Without the CSRF token a POST is refused and nothing changes.
    let r = first
        .http
        .post(format!("{}/review/sessions/{sid}/decisions", first.base))
        .header("cookie", &first.cookie)
        .form(&[("outcome", "confirm"), ("reason_code", "R4_face_liveness")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        w.t.app
            .store
            .decisions_of_session(&sid)
            .await
            .expect("decisions")
            .len(),
        1
    );
    // Unknown form fields and bad values are problem+json.
    let (s, body) = first
        .post(
            &format!("/review/sessions/{sid}/decisions"),
            &[("outcome", "confirm"), ("reason_code", "x"), ("extra", "1")],
        )
        .await;
    assert_eq!(s, 400, "{body}");

    // Signed out: GETs go to the sign-in page, POSTs are 401.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in &reads {
        let r = anon.get(w.t.url(path)).send().await.expect("get");
        assert_eq!(r.status().as_u16(), 303, "anonymous GET {path}");
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/review/login")
        );
    }
    let r = anon
        .post(w.t.url(&format!("/review/decisions/{decision}/countersign")))
        .form(&[("csrf", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    // A forged cookie is no session.
    let r = anon
        .get(w.t.url("/review/queue"))
        .header("cookie", "proctor_review=00ff")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 303);

    // Sign-out ends the server-side session.
    let (s, _) = first.post("/review/logout", &[]).await;
    assert_eq!(s, 303);
    let (s, _) = first.get("/review/queue").await;
    assert_eq!(s, 303, "the old cookie no longer works");
    w.t.stop().await;
}

#[tokio::test]
async fn passwords_and_totp_are_checked() {
    let mut w = world().await;
    let created =
        w.t.app
            .create_reviewer("totp41", "41", Role::Reviewer, common::PASSWORD, true)
            .await
            .expect("create");
    let secret = created.totp_secret.expect("a secret");
    assert!(
        common::sign_in(&w, "totp41", common::PASSWORD, None)
            .await
            .is_err(),
        "the code is required"
    );
    assert!(
        common::sign_in(&w, "totp41", "wrong password!!", None)
            .await
            .is_err()
    );
    let now = i64::try_from(proctor::auth::unix_now_ms() / 1000).expect("time");
    let wrong = proctor::app::review::totp::code(&secret, now - 3600).expect("code");
    assert_eq!(
        common::sign_in(&w, "totp41", common::PASSWORD, Some(&wrong))
            .await
            .err(),
        Some(403)
    );
    let code = proctor::app::review::totp::code(&secret, now).expect("code");
    assert!(
        common::sign_in(&w, "totp41", common::PASSWORD, Some(&code))
            .await
            .is_ok()
    );
    assert!(
        common::sign_in(&w, "nobody", common::PASSWORD, None)
            .await
            .is_err()
    );
    // Short passwords and bad provinces are refused at creation.
    assert!(
        w.t.app
            .create_reviewer("short", "41", Role::Reviewer, "short", false)
            .await
            .is_err()
    );
    assert!(
        w.t.app
            .create_reviewer("prov", "4x", Role::Reviewer, common::PASSWORD, false)
            .await
            .is_err()
    );
    // The stored hash is argon2id, never the password.
    let row =
        w.t.app
            .store
            .reviewer_by_name("totp41")
            .await
            .expect("store")
            .expect("row");
    assert!(
        row.password_hash.starts_with("$argon2id$"),
        "{}",
        row.password_hash
    );
    assert!(!row.password_hash.contains(common::PASSWORD));
    w.t.stop().await;
}

/// City and county accounts see only classes registered with a region inside theirs; a class
/// without a region is for province-wide accounts only. Platforms cannot register a region
/// outside their own province.
#[tokio::test]
async fn city_and_county_scopes() {
    let w = world().await;
    let (sid, snap, class) = (w.session.clone(), w.snapshot.clone(), w.class.clone());
    let reads = [
        format!("/review/sessions/{sid}"),
        format!("/review/snapshots/{snap}?thumb=1"),
        format!("/review/classes/{class}/export.json"),
    ];
    let accounts = [
        ("province41", None),
        ("city4101", Some("4101")),
        ("county410102", Some("410102")),
        ("city4102", Some("4102")),
    ];
    let mut clients = Vec::new();
    for (name, region) in accounts {
        w.t.app
            .create_reviewer_in(name, "41", region, Role::Reviewer, common::PASSWORD, false)
            .await
            .expect("create reviewer");
        let c = common::sign_in(&w, name, common::PASSWORD, None)
            .await
            .expect("sign in");
        clients.push((name, c));
    }
    // A region must be a city or county code inside the province.
    for bad in ["11", "1101", "410", "41010x"] {
        let e =
            w.t.app
                .create_reviewer_in(
                    "bad",
                    "41",
                    Some(bad),
                    Role::Reviewer,
                    common::PASSWORD,
                    false,
                )
                .await
                .expect_err("region outside the province");
        assert!(e.to_string().contains("region"), "{bad}: {e}");
    }

    // Phase 1: the class has no region; phase 2: it trains in county 410102 of city 4101.
    for (phase, region) in [(1, None), (2, Some("410102"))] {
        if let Some(r) = region {
            sqlx::query("UPDATE classes SET region = $1 WHERE id = $2")
                .bind(r)
                .bind(&class)
                .execute(w.t.app.store.pool())
                .await
                .expect("set the class's region");
        }
        for (name, c) in &clients {
            let sees = matches!(
                (*name, region),
                ("province41", _) | ("city4101" | "county410102", Some(_))
            );
            for path in &reads {
                let (s, body) = c.get(path).await;
                assert_eq!(
                    s,
                    if sees { 200 } else { 404 },
                    "phase {phase}: {name} GET {path}: {body}"
                );
            }
            let (s, body) = c.get("/review/queue").await;
            assert_eq!(s, 200, "{body}");
            assert_eq!(
                body.contains(&sid),
                sees,
                "phase {phase}: {name} sees the session in the queue iff in scope"
            );
        }
    }

    // The platform API refuses a region outside the platform's province (the demo's is 41).
    let token = w.t.token().await;
    let course = w.t.creds.course_id.clone();
    for (region, want) in [("110101", 422), ("4101", 422), ("410102", 201)] {
        let r =
            w.t.http
                .post(w.t.url("/api/v1/classes"))
                .bearer_auth(&token)
                .json(&serde_json::json!({
                    "name": format!("class in {region}"),
                    "course_id": course,
                    "region": region,
                    "planned_total_hours": 30,
                    "planned_online_hours": 10
                }))
                .send()
                .await
                .expect("create class");
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("json body");
        assert_eq!(status, want, "region {region}: {body}");
        if want == 201 {
            assert_eq!(body["region"], region, "{body}");
        } else {
            assert!(body["detail"].to_string().contains("region"), "{body}");
        }
    }
}
