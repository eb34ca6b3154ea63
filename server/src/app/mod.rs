//! Use cases over the domain and the ports: the catalogue (courses, classes, learners,
//! enrolments), starting sessions, accepting events, reading verdicts. Handlers in `api`
//! stay thin and call these. Invariant: every state change that matters to a verdict is an
//! event appended to a session's log; nothing here computes credit itself.

pub mod catalog;
pub mod demo;
pub mod error;
pub mod face;
pub mod hub;
pub mod protocol;
pub mod sessions;
pub mod uploads;

use std::sync::Arc;

use crate::adapters::bus::{Delivery, MemoryBus};
use crate::adapters::store::Store;
use crate::auth::Keys;
use crate::domain::{Event, EventBody, Millis, Origin};
use crate::ports::{Clock, Evidence, FaceCheck};
pub use error::{AppError, AppResult};
use hub::{Hub, Leases};

/// Everything a request handler or a worker needs. Shared behind an `Arc`.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub bus: MemoryBus,
    pub hub: Hub,
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
            .publish(Delivery {
                session_id: session_id.to_owned(),
                event: event.clone(),
            })
            .await?;
        Ok(event)
    }
}
