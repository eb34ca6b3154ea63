//! The producer side of the Redis Streams bus, and the entries' wire format. Gateways append
//! accepted events to their partition's stream (`proctor:{pN}:events`): one lane task per
//! partition and gateway process writes everything queued for that partition while its
//! previous `XADD` was in flight as one entry (at most `MAX_ENTRY_EVENTS` events, in the
//! order they were accepted), so under load one `XADD`, one read and one `XACK` carry many
//! events, and an idle gateway still appends each event at once. Gateways push back when a
//! partition's unacknowledged backlog passes its bound. Workers read the streams through
//! `partition` (`RedisPartition`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::RedisResult;
use redis::streams::StreamId;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{GROUP, RedisConn};
use crate::adapters::bus::{BusError, Delivery, partition_of};
use crate::domain::{Event, EventBody, Millis, Origin};

/// The default bound on a partition's unacknowledged backlog, in stream entries, before
/// gateways push back: up to 20 000 events when each entry holds one (light load), and up to
/// `MAX_ENTRY_EVENTS` times that when gateways are busy.
pub const DEFAULT_MAX_BACKLOG: u64 = 20_000;

/// How often a gateway re-reads the partitions' backlogs.
const BACKLOG_POLL: Duration = Duration::from_millis(200);

/// The most events one stream entry holds (a worker's read is bounded in entries, so this
/// bounds the events one read brings).
pub const MAX_ENTRY_EVENTS: usize = 64;

/// Events waiting for a partition's lane; a full queue makes `publish` wait.
const LANE_QUEUE: usize = 4096;

/// The producer side.
#[derive(Debug, Clone)]
pub struct RedisBus {
    partitions: usize,
    /// Per partition: its backlog is over the bound (refreshed by a watcher task).
    saturated: Arc<Vec<AtomicBool>>,
    /// Per partition: the queue of the task that appends its events, in order.
    lanes: Arc<Vec<mpsc::Sender<Append>>>,
}

/// One event waiting to be appended, and who to tell when it is (or failed).
#[derive(Debug)]
struct Append {
    delivery: Delivery,
    done: oneshot::Sender<Result<(), String>>,
    /// The publisher's thread's mailbox, when it publishes from a current-thread runtime.
    mailbox: Option<Mailbox>,
}

/// Publishers to tell, and what: a lane hands a thread's share of an `XADD` to its mailbox.
type Completions = Vec<(oneshot::Sender<Result<(), String>>, Result<(), String>)>;

/// Where a lane sends the completions of the publishers on one current-thread runtime (an
/// actix worker thread, where learner sockets run). A task on that thread tells each of them,
/// so an `XADD` of many events costs each such thread one cross-thread wake (a system call
/// that unparks its runtime) rather than one per event: that was 8.6 % of the server's CPU
/// under load (BENCHMARKS.md).
type Mailbox = mpsc::UnboundedSender<Completions>;

thread_local! {
    static MAILBOX: std::cell::RefCell<Option<Mailbox>> = const { std::cell::RefCell::new(None) };
}

/// This thread's mailbox, started on first use, when the caller runs on a current-thread
/// runtime (else `None`: a multi-thread runtime may run the publisher on any of its threads).
/// A mailbox whose runtime is gone is replaced.
fn local_mailbox() -> Option<Mailbox> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
        return None;
    }
    MAILBOX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return Some(tx.clone());
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Completions>();
        handle.spawn(async move {
            while let Some(batch) = rx.recv().await {
                complete(batch);
            }
        });
        *slot = Some(tx.clone());
        Some(tx)
    })
}

/// Tells each publisher its event's outcome (one that gave up waiting is no error: its event
/// may be appended anyway).
fn complete(batch: Completions) {
    for (done, result) in batch {
        let _ = done.send(result);
    }
}

/// One event in a stream entry's `e` field: `[session, origin, seq, at, body, accepted_us]`.
#[derive(Serialize)]
struct WireOut<'a>(&'a str, Origin, u64, i64, &'a EventBody, i64);

impl<'a> From<&'a Delivery> for WireOut<'a> {
    fn from(d: &'a Delivery) -> WireOut<'a> {
        WireOut(
            &d.session_id,
            d.event.origin,
            d.event.seq,
            d.event.at.0,
            &d.event.body,
            d.accepted_us,
        )
    }
}

#[derive(Deserialize)]
struct WireIn(String, Origin, u64, i64, EventBody, i64);

impl From<WireIn> for Delivery {
    fn from(WireIn(session_id, origin, seq, at, body, accepted_us): WireIn) -> Delivery {
        Delivery {
            session_id,
            event: Event {
                origin,
                seq,
                at: Millis(at),
                body,
            },
            accepted_us,
        }
    }
}

impl RedisBus {
    /// Connects and makes sure every partition stream has its consumer group, and starts the
    /// backlog watcher that turns on backpressure over `max_backlog` unacknowledged entries.
    pub async fn new(
        mut conn: RedisConn,
        partitions: usize,
        max_backlog: u64,
    ) -> RedisResult<RedisBus> {
        for p in 0..partitions.max(1) {
            let created: RedisResult<()> = conn
                .query(
                    redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(conn.stream_key(p))
                        .arg(GROUP)
                        .arg("0")
                        .arg("MKSTREAM"),
                )
                .await;
            if let Err(e) = created
                && e.code() != Some("BUSYGROUP")
            {
                return Err(e);
            }
        }
        let saturated: Arc<Vec<AtomicBool>> = Arc::new(
            (0..partitions.max(1))
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        tokio::spawn(watch_backlog(
            conn.clone(),
            Arc::downgrade(&saturated),
            max_backlog,
        ));
        let lanes = (0..partitions.max(1))
            .map(|p| {
                let (tx, rx) = mpsc::channel(LANE_QUEUE);
                tokio::spawn(lane(conn.clone(), p, rx));
                tx
            })
            .collect();
        Ok(RedisBus {
            partitions: partitions.max(1),
            saturated,
            lanes: Arc::new(lanes),
        })
    }

    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// Appends one event to its session's partition stream and returns once Redis holds it,
    /// unless the partition's backlog is over its bound (`Saturated`: backpressure).
    pub async fn publish(&self, d: Delivery) -> Result<(), BusError> {
        let p = partition_of(&d.session_id, self.partitions);
        if self.saturated[p].load(Ordering::Relaxed) {
            return Err(BusError::Saturated);
        }
        let (done, appended) = oneshot::channel();
        let append = Append {
            delivery: d,
            done,
            mailbox: local_mailbox(),
        };
        self.lanes[p]
            .send(append)
            .await
            .map_err(|_| BusError::Closed)?;
        match appended.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BusError::Unavailable(e)),
            Err(_) => Err(BusError::Closed),
        }
    }
}

/// A partition's lane: appends what is queued as one entry per `XADD`, one `XADD` at a time,
/// so the stream holds events in the order they were queued; runs until the bus is dropped.
async fn lane(mut conn: RedisConn, p: usize, mut rx: mpsc::Receiver<Append>) {
    let key = conn.stream_key(p);
    let mut batch = Vec::with_capacity(MAX_ENTRY_EVENTS);
    while rx.recv_many(&mut batch, MAX_ENTRY_EVENTS).await > 0 {
        let result = xadd(&mut conn, &key, &batch)
            .await
            .map_err(|e| e.to_string());
        // By mailbox, in the order queued; publishers without one are told at once.
        let mut by_thread: Vec<(Mailbox, Completions)> = Vec::new();
        let mut direct = Completions::new();
        for a in batch.drain(..) {
            let item = (a.done, result.clone());
            match a.mailbox {
                Some(mb) => match by_thread.iter_mut().find(|(m, _)| m.same_channel(&mb)) {
                    Some((_, items)) => items.push(item),
                    None => by_thread.push((mb, vec![item])),
                },
                None => direct.push(item),
            }
        }
        complete(direct);
        for (mb, items) in by_thread {
            // A mailbox whose runtime is gone took that runtime's publishers with it: telling
            // them here is a no-op, but it costs nothing to be sure.
            if let Err(mpsc::error::SendError(items)) = mb.send(items) {
                complete(items);
            }
        }
    }
}

/// Appends `batch` as one stream entry.
async fn xadd(conn: &mut RedisConn, key: &str, batch: &[Append]) -> RedisResult<()> {
    let events: Vec<WireOut<'_>> = batch.iter().map(|a| WireOut::from(&a.delivery)).collect();
    let body = serde_json::to_string(&events).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Client, "event encoding", e.to_string()))
    })?;
    conn.query::<String>(redis::cmd("XADD").arg(key).arg("*").arg("e").arg(body))
        .await?;
    Ok(())
}

/// A partition's backlog: entries not yet delivered to the group (`lag`) plus entries
/// delivered but not acknowledged (`pending`). Where Redis cannot tell the lag, the stream's
/// length stands in (it only over-counts: trimming keeps at most the acknowledged tail).
async fn backlog(conn: &mut RedisConn, p: usize) -> RedisResult<u64> {
    let key = conn.stream_key(p);
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = conn
        .query(redis::cmd("XINFO").arg("GROUPS").arg(&key))
        .await?;
    let num = |v: Option<&redis::Value>| match v {
        Some(redis::Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    for g in &groups {
        let is_ours =
            matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == GROUP.as_bytes());
        if !is_ours {
            continue;
        }
        let pending = num(g.get("pending")).unwrap_or(0);
        return match num(g.get("lag")) {
            Some(lag) => Ok(lag + pending),
            None => conn.query(redis::cmd("XLEN").arg(&key)).await,
        };
    }
    Ok(0)
}

/// Refreshes each partition's saturated flag every `BACKLOG_POLL` until the bus is dropped.
/// Redis being unreachable is not saturation: publishing then fails by itself.
async fn watch_backlog(mut conn: RedisConn, flags: std::sync::Weak<Vec<AtomicBool>>, max: u64) {
    loop {
        tokio::time::sleep(BACKLOG_POLL).await;
        let Some(flags) = flags.upgrade() else {
            return;
        };
        for (p, flag) in flags.iter().enumerate() {
            match backlog(&mut conn, p).await {
                Ok(n) => {
                    let over = n >= max;
                    if flag.swap(over, Ordering::Relaxed) != over {
                        if over {
                            tracing::warn!(
                                partition = p,
                                backlog = n,
                                "Workers are not keeping up: refusing new events on this partition."
                            );
                        } else {
                            tracing::info!(
                                partition = p,
                                backlog = n,
                                "The partition's backlog is back under its bound."
                            );
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(partition = p, error = %e, "Failed to read a partition's backlog.")
                }
            }
        }
    }
}

/// Decodes one stream entry into its events, in order; empty for an entry that holds no
/// event (logged, then acknowledged like the others). An event that does not decode is
/// skipped alone, not with the rest of its entry.
pub fn decode(entry: &StreamId) -> Vec<Delivery> {
    let Some(events) = entry.get::<String>("e") else {
        // One event per entry, as gateways before batched entries wrote them.
        return decode_single(entry).into_iter().collect();
    };
    if let Ok(events) = serde_json::from_str::<Vec<WireIn>>(&events) {
        return events.into_iter().map(Delivery::from).collect();
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(&events) else {
        return Vec::new();
    };
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<WireIn>(v) {
            Ok(w) => Some(Delivery::from(w)),
            Err(e) => {
                tracing::warn!(id = %entry.id, error = %e, "Skipping an event that does not decode.");
                None
            }
        })
        .collect()
}

/// An entry with one event in fields `s o q a b t`.
fn decode_single(entry: &StreamId) -> Option<Delivery> {
    let session_id: String = entry.get("s")?;
    let origin = match entry.get::<String>("o")?.as_str() {
        "server" => Origin::Server,
        "client" => Origin::Client,
        _ => return None,
    };
    let seq: u64 = entry.get("q")?;
    let at: i64 = entry.get("a")?;
    let body: String = entry.get("b")?;
    let body = serde_json::from_str(&body).ok()?;
    // `t` is absent in entries written before the field existed.
    let accepted_us = entry.get("t").unwrap_or(0);
    Some(WireIn(session_id, origin, seq, at, body, accepted_us).into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect::<HashMap<_, _>>(),
            ..StreamId::default()
        }
    }

    fn delivery(session: &str, origin: Origin, seq: u64, body: EventBody) -> Delivery {
        Delivery {
            session_id: session.into(),
            event: Event {
                origin,
                seq,
                at: Millis(1_700_000_000_000 + i64::try_from(seq).unwrap_or(0)),
                body,
            },
            accepted_us: 42,
        }
    }

    fn encode(ds: &[Delivery]) -> String {
        let wire: Vec<WireOut<'_>> = ds.iter().map(WireOut::from).collect();
        serde_json::to_string(&wire).unwrap_or_default()
    }

    #[test]
    fn a_batched_entry_decodes_to_its_events_in_order() {
        let ds = vec![
            delivery("s1", Origin::Server, 1, EventBody::SessionStarted),
            delivery(
                "s2",
                Origin::Server,
                7,
                EventBody::ChallengeExpired { nonce: "n".into() },
            ),
            delivery("s1", Origin::Server, 2, EventBody::SessionStarted),
        ];
        let got = decode(&entry(&[("e", &encode(&ds))]));
        assert_eq!(got.len(), 3);
        for (g, d) in got.iter().zip(&ds) {
            assert_eq!(g.session_id, d.session_id);
            assert_eq!(g.event, d.event);
            assert_eq!(g.accepted_us, d.accepted_us);
        }
    }

    #[test]
    fn an_event_that_does_not_decode_is_skipped_alone() {
        let ds = vec![
            delivery("s1", Origin::Server, 1, EventBody::SessionStarted),
            delivery("s1", Origin::Server, 2, EventBody::SessionStarted),
        ];
        let mut wire: Vec<serde_json::Value> =
            serde_json::from_str(&encode(&ds)).unwrap_or_default();
        wire.insert(
            1,
            serde_json::json!(["s1", "server", 9, 0, {"type": "no_such_type"}, 0]),
        );
        let got = decode(&entry(&[(
            "e",
            &serde_json::to_string(&wire).unwrap_or_default(),
        )]));
        let seqs: Vec<u64> = got.iter().map(|d| d.event.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert!(decode(&entry(&[("e", "not json")])).is_empty());
    }

    #[test]
    fn a_single_event_entry_of_an_older_gateway_still_decodes() {
        let body = serde_json::to_string(&EventBody::SessionStarted).unwrap_or_default();
        let got = decode(&entry(&[
            ("s", "s9"),
            ("o", "server"),
            ("q", "3"),
            ("a", "5"),
            ("b", &body),
            ("t", "11"),
        ]));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].session_id, "s9");
        assert_eq!(got[0].event.seq, 3);
        assert_eq!(got[0].event.at, Millis(5));
        assert_eq!(got[0].accepted_us, 11);
        assert!(decode(&entry(&[("s", "s9")])).is_empty());
    }
}
