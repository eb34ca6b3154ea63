//! End-to-end tests of the learner WebSocket and uploads: sequence numbers (replay, gap),
//! malformed and oversized messages, wrong nonces, foreign learner tokens, events after the
//! end, non-image uploads, resume after reconnect, and the beacon. Each checks the stored log
//! too.

use proctor::domain::{EventBody, Origin};
use proctor_e2e::{open_playing, open_ws, png, recv, recv_kind, send, spawn_app};
use serde_json::{Value, json};

/// The HTTP status of a refused WebSocket upgrade.
fn http_status(err: &tokio_tungstenite::tungstenite::Error) -> Option<u16> {
    if let tokio_tungstenite::tungstenite::Error::Http(resp) = err {
        Some(resp.status().as_u16())
    } else {
        None
    }
}

fn client_events(events: &[proctor::domain::Event]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.origin == Origin::Client)
        .map(|e| e.seq)
        .collect()
}

/// Waits until the worker has stored `n` client events of the session.
async fn stored_client(t: &proctor_e2e::TestApp, sid: &str, n: usize) -> Vec<u64> {
    for _ in 0..200 {
        let seqs = client_events(&t.stored_events(sid).await);
        if seqs.len() >= n {
            return seqs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    client_events(&t.stored_events(sid).await)
}

async fn started(t: &proctor_e2e::TestApp) -> (String, Value) {
    let token = t.token().await;
    let e = t.enrol(&token, true).await;
    let (s, started) = t.start(&token, &e, 0).await;
    assert_eq!(s, 201, "{started}");
    (token, started)
}

fn hb(seq: u64, pos: i64) -> Value {
    json!({"seq": seq, "type": "heartbeat", "position_ms": pos, "rate_permille": 1000, "paused": false, "visible": true, "focused": true})
}

#[tokio::test]
async fn replayed_and_skipped_sequence_numbers() {
    let mut t = spawn_app(1.0).await;
    let (_, st) = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let (mut ws, welcome) = open_ws(&st).await;
    assert_eq!(welcome["last_seq"], 0);
    send(
        &mut ws,
        json!({"seq": 1, "type": "played", "position_ms": 0}),
    )
    .await;
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 1, "duplicate": false})
    );
    send(&mut ws, hb(2, 5000)).await;
    recv_kind(&mut ws, "ack").await;

    // A replay is acknowledged again and ignored.
    send(&mut ws, hb(2, 9999)).await;
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 2, "duplicate": true})
    );
    // A gap is reported, not accepted.
    send(&mut ws, hb(5, 10_000)).await;
    assert_eq!(
        recv_kind(&mut ws, "gap").await,
        json!({"type": "gap", "expected": 3, "got": 5})
    );
    send(&mut ws, hb(3, 10_000)).await;
    assert_eq!(recv_kind(&mut ws, "ack").await["seq"], 3);

    let seqs = stored_client(&t, &sid, 3).await;
    assert_eq!(
        seqs,
        vec![1, 2, 3],
        "the replay and the gap left the log untouched"
    );
    let stored = t.stored_events(&sid).await;
    let hb2 = stored
        .iter()
        .find(|e| e.origin == Origin::Client && e.seq == 2)
        .expect("seq 2");
    assert!(
        matches!(
            hb2.body,
            EventBody::Heartbeat {
                position_ms: 5000,
                ..
            }
        ),
        "the first delivery of seq 2 is kept"
    );
    t.stop().await;
}

#[tokio::test]
async fn malformed_messages_close_the_socket_and_change_nothing() {
    let mut t = spawn_app(1.0).await;
    for (bad, code) in [
        (json!("{not json").as_str().expect("s").to_owned(), 4400),
        (json!({"seq": 2, "type": "heartbeat", "position_ms": 1}).to_string(), 4400),
        (json!({"seq": 2, "type": "played", "position_ms": 1, "cheat": true}).to_string(), 4400),
        (json!({"seq": 2, "type": "face_checked", "check_id": "x", "method": "face", "passed": true, "detail": ""}).to_string(), 4400),
        (json!({"seq": 2, "type": "played", "position_ms": 1, "pad": "x".repeat(70 * 1024)}).to_string(), 1009),
    ] {
        let (_, st) = started(&t).await;
        let sid = st["session_id"].as_str().expect("sid").to_owned();
        let mut ws = open_playing(&st).await;
        ws.send(tokio_tungstenite::tungstenite::Message::Text(bad.clone().into())).await.expect("send");
        let closed = loop {
            match recv(&mut ws).await {
                Ok(_) => {}
                Err(frame) => break frame,
            }
        };
        assert_eq!(closed.as_ref().map(|f| f.0), Some(code), "close for {:.60}: {closed:?}", bad);
        assert!(!closed.map(|f| f.1).unwrap_or_default().is_empty(), "the close reason names the problem");
        assert_eq!(stored_client(&t, &sid, 1).await, vec![1], "nothing else was stored");
    }
    t.stop().await;
}

use futures_util::SinkExt;

#[tokio::test]
async fn learner_tokens_are_bound_to_their_session() {
    let mut t = spawn_app(1.0).await;
    let (_, a) = started(&t).await;
    let (_, b) = started(&t).await;
    let url = format!(
        "{}?access_token={}",
        b["ws_url"].as_str().expect("url"),
        a["learner_token"].as_str().expect("token")
    );
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("a foreign learner token is refused");
    let err = err;
    assert_eq!(http_status(&err), Some(403), "{err:?}");
    let no_token = b["ws_url"].as_str().expect("url").to_owned();
    let err = tokio_tungstenite::connect_async(no_token)
        .await
        .expect_err("no token");
    assert_eq!(http_status(&err), Some(401), "{err:?}");
    // Uploads too.
    let r = t
        .http
        .post(t.url(&format!(
            "/api/v1/sessions/{}/face-checks",
            b["session_id"].as_str().expect("sid")
        )))
        .bearer_auth(a["learner_token"].as_str().expect("token"))
        .header("content-type", "image/png")
        .body(png(true))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 403);
    t.stop().await;
}

#[tokio::test]
async fn uploads_must_be_images_tied_to_an_open_request() {
    let mut t = spawn_app(1.0).await;
    let (_, st) = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid");
    let lt = st["learner_token"].as_str().expect("token");
    let up = |what: &str, body: Vec<u8>, ct: &'static str| {
        t.http
            .post(t.url(&format!("/api/v1/sessions/{sid}/{what}")))
            .bearer_auth(lt)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = up(
        "face-checks",
        b"%PDF-1.7 not an image".to_vec(),
        "image/png",
    )
    .await
    .expect("upload");
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = up("face-checks", png(true), "image/jpeg")
        .await
        .expect("upload");
    assert_eq!(
        r.status().as_u16(),
        422,
        "declared type must match the bytes"
    );
    let r = up("face-checks", vec![0x89; 5 * 1024 * 1024], "image/png")
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 413);
    let r = up("snapshots?nonce=made-up", png(true), "image/png")
        .await
        .expect("upload");
    assert_eq!(
        r.status().as_u16(),
        409,
        "a snapshot needs an open snapshot request"
    );
    let before = t.stored_events(sid).await.len();
    let r = up("face-checks", png(true), "image/png")
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["passed"], true);
    let after = t.stored_events(sid).await;
    assert_eq!(
        after.len(),
        before + 1,
        "only the valid face check reached the log"
    );
    assert!(matches!(
        after.last().map(|e| &e.body),
        Some(EventBody::FaceChecked { passed: true, .. })
    ));

    // A learner without face consent is offered the non-face path instead.
    let token = t.token().await;
    let e = t.enrol(&token, false).await;
    let (_, st2) = t.start(&token, &e, 0).await;
    assert_eq!(st2["identity_check"], "manual");
    let r = t
        .http
        .post(t.url(&format!(
            "/api/v1/sessions/{}/face-checks",
            st2["session_id"].as_str().expect("sid")
        )))
        .bearer_auth(st2["learner_token"].as_str().expect("t"))
        .header("content-type", "image/png")
        .body(png(true))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 403);
    t.stop().await;
}

/// A learner who goes silent loses the session when its lease (R2: 30 s without a client
/// event; 0.3 s on this 100x clock) runs out: the worker ends it, says why and closes the
/// socket. The worker judges silence only up to where it has read its partition (a worker
/// behind it must not end sessions whose events wait on the bus: faults.rs), and this shows
/// that it does still get there, on the in-process bus and on Redis.
#[tokio::test]
async fn a_silent_session_ends_when_its_lease_runs_out() {
    let mut t = spawn_app(100.0).await;
    let (token, st) = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let mut ws = open_playing(&st).await;
    let ended = recv_kind(&mut ws, "ended").await;
    assert_eq!(ended["reason"], "lease_expired", "{ended}");
    let closed = loop {
        match recv(&mut ws).await {
            Ok(_) => {}
            Err(f) => break f,
        }
    };
    assert_eq!(closed.map(|f| f.0), Some(4410));
    // The gateway forgot the ended session's seq with the close it delivered (on the Redis
    // pass through its effects subscription, as a gateway-only process does).
    assert_eq!(
        t.app.hub.last_seq(&sid),
        None,
        "the gateway still tracks an ended session"
    );
    let (_, _, v) = proctor_e2e::get_json(
        &t.http,
        &t.url(&format!("/api/v1/sessions/{sid}/verdict")),
        &token,
    )
    .await;
    assert_eq!(v["termination"], "lease_expired", "{v}");
    let report = t.app.replay(&sid).await.expect("replay");
    assert!(
        report.matches,
        "stored verdict differs from a replay of the log"
    );
    t.stop().await;
}

#[tokio::test]
async fn wrong_nonce_answers_events_after_the_end_and_resume() {
    let mut t = spawn_app(1.0).await;
    let (token, st) = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let mut ws = open_playing(&st).await;
    send(
        &mut ws,
        json!({"seq": 2, "type": "challenge_answered", "nonce": "not-issued", "answer": "1234"}),
    )
    .await;
    let err = recv_kind(&mut ws, "error").await;
    assert_eq!(err["code"], "unknown_nonce");
    assert_eq!(err["seq"], 2);

    // Resume: a new socket replaces the old one and says where to continue.
    let (mut ws2, welcome) = open_ws(&st).await;
    assert_eq!(welcome["last_seq"], 2);
    send(
        &mut ws2,
        json!({"seq": 2, "type": "challenge_answered", "nonce": "not-issued", "answer": "1234"}),
    )
    .await;
    assert_eq!(
        recv_kind(&mut ws2, "ack").await["duplicate"],
        true,
        "a resent event is not stored twice"
    );
    match recv(&mut ws).await {
        Err(Some((4409, _))) => {}
        other => {
            // The old socket may deliver a pending message first.
            assert!(other.is_ok(), "old socket: {other:?}");
        }
    }

    // The learner ends the session; the socket closes with 4410 and later events are refused.
    send(
        &mut ws2,
        json!({"seq": 3, "type": "terminated", "reason": "ended"}),
    )
    .await;
    recv_kind(&mut ws2, "ended").await;
    let closed = loop {
        match recv(&mut ws2).await {
            Ok(_) => {}
            Err(f) => break f,
        }
    };
    assert_eq!(closed.map(|f| f.0), Some(4410));
    let stored = stored_client(&t, &sid, 3).await;
    assert_eq!(stored, vec![1, 2, 3]);
    let url = format!(
        "{}?access_token={}",
        st["ws_url"].as_str().expect("url"),
        st["learner_token"].as_str().expect("t")
    );
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("ended sessions refuse sockets");
    assert_eq!(http_status(&err), Some(409), "{err:?}");
    // The verdict says it ended, and a replay of the log matches the stored verdict exactly.
    let (_, _, v) = proctor_e2e::get_json(
        &t.http,
        &t.url(&format!("/api/v1/sessions/{sid}/verdict")),
        &token,
    )
    .await;
    assert_eq!(v["ended"], true);
    assert_eq!(v["termination"], "ended");
    let report = t.app.replay(&sid).await.expect("replay");
    assert!(
        report.matches,
        "stored verdict differs from a replay of the log"
    );
    t.stop().await;
}

/// The beacon (`navigator.sendBeacon` while the socket is down): it appends what the server
/// lacks in order, counts resent seqs as duplicates, stops at a gap, and keeps the learner's
/// single-session lease alive (R2) on either pass: on the Redis pass the lease is the shared
/// one in Redis. The clock runs 100× here, so the 30 s lease lasts 0.3 s of real time and
/// outlives 1.2 s of beacons only if they renew it.
#[tokio::test]
async fn beacons_append_in_order_and_keep_the_lease_alive() {
    let t = spawn_app(100.0).await;
    let (_, st) = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let learner_token = st["learner_token"]
        .as_str()
        .expect("learner token")
        .to_owned();
    let (rec, _) = t.app.session_with_context(&sid).await.expect("session");
    let url = t.url(&format!(
        "/api/v1/sessions/{sid}/beacon?access_token={learner_token}"
    ));
    let beacon = |frames: Value| {
        let (http, url) = (t.http.clone(), url.clone());
        async move {
            let r = http
                .post(&url)
                .header("content-type", "application/json")
                .body(frames.to_string())
                .send()
                .await
                .expect("beacon");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("receipt"))
        }
    };
    let (s, receipt) = beacon(json!([
        {"seq": 1, "type": "played", "position_ms": 0},
        hb(2, 0),
        hb(1, 0),
        hb(4, 0)
    ]))
    .await;
    assert_eq!(s, 202, "{receipt}");
    assert_eq!(receipt["accepted"], 2, "{receipt}");
    assert_eq!(receipt["duplicates"], 1, "{receipt}");
    assert_eq!(receipt["last_seq"], 2, "stops before the gap: {receipt}");
    assert_eq!(stored_client(&t, &sid, 2).await, vec![1, 2]);

    let mut seq = 2;
    for _ in 0..12 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        seq += 1;
        let (s, receipt) = beacon(json!([hb(seq, 0)])).await;
        assert_eq!(s, 202, "{receipt}");
        assert_eq!(receipt["accepted"], 1, "{receipt}");
    }
    assert_eq!(
        t.app.lease_holder(&rec.learner_id).await.expect("lease"),
        Some(sid.clone()),
        "the beacons did not keep the learner's lease"
    );
    assert_eq!(
        stored_client(&t, &sid, 14).await,
        (1..=14).collect::<Vec<_>>()
    );
}
