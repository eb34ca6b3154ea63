//! The gateway's live state: which socket serves which session (effects are pushed through
//! it), the last client sequence number each session had accepted, and the single-session
//! leases (R2). In-process for the embedded default. Invariant: at most one socket per
//! session; a newer socket replaces an older one, which is closed with `REPLACED`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::protocol::ServerMsg;
use crate::domain::Millis;

/// What a socket task is told to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Boxed: the enum sits in every socket's channel block (32 slots), so its size is
    /// per-connection memory.
    Msg(Box<ServerMsg>),
    Close(u16, String),
}

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Outbound>,
}

/// Connections and per-session gateway state.
#[derive(Debug, Default)]
pub struct Hub {
    conns: Mutex<HashMap<String, Conn>>,
    /// Each session's last accepted client seq; its socket holds the cell too.
    last_seq: Mutex<HashMap<String, Arc<AtomicU64>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of a plain map; the map
    // itself is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// Registers a socket for `session`; an older one is told to close.
    pub fn register(&self, session: &str) -> (u64, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = lock(&self.conns).insert(session.to_owned(), Conn { id, tx }) {
            let _ = old.tx.send(Outbound::Close(
                super::protocol::close::REPLACED,
                "replaced by a newer connection".into(),
            ));
        }
        (id, rx)
    }

    /// Removes the socket if it is still the registered one.
    pub fn unregister(&self, session: &str, id: u64) {
        let mut conns = lock(&self.conns);
        if conns.get(session).is_some_and(|c| c.id == id) {
            conns.remove(session);
        }
    }

    /// Hands an effect to the session's socket here, if there is one. The close that ends a
    /// session also drops the session's last accepted seq: every gateway sees that effect
    /// (embedded: its one hub; Redis: each gateway's subscription), whether or not it holds the
    /// socket, so no gateway keeps an entry per session it ever served.
    pub fn deliver(&self, session: &str, out: Outbound) -> bool {
        if matches!(&out, Outbound::Close(code, _) if *code == super::protocol::close::SESSION_ENDED)
        {
            self.forget(session);
        }
        lock(&self.conns)
            .get(session)
            .is_some_and(|c| c.tx.send(out).is_ok())
    }

    /// Tells every socket to close (graceful shutdown).
    pub fn close_all(&self, code: u16, reason: &str) {
        for c in lock(&self.conns).values() {
            let _ = c.tx.send(Outbound::Close(code, reason.to_owned()));
        }
    }

    pub fn connections(&self) -> usize {
        lock(&self.conns).len()
    }

    /// The last accepted client seq this gateway knows for `session`.
    pub fn last_seq(&self, session: &str) -> Option<u64> {
        lock(&self.last_seq)
            .get(session)
            .map(|c| c.load(Ordering::Acquire))
    }

    /// The session's last-seq cell, made if new: a socket takes it once and moves it per
    /// event without the map's lock and hash (`set_last_seq` is both, per call).
    pub fn seq_cell(&self, session: &str) -> Arc<AtomicU64> {
        let mut m = lock(&self.last_seq);
        match m.get(session) {
            Some(c) => c.clone(),
            None => m.entry(session.to_owned()).or_default().clone(),
        }
    }

    pub fn set_last_seq(&self, session: &str, seq: u64) {
        self.seq_cell(session).fetch_max(seq, Ordering::AcqRel);
    }

    pub fn forget(&self, session: &str) {
        lock(&self.last_seq).remove(session);
    }
}

/// Single-session leases (R2): learner → (session, expiry in server time).
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<HashMap<String, (String, Millis)>>,
}

impl Leases {
    /// The live session holding the learner's lease at `now`, other than `except`.
    pub fn holder(&self, learner: &str, now: Millis) -> Option<String> {
        lock(&self.held)
            .get(learner)
            .filter(|(_, exp)| *exp > now)
            .map(|(s, _)| s.clone())
    }

    /// Takes or renews the lease for `session` until `until`.
    pub fn hold(&self, learner: &str, session: &str, until: Millis) {
        lock(&self.held).insert(learner.to_owned(), (session.to_owned(), until));
    }

    /// Renews only if `session` still holds it; false if another session took over.
    pub fn renew(&self, learner: &str, session: &str, until: Millis) -> bool {
        let mut held = lock(&self.held);
        match held.get_mut(learner) {
            Some((s, exp)) if s == session => {
                *exp = until;
                true
            }
            Some(_) => false,
            None => {
                held.insert(learner.to_owned(), (session.to_owned(), until));
                true
            }
        }
    }

    pub fn release(&self, learner: &str, session: &str) {
        let mut held = lock(&self.held);
        if held.get(learner).is_some_and(|(s, _)| s == session) {
            held.remove(learner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_socket_replaces_the_older() {
        let hub = Hub::default();
        let (a, mut rx_a) = hub.register("s");
        let (b, _rx_b) = hub.register("s");
        assert!(matches!(rx_a.try_recv(), Ok(Outbound::Close(4409, _))));
        hub.unregister("s", a);
        assert_eq!(
            hub.connections(),
            1,
            "the old socket's unregister does not remove the new one"
        );
        hub.unregister("s", b);
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn the_close_that_ends_a_session_forgets_its_seq_with_or_without_a_socket() {
        use crate::app::protocol::close;
        let hub = Hub::default();
        let (_, mut rx) = hub.register("here");
        hub.set_last_seq("here", 7);
        hub.set_last_seq("elsewhere", 9);
        // Other closes keep it: the learner may reconnect and resume from it.
        hub.deliver("here", Outbound::Close(close::REPLACED, "replaced".into()));
        assert_eq!(hub.last_seq("here"), Some(7));
        assert!(hub.deliver(
            "here",
            Outbound::Close(close::SESSION_ENDED, "ended".into())
        ));
        assert!(matches!(
            rx.try_recv(),
            Ok(Outbound::Close(close::REPLACED, _))
        ));
        assert!(matches!(
            rx.try_recv(),
            Ok(Outbound::Close(close::SESSION_ENDED, _))
        ));
        assert_eq!(hub.last_seq("here"), None);
        // A gateway without the session's socket still forgets it.
        assert!(!hub.deliver(
            "elsewhere",
            Outbound::Close(close::SESSION_ENDED, "ended".into())
        ));
        assert_eq!(hub.last_seq("elsewhere"), None);
    }

    #[test]
    fn a_sockets_seq_cell_is_what_reconnections_and_beacons_see() {
        let hub = Hub::default();
        assert_eq!(hub.last_seq("s"), None);
        let cell = hub.seq_cell("s");
        cell.fetch_max(5, Ordering::AcqRel);
        assert_eq!(
            hub.last_seq("s"),
            Some(5),
            "the socket's moves are the hub's"
        );
        hub.set_last_seq("s", 3);
        assert_eq!(cell.load(Ordering::Acquire), 5, "a beacon never lowers it");
        hub.set_last_seq("s", 8);
        assert_eq!(
            cell.load(Ordering::Acquire),
            8,
            "one cell for socket and beacon"
        );
        assert!(
            Arc::ptr_eq(&cell, &hub.seq_cell("s")),
            "a second socket shares it"
        );
        hub.forget("s");
        assert_eq!(hub.last_seq("s"), None);
    }

    #[test]
    fn leases_expire_and_belong_to_one_session() {
        let l = Leases::default();
        l.hold("learner", "s1", Millis(100));
        assert_eq!(l.holder("learner", Millis(50)).as_deref(), Some("s1"));
        assert_eq!(
            l.holder("learner", Millis(100)),
            None,
            "expired at its deadline"
        );
        assert!(
            !l.renew("learner", "s2", Millis(200)),
            "another session cannot renew it"
        );
        l.release("learner", "s2");
        assert_eq!(
            l.holder("learner", Millis(50)).as_deref(),
            Some("s1"),
            "only the holder releases"
        );
        l.release("learner", "s1");
        assert_eq!(l.holder("learner", Millis(50)), None);
    }
}
