//! Make-up lessons (补课, R16): a session on a lesson after one that did not count is a
//! make-up; under a profile that asks for review it is recorded in full but counts toward
//! attendance only once two different reviewers confirm it, and the verdict platforms read
//! names both signers (`reviewed_by`, R17).

#[path = "review/common.rs"]
mod common;

use proctor::app::review::Role;
use proctor_e2e::{get_json, open_ws, recv_kind, send};
use serde_json::{Value, json};

/// Starts a session on the first lesson and ends it at once: nothing is credited.
async fn session_ended_at_once(t: &proctor_e2e::TestApp, token: &str, enrolment: &str) -> String {
    let (s, st) = t.start(token, enrolment, 0).await;
    assert_eq!(s, 201, "{st}");
    let (mut ws, _) = open_ws(&st).await;
    send(
        &mut ws,
        json!({"seq": 1, "type": "terminated", "reason": "ended"}),
    )
    .await;
    recv_kind(&mut ws, "ended").await;
    st["session_id"].as_str().expect("session id").to_owned()
}

async fn summary(t: &proctor_e2e::TestApp, token: &str, enrolment: &str) -> Value {
    let (s, body, v) = get_json(
        &t.http,
        &t.url(&format!("/api/v1/enrolments/{enrolment}/summary")),
        token,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    v
}

/// The stored verdict of a session once the worker has folded its end.
async fn wait_ended(t: &proctor_e2e::TestApp, sid: &str) {
    for _ in 0..400 {
        if t.app
            .store
            .verdict_json(sid)
            .await
            .expect("verdict")
            .is_some_and(|v| v.contains("\"ended\":true"))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("session {sid} never ended in its stored verdict");
}

#[tokio::test]
async fn a_make_up_counts_once_two_reviewers_confirm_it() {
    let t = proctor_e2e::spawn_app(1.0).await;
    let token = t.token().await;
    let enrolment = t.enrol(&token, true).await;
    let missed = session_ended_at_once(&t, &token, &enrolment).await;
    wait_ended(&t, &missed).await;
    let make_up = session_ended_at_once(&t, &token, &enrolment).await;
    wait_ended(&t, &make_up).await;

    let v = summary(&t, &token, &enrolment).await;
    let lesson = &v["verdict"]["lessons"][0];
    assert_eq!(
        lesson["make_ups"],
        json!([{"session": make_up, "makes_up": missed, "verified": false}]),
        "{lesson}"
    );
    assert_eq!(v["verdict"]["profile"]["version"], 2, "{v}");

    let class = t
        .app
        .store
        .enrolment(&enrolment)
        .await
        .expect("store")
        .expect("enrolment")
        .class_id;
    let w = common::World {
        t,
        session: make_up.clone(),
        class,
        snapshot: String::new(),
    };
    let a = common::reviewer(&w, "first", "41", Role::Reviewer).await;
    let b = common::reviewer(&w, "second", "41", Role::SeniorReviewer).await;
    let elsewhere = common::reviewer(&w, "elsewhere", "11", Role::Reviewer).await;

    // The queue lists the enrolment with its make-up to verify; its page shows why.
    let (s, queue) = a.get("/review/queue").await;
    assert_eq!(s, 200, "{queue}");
    let row = queue
        .split("<tr class=\"enrolment\">")
        .find(|r| r.contains(&enrolment))
        .expect("the enrolment is in the queue");
    assert!(
        row.contains(&make_up),
        "the make-up to verify is named: {row}"
    );
    let page_url = format!("/review/enrolments/{enrolment}");
    let (s, page) = a.get(&page_url).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("awaiting two reviewers"), "{page}");
    assert!(
        page.contains("make_up_unverified"),
        "the uncredited reason: {page}"
    );
    let (s, _) = elsewhere.get(&page_url).await;
    assert_eq!(s, 404, "another province does not see the enrolment");
    let (_, other_queue) = elsewhere.get("/review/queue").await;
    assert!(!other_queue.contains(&enrolment));
    let (s, body) = a
        .post(
            &format!("/review/sessions/{make_up}/decisions"),
            &[
                ("outcome", "confirm"),
                ("reason_code", "R16_make_up"),
                ("comment", "make-up lesson fully recorded"),
            ],
        )
        .await;
    assert_eq!(s, 303, "{body}");
    let decision =
        w.t.app
            .store
            .decisions_of_session(&make_up)
            .await
            .expect("decisions")[0]
            .id
            .clone();

    // One signature is not a decision: still unverified, nobody in reviewed_by.
    let v = summary(&w.t, &token, &enrolment).await;
    assert_eq!(v["verdict"]["lessons"][0]["make_ups"][0]["verified"], false);
    let (_, _, verdict) = get_json(
        &w.t.http,
        &w.t.url(&format!("/api/v1/sessions/{make_up}/verdict")),
        &token,
    )
    .await;
    assert_eq!(verdict["reviewed_by"], json!([]), "{verdict}");

    let (s, body) = b
        .post(&format!("/review/decisions/{decision}/countersign"), &[])
        .await;
    assert_eq!(s, 303, "{body}");
    let (_, page) = a.get(&page_url).await;
    assert!(
        page.contains("makes up") && page.contains(": verified"),
        "{page}"
    );
    let v = summary(&w.t, &token, &enrolment).await;
    assert_eq!(
        v["verdict"]["lessons"][0]["make_ups"][0]["verified"], true,
        "{v}"
    );
    let (_, _, verdict) = get_json(
        &w.t.http,
        &w.t.url(&format!("/api/v1/sessions/{make_up}/verdict")),
        &token,
    )
    .await;
    let signers: Vec<&str> = verdict["reviewed_by"]
        .as_array()
        .expect("reviewed_by")
        .iter()
        .map(|r| {
            assert_eq!(r["decision"], "confirm", "{r}");
            r["reviewer"].as_str().expect("reviewer")
        })
        .collect();
    assert_eq!(signers, ["first", "second"], "{verdict}");
    // The stored verdict is still exactly what the log folds to: reviews are added on read.
    let replay = w.t.app.replay(&make_up).await.expect("replay");
    assert!(replay.matches, "stored verdict = replay");
}
