//! The learner WebSocket `/api/v1/sessions/{id}/ws`. The gateway side of the pipeline:
//! authenticate (learner token for this session), check each message (schema, sequence
//! number), stamp the server's receive time, hand it to the bus, acknowledge. Effects from the
//! workers (challenges, credit, warnings, end) arrive through the hub and go out here.
//!
//! Invariants: a message is acknowledged only after the bus accepted it; a replayed sequence
//! number is acknowledged again and ignored (reconnects resend); a skipped one is refused with
//! `gap` so the client resends; anything malformed closes the socket with a code that names
//! the problem, and nothing already accepted changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::CloseReason;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::CallingLearner;
use super::error::{ApiError, ApiResult};
use super::socket::{Failure, Incoming, Socket, close_reason};
use crate::adapters::bus::Delivery;
use crate::app::hub::Outbound;
use crate::app::protocol::{ChallengeMsg, ServerMsg, close};
use crate::app::{App, AppError};
use crate::domain::{ChallengeKind, Event, EventBody, Millis, Origin};

/// Largest accepted WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Opens the learner socket (see docs/protocol.md). The handshake is answered here, through
/// the whole application; the socket itself is served on the raw stream (`api::upgrade`).
#[get("/sessions/{id}/ws")]
pub async fn connect(
    app: web::Data<App>,
    req: HttpRequest,
    learner: CallingLearner,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let claims = learner.for_session(&id)?.clone();
    let mut handshake =
        actix_http::ws::handshake(req.head()).map_err(|e| ApiError::Malformed(e.to_string()))?;
    // A handshake's body would be read as WebSocket frames (actix-http hands every WebSocket
    // upgrade request to `api::upgrade` with the stream as it is): refuse one.
    if req
        .headers()
        .contains_key(actix_web::http::header::CONTENT_LENGTH)
        || req
            .headers()
            .contains_key(actix_web::http::header::TRANSFER_ENCODING)
    {
        return Err(ApiError::Malformed(
            "a WebSocket handshake has no body".into(),
        ));
    }
    if app.is_draining() {
        return Err(AppError::Unavailable {
            what: "gateway (draining)",
            retry_after_s: 2,
        }
        .into());
    }
    let (outstanding, ended, _) = app.open_challenges(&id).await?;
    if ended {
        return Err(AppError::Conflict("the session has ended; start a new session".into()).into());
    }
    let (rec, ctx) = app.session_with_context(&id).await?;
    let stored_last = app
        .store
        .last_client_seq(&id)
        .await
        .map_err(AppError::from)?;
    let seq_cell = app.hub.seq_cell(&id);
    let last_seq = seq_cell
        .load(std::sync::atomic::Ordering::Acquire)
        .max(stored_last);
    let profile = crate::domain::Profile::find(&rec.profile)
        .map_err(|e| AppError::Internal(e.to_string()))?;

    let conn = Connection {
        app: app.into_inner(),
        session_id: id.into_inner(),
        learner_id: claims.sub,
        last_seq,
        seq_cell,
        lease_ttl_ms: profile.single_window.lease_ttl_ms,
        lease_renewed: Millis(0),
        lesson_duration_ms: ctx.lesson_duration_ms,
        nonces: outstanding
            .iter()
            .map(|o| (o.nonce.clone(), (o.kind, o.deadline)))
            .collect(),
    };
    let now = conn.app.now();
    let welcome = ServerMsg::Welcome {
        session_id: conn.session_id.clone(),
        last_seq,
        server_time: now,
        time_scale: conn.app.clock.scale(),
        heartbeat_interval_ms: conn.app.heartbeat_interval_ms,
        lesson_duration_ms: ctx.lesson_duration_ms,
        outstanding: outstanding
            .into_iter()
            .map(|o| ChallengeMsg::new(o.nonce, o.kind, o.deadline, o.expected, now))
            .collect(),
    };
    let mut response = HttpResponse::from(handshake.finish().map_into_boxed_body());
    response
        .extensions_mut()
        .insert(Accepted(Box::new((conn, welcome))));
    Ok(response)
}

/// A learner socket whose handshake was accepted, handed from `connect` to `api::upgrade` in
/// the `101` response's extensions.
pub struct Accepted(Box<(Connection, ServerMsg)>);

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("session", &self.0.0.session_id)
            .finish_non_exhaustive()
    }
}

impl Accepted {
    /// Serves the socket until it closes.
    pub async fn serve(self, socket: Socket) {
        let (conn, welcome) = *self.0;
        conn.run(socket, welcome).await;
    }
}

/// What a beacon delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeaconReceipt {
    /// Messages accepted now.
    pub accepted: u64,
    /// Messages the server already had (ignored, as on the socket).
    pub duplicates: u64,
    /// The highest accepted client seq after this beacon.
    pub last_seq: u64,
}

/// Last-chance delivery when the page goes away while the socket is down
/// (`navigator.sendBeacon`): a JSON array of the messages the socket takes, with the same
/// checks and sequence rules. Messages already accepted count as duplicates; the first gap
/// stops the batch (the rest waits for the socket's resume). Learner token in the query.
#[utoipa::path(tag = "learner", security(("learner" = [])), params(("id" = String, Path)),
    request_body(content = Vec<Object>, description = "client messages, each with its seq", content_type = "application/json"),
    responses((status = 202, body = BeaconReceipt), (status = 400, body = crate::api::error::Problem),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 409, body = crate::api::error::Problem), (status = 413, body = crate::api::error::Problem),
        (status = 503, body = crate::api::error::Problem)))]
#[post("/sessions/{id}/beacon")]
pub async fn beacon(
    app: web::Data<App>,
    learner: CallingLearner,
    id: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let claims = learner.for_session(&id)?.clone();
    if app.is_draining() {
        return Err(AppError::Unavailable {
            what: "gateway (draining)",
            retry_after_s: 2,
        }
        .into());
    }
    let (_, ended, _) = app.open_challenges(&id).await?;
    if ended {
        return Err(AppError::Conflict("the session has ended; start a new session".into()).into());
    }
    let (rec, ctx) = app.session_with_context(&id).await?;
    let profile = crate::domain::Profile::find(&rec.profile)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let bytes = super::read_limited(body, MAX_MESSAGE_BYTES).await?;
    let frames: Vec<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::Malformed(format!("a beacon is a JSON array of client messages: {e}"))
    })?;
    if frames.len() > 512 {
        return Err(ApiError::Malformed(
            "a beacon carries at most 512 messages".into(),
        ));
    }
    let mut parsed = frames
        .iter()
        .map(|v| parse_client_message(&v.to_string(), ctx.lesson_duration_ms))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::Malformed)?;
    parsed.sort_by_key(|(seq, _)| *seq);
    let stored = app
        .store
        .last_client_seq(&id)
        .await
        .map_err(AppError::from)?;
    let mut last = app.hub.last_seq(&id).unwrap_or(0).max(stored);
    let (mut accepted, mut duplicates) = (0, 0);
    for (seq, body) in parsed {
        if seq <= last {
            duplicates += 1;
            continue;
        }
        if seq != last + 1 {
            break;
        }
        let now = app.now();
        let event = Event {
            origin: Origin::Client,
            seq,
            at: now,
            body,
        };
        app.bus
            .publish(Delivery::new(id.to_string(), event))
            .await
            .map_err(|_| AppError::Unavailable {
                what: "event bus",
                retry_after_s: 2,
            })?;
        // A socket that resends this seq later is acknowledged as a duplicate or, if it read
        // `last_seq` before this beacon, stored idempotently on (session, origin, seq).
        last = seq;
        app.hub.set_last_seq(&id, seq);
        accepted += 1;
    }
    // Through the app (with Redis the lease is the shared one there), once per beacon: one
    // round trip covers all its events.
    if accepted > 0
        && let Err(e) = app
            .lease_renew(&claims.sub, &id, profile.single_window.lease_ttl_ms)
            .await
    {
        tracing::warn!(session = %id, error = %e, "Failed to renew a lease from a beacon.");
    }
    let m = crate::metrics::metrics();
    m.events_ingested
        .with_label_values(&["beacon"])
        .inc_by(accepted);
    m.events_rejected
        .with_label_values(&["duplicate"])
        .inc_by(duplicates);
    Ok(HttpResponse::Accepted().json(BeaconReceipt {
        accepted,
        duplicates,
        last_seq: last,
    }))
}

struct Connection {
    app: Arc<App>,
    session_id: String,
    learner_id: String,
    last_seq: u64,
    /// The hub's cell for this session's last accepted seq (a reconnection or a beacon reads
    /// it), moved per event without the hub's lock.
    seq_cell: std::sync::Arc<std::sync::atomic::AtomicU64>,
    lease_ttl_ms: i64,
    /// Server time of the last lease renewal.
    lease_renewed: Millis,
    lesson_duration_ms: i64,
    /// Challenges this socket knows of: nonce → (kind, deadline).
    nonces: HashMap<String, (ChallengeKind, Millis)>,
}

/// What to do after one client message.
enum Next {
    Send(Vec<ServerMsg>),
    Close(u16, String),
}

impl Connection {
    async fn run(mut self, mut socket: Socket, welcome: ServerMsg) {
        let (conn_id, mut outbound) = self.app.hub.register(&self.session_id);
        let _open = crate::metrics::metrics().ws_open();
        let mut refresh = tokio::time::interval(Duration::from_secs(
            crate::auth::LEARNER_TOKEN_TTL_S * 2 / 3,
        ));
        refresh.tick().await;
        queue(&mut socket, &welcome);
        let mut closing: Option<CloseReason> = None;
        // The stream failed or ended: no close frame can be sent.
        let mut gone = false;
        let mut peer_closed = false;
        loop {
            // Replies are queued; `recv` writes them before it waits for more input.
            tokio::select! {
                msg = socket.recv() => match msg {
                    Ok(Some(Incoming::Text(bytes))) => {
                        let Ok(text) = std::str::from_utf8(&bytes) else {
                            closing = Some(close_reason(1007, "text is not valid UTF-8"));
                            break;
                        };
                        // Boxed: it would otherwise size every idle socket's future.
                        match Box::pin(self.on_text(text)).await {
                            Next::Send(msgs) => msgs.iter().for_each(|m| queue(&mut socket, m)),
                            Next::Close(code, why) => { closing = Some(close_reason(code, &why)); break; }
                        }
                    }
                    Ok(Some(Incoming::Binary)) => {
                        closing = Some(close_reason(close::MALFORMED, "binary frames are not accepted; send JSON text"));
                        break;
                    }
                    Ok(Some(Incoming::Ping(b))) => socket.queue_pong(b),
                    Ok(Some(Incoming::Pong)) => {}
                    Ok(Some(Incoming::Close(reason))) => {
                        // Answer with the peer's code, as RFC 6455 asks.
                        closing = reason.map(|r| CloseReason { code: r.code, description: None });
                        peer_closed = true;
                        break;
                    }
                    Ok(None) | Err(Failure::Io) => { gone = true; break; }
                    Err(Failure::Protocol(code, why)) => { closing = Some(close_reason(code, &why)); break; }
                },
                out = outbound.recv() => match out {
                    Some(Outbound::Msg(m)) => {
                        if let ServerMsg::Challenge(c) = &*m {
                            self.nonces.insert(c.nonce.clone(), (c.kind, c.deadline));
                        }
                        queue(&mut socket, &m);
                    }
                    Some(Outbound::Close(code, why)) => { closing = Some(close_reason(code, &why)); break; }
                    None => break,
                },
                _ = refresh.tick() => {
                    if let Ok((token, expires_at)) = self.app.keys.issue_learner(&self.learner_id, &self.session_id) {
                        queue(&mut socket, &ServerMsg::Token { token, expires_at });
                    }
                }
            }
        }
        self.app.hub.unregister(&self.session_id, conn_id);
        if !gone {
            Box::pin(socket.close(closing, peer_closed)).await;
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        let m = crate::metrics::metrics();
        counters().messages_in.inc();
        let (seq, body) = match parse_client_message(text, self.lesson_duration_ms) {
            Ok(v) => v,
            Err(why) => {
                m.reject("malformed");
                return Next::Close(close::MALFORMED, why);
            }
        };
        if seq <= self.last_seq {
            m.reject("duplicate");
            return Next::Send(vec![ServerMsg::Ack {
                seq,
                duplicate: true,
            }]);
        }
        if seq != self.last_seq + 1 {
            m.reject("gap");
            return Next::Send(vec![ServerMsg::Gap {
                expected: self.last_seq + 1,
                got: seq,
            }]);
        }
        let now = self.app.now();
        let mut extra = Vec::new();
        if let EventBody::ChallengeAnswered { nonce, .. } = &body {
            match self.nonces.get(nonce) {
                None => extra.push(ServerMsg::Error {
                    seq,
                    code: "unknown_nonce".into(),
                    detail: "no challenge with this nonce was issued to this session; the answer is recorded but confirms nothing".into(),
                }),
                Some((_, deadline)) if *deadline <= now => extra.push(ServerMsg::Error {
                    seq,
                    code: "deadline_passed".into(),
                    detail: "the answer came after the deadline; it is recorded as late".into(),
                }),
                Some(_) => {}
            }
        }
        let event = Event {
            origin: Origin::Client,
            seq,
            at: now,
            body,
        };
        if let Err(e) = self
            .app
            .bus
            .publish(Delivery::new(self.session_id.clone(), event))
            .await
        {
            tracing::warn!(session = %self.session_id, error = %e, "The bus refused an event; closing the socket.");
            m.reject("bus_unavailable");
            return Next::Close(
                close::BACKPRESSURE,
                "the service cannot accept events now; reconnect and resend".into(),
            );
        }
        counters().ingested.inc();
        self.last_seq = seq;
        self.seq_cell
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
        // Renewing on every message would cost a Redis round trip per event; a third of the
        // TTL keeps the lease alive with room for two missed renewals.
        if now.saturating_sub(self.lease_renewed) >= self.lease_ttl_ms / 3 {
            self.lease_renewed = now;
            // Boxed: rare, and it would otherwise size every socket's future.
            if let Err(e) = Box::pin(self.app.lease_renew(
                &self.learner_id,
                &self.session_id,
                self.lease_ttl_ms,
            ))
            .await
            {
                tracing::warn!(session = %self.session_id, error = %e, "Failed to renew a lease.");
            }
        }
        let mut out = vec![ServerMsg::Ack {
            seq,
            duplicate: false,
        }];
        out.extend(extra);
        Next::Send(out)
    }
}

/// The counters a socket moves per message, looked up once: a labelled lookup hashes its
/// label values every time.
#[derive(Debug)]
struct Counters {
    messages_in: prometheus::IntCounter,
    messages_out: prometheus::IntCounter,
    ingested: prometheus::IntCounter,
}

fn counters() -> &'static Counters {
    static COUNTERS: std::sync::OnceLock<Counters> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(|| {
        let m = crate::metrics::metrics();
        Counters {
            messages_in: m.ws_messages.with_label_values(&["in"]),
            messages_out: m.ws_messages.with_label_values(&["out"]),
            ingested: m.events_ingested.with_label_values(&["ws"]),
        }
    })
}

/// Queues a server message on the socket (written before the socket next waits for input).
/// An acknowledgement of an accepted event is deferred: acceptance is in order, so the ack of
/// the last of several pipelined messages answers them all (docs/protocol.md), and only it is
/// sent. A duplicate's ack is queued as it is.
fn queue(socket: &mut Socket, msg: &ServerMsg) {
    let text = match serde_json::to_string(msg) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Failed to serialise a server message.");
            return;
        }
    };
    if let ServerMsg::Ack {
        duplicate: false, ..
    } = msg
    {
        if !socket.defer_text(text) {
            counters().messages_out.inc();
        }
    } else {
        counters().messages_out.inc();
        socket.queue_text(text);
    }
}

/// A client message as sent: a sequence number and an event. Parsed in one pass (serde's
/// `flatten` buffers the event's fields), not through a `serde_json::Value` and back: no map
/// and no owned key per field.
#[derive(Deserialize)]
struct ClientMessage {
    seq: u64,
    #[serde(flatten)]
    body: EventBody,
}

/// Parses one client message: `{"seq": n, "type": verb, ...fields}`. Returns a reason on any
/// problem; the caller closes the socket with `MALFORMED` and that reason.
pub fn parse_client_message(
    text: &str,
    lesson_duration_ms: i64,
) -> Result<(u64, EventBody), String> {
    let ClientMessage { seq, body } = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            format!("invalid event: {e}")
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    if seq == 0 {
        return Err("seq must be a positive integer".into());
    }
    if !body.is_client_body() {
        return Err(format!("{} may not be sent by a client", body.verb()));
    }
    let max_pos = lesson_duration_ms + 60_000;
    let pos_ok = |p: i64| (0..=max_pos).contains(&p);
    let valid = match &body {
        EventBody::Played { position_ms } | EventBody::Paused { position_ms } => {
            pos_ok(*position_ms)
        }
        EventBody::Seeked { from_ms, to_ms } => pos_ok(*from_ms) && pos_ok(*to_ms),
        EventBody::RateChanged {
            position_ms,
            rate_permille,
        } => pos_ok(*position_ms) && (1..=16_000).contains(rate_permille),
        EventBody::Heartbeat {
            position_ms,
            rate_permille,
            played,
            ..
        } => {
            pos_ok(*position_ms)
                && (0..=16_000).contains(rate_permille)
                && played.len() <= 256
                && played
                    .iter()
                    .all(|[a, b]| pos_ok(*a) && pos_ok(*b) && a <= b)
        }
        EventBody::VisibilityChanged { position_ms, .. }
        | EventBody::FocusChanged { position_ms, .. } => pos_ok(*position_ms),
        EventBody::ChallengeAnswered { nonce, answer } => nonce.len() <= 64 && answer.len() <= 64,
        EventBody::Signal { name, detail } => {
            !name.is_empty() && name.len() <= 64 && detail.len() <= 512
        }
        EventBody::Initialized { duration_ms } => {
            duration_ms.is_none_or(|d| (0..=86_400_000).contains(&d))
        }
        EventBody::Terminated { position_ms, .. } => position_ms.is_none_or(pos_ok),
        EventBody::SessionStarted
        | EventBody::ChallengeIssued { .. }
        | EventBody::ChallengeExpired { .. }
        | EventBody::FaceChecked { .. }
        | EventBody::SnapshotStored { .. }
        | EventBody::ConcurrentSessionRefused { .. } => false,
    };
    if !valid {
        return Err(format!("{} has a value out of range", body.verb()));
    }
    Ok((seq, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_checked_strictly() {
        let ok = r#"{"seq":1,"type":"heartbeat","position_ms":5000,"rate_permille":1000,"paused":false,"visible":true,"focused":true}"#;
        assert!(matches!(
            parse_client_message(ok, 600_000),
            Ok((1, EventBody::Heartbeat { .. }))
        ));
        for bad in [
            "not json",
            "[1,2]",
            r#"{"type":"played","position_ms":1}"#,
            r#"{"seq":0,"type":"played","position_ms":1}"#,
            r#"{"seq":1,"type":"played","position_ms":1,"extra":true}"#,
            r#"{"seq":1,"type":"teleported"}"#,
            r#"{"seq":1,"type":"session_started"}"#,
            r#"{"seq":1,"type":"face_checked","check_id":"x","method":"face","passed":true,"detail":""}"#,
            r#"{"seq":1,"type":"played","position_ms":-5}"#,
            r#"{"seq":1,"type":"rate_changed","position_ms":1,"rate_permille":0}"#,
            r#"{"seq":1,"type":"terminated","reason":"superseded"}"#,
        ] {
            assert!(
                parse_client_message(bad, 600_000).is_err(),
                "accepted: {bad}"
            );
        }
        assert!(
            parse_client_message(r#"{"seq":2,"type":"terminated","reason":"ended"}"#, 600_000)
                .is_ok()
        );
    }
}
