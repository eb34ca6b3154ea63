//! The store's hot-path operations, timed and their failures counted
//! (`proctor_store_operation_duration_seconds`, `proctor_store_errors_total`).

use super::{Result, SessionRecord, Store};
use crate::domain::{Event, Millis};
use crate::metrics::store_op;
use crate::model::Snapshot;

impl Store {
    /// A session's record and its context JSON.
    pub async fn session(&self, id: &str) -> Result<Option<(SessionRecord, String)>> {
        store_op("session", self.session_q(id)).await
    }

    /// Reserves the next server sequence number of a session (atomic across processes).
    pub async fn next_server_seq(&self, session_id: &str) -> Result<u64> {
        store_op("next_server_seq", self.next_server_seq_q(session_id)).await
    }

    /// Appends events; already-stored `(session, origin, seq)` keys are ignored.
    pub async fn append_events(&self, events: &[(String, Event)]) -> Result<()> {
        store_op("append_events", self.append_events_q(events)).await
    }

    /// A session's log in canonical order.
    pub async fn events(&self, session_id: &str) -> Result<Vec<Event>> {
        store_op("events", self.events_q(session_id)).await
    }

    /// Persists verdicts fenced by the log (see `save_verdicts_fenced_q`); returns the
    /// sessions whose fold was behind the log.
    pub async fn save_verdicts_fenced(
        &self,
        verdicts: &[super::VerdictWrite<'_>],
        now: Millis,
    ) -> Result<Vec<String>> {
        store_op("save_verdicts", self.save_verdicts_fenced_q(verdicts, now)).await
    }

    /// Records a stored snapshot.
    pub async fn insert_snapshot(&self, s: &Snapshot, path: &str) -> Result<()> {
        store_op("insert_snapshot", self.insert_snapshot_q(s, path)).await
    }
}
