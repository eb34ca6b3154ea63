//! The learner socket at the frame level (`api::socket`, `api::upgrade`): fragmented messages
//! are joined, pings answered, a close echoed; binary, invalid UTF-8, oversized fragmented
//! and stray continuation frames close the socket with a code that names the problem and
//! store nothing; a refused handshake and any other upgrade request get a whole HTTP answer.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proctor::domain::Origin;
use proctor_e2e::{Ws, open_playing, open_ws, recv, recv_kind, spawn_app};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

async fn started(t: &proctor_e2e::TestApp) -> Value {
    let token = t.token().await;
    let e = t.enrol(&token, true).await;
    let (s, started) = t.start(&token, &e, 0).await;
    assert_eq!(s, 201, "{started}");
    started
}

async fn stored_client(t: &proctor_e2e::TestApp, sid: &str) -> Vec<u64> {
    // The worker stores within milliseconds; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stored_events(sid)
        .await
        .iter()
        .filter(|e| e.origin == Origin::Client)
        .map(|e| e.seq)
        .collect()
}

fn fragment(data: &[u8], opcode: Data, last: bool) -> Message {
    Message::Frame(Frame::message(data.to_vec(), OpCode::Data(opcode), last))
}

/// The next control frame or close (text messages are skipped).
async fn next_raw(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if !matches!(m, Message::Text(_)) {
            return m;
        }
    }
}

#[tokio::test]
async fn fragments_are_joined_pings_answered_and_a_close_echoed() {
    let mut t = spawn_app(1.0).await;
    let st = started(&t).await;
    let sid = st["session_id"].as_str().expect("sid").to_owned();
    let (mut ws, _) = open_ws(&st).await;

    let msg = json!({"seq": 1, "type": "played", "position_ms": 0}).to_string();
    let (a, rest) = msg.as_bytes().split_at(7);
    let (b, c) = rest.split_at(11);
    ws.send(fragment(a, Data::Text, false)).await.expect("send");
    // A control frame may come between fragments.
    ws.send(Message::Ping(b"between".to_vec().into()))
        .await
        .expect("ping");
    ws.send(fragment(b, Data::Continue, false))
        .await
        .expect("send");
    ws.send(fragment(c, Data::Continue, true))
        .await
        .expect("send");
    assert_eq!(
        next_raw(&mut ws).await,
        Message::Pong(b"between".to_vec().into())
    );
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 1, "duplicate": false})
    );

    // Several messages in one write are all accepted, and answered by one ack: the last's,
    // which covers the others (acceptance is in order).
    let hb = |seq: u64| {
        Message::Text(
            json!({"seq": seq, "type": "heartbeat", "position_ms": 1000 * seq, "rate_permille": 1000, "paused": false, "visible": true, "focused": true})
                .to_string()
                .into(),
        )
    };
    for seq in 2..=4 {
        ws.feed(hb(seq)).await.expect("feed");
    }
    ws.flush().await.expect("one write");
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 4, "duplicate": false})
    );
    // A message alone is answered alone, and a resent one at once, as a duplicate.
    ws.feed(hb(5)).await.expect("feed");
    ws.feed(hb(3)).await.expect("feed");
    ws.flush().await.expect("one write");
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 5, "duplicate": false})
    );
    assert_eq!(
        recv_kind(&mut ws, "ack").await,
        json!({"type": "ack", "seq": 3, "duplicate": true})
    );

    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    })))
    .await
    .expect("close");
    let echoed = next_raw(&mut ws).await;
    assert!(
        matches!(&echoed, Message::Close(Some(f)) if f.code == CloseCode::Away),
        "the peer's close code is echoed: {echoed:?}"
    );
    assert_eq!(stored_client(&t, &sid).await, vec![1, 2, 3, 4, 5]);
    t.stop().await;
}

#[tokio::test]
async fn bad_frames_close_the_socket_with_a_code_and_store_nothing() {
    let mut t = spawn_app(1.0).await;
    let big = vec![b' '; 40 * 1024];
    let cases: Vec<(&str, Vec<Message>, u16)> = vec![
        ("binary", vec![Message::Binary(b"{}".to_vec().into())], 4400),
        (
            "invalid UTF-8",
            vec![fragment(&[b'{', 0xff, 0xfe, b'}'], Data::Text, true)],
            1007,
        ),
        (
            "fragments over 64 KiB",
            vec![
                fragment(&big, Data::Text, false),
                fragment(&big, Data::Continue, true),
            ],
            1009,
        ),
        (
            "a continuation with nothing to continue",
            vec![fragment(b"{}", Data::Continue, true)],
            1002,
        ),
    ];
    for (what, frames, code) in cases {
        let st = started(&t).await;
        let sid = st["session_id"].as_str().expect("sid").to_owned();
        let mut ws = open_playing(&st).await;
        for f in frames {
            ws.send(f).await.expect("send");
        }
        let closed = loop {
            match recv(&mut ws).await {
                Ok(_) => {}
                Err(frame) => break frame,
            }
        };
        assert_eq!(
            closed.as_ref().map(|f| f.0),
            Some(code),
            "{what}: {closed:?}"
        );
        assert!(
            !closed.map(|f| f.1).unwrap_or_default().is_empty(),
            "{what}: the close reason names the problem"
        );
        assert_eq!(
            stored_client(&t, &sid).await,
            vec![1],
            "{what}: nothing else stored"
        );
    }
    t.stop().await;
}

/// Sends a raw HTTP/1.1 request and reads the answer until the server closes the connection.
async fn raw_http(base: &str, request: &str) -> String {
    let mut s = raw_request(base, request).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection after its answer")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

async fn raw_request(base: &str, request: &str) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    s
}

/// The head of the answer to a raw request (the connection may stay open).
async fn raw_head(base: &str, request: &str) -> String {
    let mut s = raw_request(base, request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(n > 0, "the connection closed before the answer's head");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn other_upgrade_requests_get_a_whole_answer() {
    let mut t = spawn_app(1.0).await;
    let st = started(&t).await;
    let path = st["ws_url"]
        .as_str()
        .expect("ws_url")
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .expect("path");

    // A WebSocket handshake without a token: problem+json, then the connection closes.
    let res = raw_http(
        &t.base,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    )
    .await;
    let lower = res.to_ascii_lowercase();
    assert!(res.starts_with("HTTP/1.1 401"), "{res}");
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{res}"
    );
    assert!(lower.contains("connection: close"), "{res}");
    let body = res.split_once("\r\n\r\n").map(|(_, b)| b).expect("body");
    let problem: Value = serde_json::from_str(body).expect("problem+json body");
    assert_eq!(problem["status"], 401, "{problem}");

    // A WebSocket upgrade of another route is answered by that route.
    let res = raw_http(
        &t.base,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(
        res.to_ascii_lowercase().contains("connection: close"),
        "{res}"
    );

    // A WebSocket handshake with a body is refused: its bytes are not read as frames.
    let token = st["learner_token"].as_str().expect("token");
    let res = raw_head(
        &t.base,
        &format!(
            "GET {path}?access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 2\r\n\r\n{{}}"
        ),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
    assert!(!res.contains("101"), "{res}");
    t.stop().await;
}
