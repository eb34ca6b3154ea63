//! Use cases over the domain and the ports: the catalogue (courses, classes, learners,
//! enrolments), starting sessions, accepting events, reading verdicts. Handlers in `api`
//! stay thin and call these. Invariant: every state change that matters to a verdict is an
//! event appended to a session's log; nothing here computes credit itself.

pub mod catalog;
pub mod demo;
pub mod error;
pub mod face;
pub mod hub;
pub mod liveness;
pub mod protocol;
pub mod review;
pub mod sessions;
pub mod uploads;

use std::sync::Arc;

use crate::adapters::bus::{Bus, Delivery};
use crate::adapters::redis::RedisConn;
use crate::adapters::store::Store;
use crate::app::hub::Outbound;
use crate::app::protocol::ServerMsg;
use crate::auth::Keys;
use crate::domain::{Event, EventBody, Millis, Origin};
use crate::ports::{Clock, Evidence, FaceCheck};
pub use error::{AppError, AppResult};
use hub::{Hub, Leases};

/// Everything a request handler or a worker needs. Shared behind an `Arc`.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub bus: Bus,
    /// Redis, when the production pipeline runs: effects go to gateways over pub/sub and leases
    /// live there. `None` on the embedded default (everything in process).
    pub redis: Option<RedisConn>,
    pub hub: std::sync::Arc<Hub>,
    pub leases: Leases,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub face: Arc<dyn FaceCheck>,
    pub evidence: Arc<dyn Evidence>,
    /// Keys that seal face templates at rest.
    pub templates: crate::adapters::face::template::TemplateKeys,
    /// Bounds concurrent face analyses (one per core) on the blocking pool.
    pub face_slots: Arc<tokio::sync::Semaphore>,
    /// Base URL clients reach this server at, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// Interval the SDK should send heartbeats at, in server milliseconds.
    pub heartbeat_interval_ms: i64,
    /// Set at SIGTERM: `/readyz` fails and new sockets are refused while the drain runs.
    pub draining: std::sync::atomic::AtomicBool,
    /// The seeded demo platform, if any: its learners enrol their face with their first camera
    /// frame (a demo convenience; real platforms enrol the real-name photo).
    pub demo_platform: std::sync::OnceLock<String>,
}

/// A fresh, time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl App {
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The WebSocket URL of a session.
    pub fn ws_url(&self, session_id: &str) -> String {
        let base = self
            .public_url
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                self.public_url
                    .strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| self.public_url.clone());
        format!("{base}/api/v1/sessions/{session_id}/ws")
    }

    /// Sends a message to a learner's socket, wherever it is connected.
    pub async fn push(&self, session: &str, msg: ServerMsg) {
        self.effect(session, Outbound::Msg(Box::new(msg))).await;
    }

    /// Closes a learner's socket, wherever it is connected.
    pub async fn close_socket(&self, session: &str, code: u16, reason: &str) {
        self.effect(session, Outbound::Close(code, reason.to_owned()))
            .await;
    }

    async fn effect(&self, session: &str, out: Outbound) {
        self.effects(vec![(session.to_owned(), out)]).await;
    }

    /// Sends messages and closes to learners' sockets, wherever they are connected, in order.
    /// With Redis they are published in one pipeline (one round trip for the lot): a worker
    /// pushes the effects of a whole batch of stored verdicts at once.
    pub async fn effects(&self, effects: Vec<(String, Outbound)>) {
        let Some(conn) = &self.redis else {
            for (session, out) in effects {
                self.hub.deliver(&session, out);
            }
            return;
        };
        if effects.is_empty() {
            return;
        }
        let channel = conn.effects_channel();
        let mut pipe = redis::pipe();
        for (session, out) in effects {
            let (msg, close) = match out {
                Outbound::Msg(m) => (Some(*m), None),
                Outbound::Close(code, why) => (None, Some((code, why))),
            };
            let env = crate::adapters::redis::effects::Envelope {
                session,
                msg,
                close,
            };
            match serde_json::to_string(&env) {
                Ok(payload) => {
                    pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
                }
                Err(e) => {
                    tracing::error!(session = %env.session, error = %e, "Failed to encode an effect.");
                }
            }
        }
        let sent: redis::RedisResult<()> = conn.clone().pipeline(&pipe).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "Failed to publish effects; learners see them on resume.");
        }
    }

    /// A lease TTL in server milliseconds, as real milliseconds for Redis.
    fn real_ms(&self, server_ms: i64) -> u64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let ms = (server_ms.max(1) as f64 / self.clock.scale()).ceil() as u64;
        ms.max(1)
    }

    /// The session holding the learner's single-session lease (R2), if any.
    pub async fn lease_holder(&self, learner: &str) -> AppResult<Option<String>> {
        match &self.redis {
            None => Ok(self.leases.holder(learner, self.now())),
            Some(c) => crate::adapters::redis::leases::holder(&mut c.clone(), learner)
                .await
                .map_err(redis_down),
        }
    }

    pub async fn lease_hold(&self, learner: &str, session: &str, ttl_ms: i64) -> AppResult<()> {
        match &self.redis {
            None => {
                self.leases.hold(learner, session, self.now().plus(ttl_ms));
                Ok(())
            }
            Some(c) => crate::adapters::redis::leases::hold(
                &mut c.clone(),
                learner,
                session,
                self.real_ms(ttl_ms),
            )
            .await
            .map_err(redis_down),
        }
    }

    /// Renews the lease if `session` still holds it (or nobody does); false if another does.
    pub async fn lease_renew(&self, learner: &str, session: &str, ttl_ms: i64) -> AppResult<bool> {
        match &self.redis {
            None => Ok(self.leases.renew(learner, session, self.now().plus(ttl_ms))),
            Some(c) => crate::adapters::redis::leases::renew(
                &mut c.clone(),
                learner,
                session,
                self.real_ms(ttl_ms),
            )
            .await
            .map_err(redis_down),
        }
    }

    pub async fn lease_release(&self, learner: &str, session: &str) {
        match &self.redis {
            None => self.leases.release(learner, session),
            Some(c) => {
                if let Err(e) =
                    crate::adapters::redis::leases::release(&mut c.clone(), learner, session).await
                {
                    tracing::warn!(error = %e, "Failed to release a lease; it expires by itself.");
                }
            }
        }
    }

    /// Appends a server-observed fact to a session's log and hands it to the workers.
    /// The sequence number comes from the store's per-session counter, so gateways and
    /// workers never hand out the same number twice.
    pub async fn append_server_event(&self, session_id: &str, body: EventBody) -> AppResult<Event> {
        let seq = self.store.next_server_seq(session_id).await?;
        let event = Event {
            origin: Origin::Server,
            seq,
            at: self.now(),
            body,
        };
        self.store
            .append_events(&[(session_id.to_owned(), event.clone())])
            .await?;
        self.bus
            .publish(Delivery::new(session_id.to_owned(), event.clone()))
            .await?;
        Ok(event)
    }
}

fn redis_down(e: redis::RedisError) -> AppError {
    tracing::warn!(error = %e, "Redis is unavailable.");
    AppError::Unavailable {
        what: "lease store",
        retry_after_s: 2,
    }
}
