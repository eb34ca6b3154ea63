//! The Redis Streams bus. Gateways append accepted events to their partition's stream
//! (`proctor:{pN}:events`): one lane task per partition and gateway process writes everything
//! queued for that partition while its previous `XADD` was in flight as one entry (at most
//! `MAX_ENTRY_EVENTS` events, in the order they were accepted), so under load one `XADD`,
//! one read and one `XACK` carry many events, and an idle gateway still appends each event at
//! once. One worker at a time owns a partition (a `SET NX PX` lease it renews) and reads it
//! through the consumer group `workers`. Invariants: an entry is acknowledged (`XACK`) only
//! after the events it holds are stored; a new owner first claims (`XAUTOCLAIM`) every entry
//! its predecessor read but did not acknowledge; the stream is trimmed only below the oldest
//! entry that is still unacknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::RedisResult;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{GROUP, RedisConn};
use crate::adapters::bus::{BusError, Delivery, partition_of, wall_us};
use crate::domain::{Event, EventBody, Millis, Origin};

/// How long a partition lease lasts without renewal: a dead worker's partitions are taken
/// over within this time (plus `OWNER_RETRY`). Renewed every quarter of it, also while the
/// worker is too busy to take the next batch (`keep_lease`); a process that stops longer
/// (killed, paused) loses the partition, and the fenced verdict writes keep a stale owner
/// from counting anything twice.
pub const OWNER_TTL: Duration = Duration::from_secs(3);
/// How often a worker below its fair share tries to take a partition it does not own.
const OWNER_RETRY: Duration = Duration::from_millis(250);
/// The longest blocking read. It must stay well below the client's response timeout (redis-rs
/// gives up on a reply after 500 ms by default): an entry Redis hands to a read the client has
/// already given up on is pending for this consumer but never seen, and a `>` read skips it.
const MAX_BLOCK: Duration = Duration::from_millis(200);

/// Acknowledged entries between two trims of a stream (`XTRIM MINID`).
const TRIM_EVERY: usize = 4096;

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

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
        let append = Append { delivery: d, done };
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
        for a in batch.drain(..) {
            // A publisher that gave up waiting is no error: its event may be appended anyway.
            let _ = a.done.send(result.clone());
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

/// How many partitions this process should own: its fair share of the live workers.
#[derive(Debug, Default)]
pub struct Share {
    pub fair: AtomicUsize,
    pub owned: AtomicUsize,
}

/// What one read of a partition produced.
#[derive(Debug)]
pub enum Batch {
    /// This worker does not own the partition (another does, or its share is full).
    NotOwner,
    /// This worker just became the owner: rebuild state from the store before reading.
    Acquired,
    /// This worker lost or gave up the partition: drop its in-memory state.
    Lost,
    /// Entries to process: each stream id (for the acknowledgement) with the events the
    /// entry holds (none: an entry that is not an event; it is acknowledged and skipped).
    Events(Vec<(String, Vec<Delivery>)>),
}

/// The consumer side of one partition.
#[derive(Debug)]
pub struct RedisPartition {
    conn: RedisConn,
    partition: usize,
    consumer: String,
    owner: bool,
    claim_cursor: Option<String>,
    last_renew: Instant,
    share: Arc<Share>,
    acks_since_trim: usize,
    last_acked: Option<String>,
    /// Until when (wall-clock µs) the lease surely holds: the send time of the last
    /// successful take or renewal plus the TTL, less a margin; 0 when not the owner. The
    /// worker appends server events only before it (a process paused past its lease must not
    /// act as the owner when it wakes).
    lease_until_us: Arc<AtomicI64>,
    /// The last read was of new entries and brought fewer than it asked for: when it was
    /// sent, the stream held nothing more for this partition (`drained`).
    drained: bool,
}

/// How much sooner than the TTL a lease is treated as gone.
const LEASE_MARGIN: Duration = Duration::from_millis(500);

impl RedisPartition {
    pub fn new(
        conn: RedisConn,
        partition: usize,
        consumer: String,
        share: Arc<Share>,
    ) -> RedisPartition {
        RedisPartition {
            conn,
            partition,
            consumer,
            owner: false,
            claim_cursor: None,
            last_renew: Instant::now(),
            share,
            acks_since_trim: 0,
            last_acked: None,
            lease_until_us: Arc::new(AtomicI64::new(0)),
            drained: false,
        }
    }

    /// Whether the last read emptied the stream: every entry added before it was sent has
    /// been delivered to this reader (a claim of a previous owner's entries, a read that
    /// brought as many entries as it asked for, or a failed one does not say so). The worker
    /// judges silence (a session's lease, a challenge's deadline) only up to such a read.
    pub fn drained(&self) -> bool {
        self.drained
    }

    pub fn partition(&self) -> usize {
        self.partition
    }

    /// The lease deadline the worker checks (wall-clock µs; 0: not owned).
    pub fn lease_until(&self) -> Arc<AtomicI64> {
        self.lease_until_us.clone()
    }

    fn lease_from(&self, sent_us: i64) {
        #[allow(clippy::cast_possible_truncation)]
        let valid = (OWNER_TTL - LEASE_MARGIN).as_micros() as i64;
        self.lease_until_us.store(sent_us + valid, Ordering::SeqCst);
    }

    /// Reads the next batch, taking or keeping ownership of the partition as needed.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> RedisResult<Batch> {
        self.drained = false;
        if !self.owner {
            if self.share.owned.load(Ordering::SeqCst)
                >= self.share.fair.load(Ordering::SeqCst).max(1)
            {
                tokio::time::sleep(wait.min(OWNER_RETRY)).await;
                return Ok(Batch::NotOwner);
            }
            let owner_key = self.conn.owner_key(self.partition);
            let ttl_ms = OWNER_TTL.as_millis().to_string();
            let sent = wall_us();
            let got: Option<String> = self
                .conn
                .query(
                    redis::cmd("SET")
                        .arg(&owner_key)
                        .arg(&self.consumer)
                        .arg("NX")
                        .arg("PX")
                        .arg(&ttl_ms),
                )
                .await?;
            if got.is_none() {
                tokio::time::sleep(wait.min(OWNER_RETRY)).await;
                return Ok(Batch::NotOwner);
            }
            self.owner = true;
            self.lease_from(sent);
            let owned = self.share.owned.fetch_add(1, Ordering::SeqCst) + 1;
            // At once, not at the next lag sample: failover is read off this gauge.
            crate::metrics::metrics()
                .partitions_owned
                .set(i64::try_from(owned).unwrap_or(i64::MAX));
            self.claim_cursor = Some("0-0".into());
            self.last_renew = Instant::now();
            return Ok(Batch::Acquired);
        }
        if self.last_renew.elapsed() >= OWNER_TTL / 4 {
            if !self.renew().await? {
                return Ok(Batch::Lost);
            }
            // Give a partition back when this process holds more than its share.
            if self.share.owned.load(Ordering::SeqCst)
                > self.share.fair.load(Ordering::SeqCst).max(1)
            {
                self.release().await;
                return Ok(Batch::Lost);
            }
        }
        match self.read(max, wait).await {
            Ok(batch) => Ok(batch),
            Err(e) => {
                // Redis may have delivered entries to this consumer whose reply never reached
                // us (a lost connection, a cancelled read): they are pending for us now and a
                // `>` read skips them. Claim every pending entry again before reading on.
                self.recover_pending();
                Err(e)
            }
        }
    }

    /// Renews the lease now. `Ok(false)`: it is gone (it lapsed, and maybe another worker
    /// holds it); this reader is no longer the owner.
    async fn renew(&mut self) -> RedisResult<bool> {
        let owner_key = self.conn.owner_key(self.partition);
        let ttl_ms = OWNER_TTL.as_millis().to_string();
        let sent = wall_us();
        let renewed: i64 = self
            .conn
            .script(
                &redis::Script::new(RENEW),
                &[&owner_key],
                &[&self.consumer, &ttl_ms],
            )
            .await?;
        if renewed == 0 {
            self.lose();
            return Ok(false);
        }
        self.last_renew = Instant::now();
        self.lease_from(sent);
        Ok(true)
    }

    /// Keeps the lease while the reader waits for its worker to take the next batch (the
    /// worker is loading sessions, or its store is slow): renews it when a quarter of the TTL
    /// has passed, as a read does. A busy worker that lost its partitions would rebuild every
    /// session from the store when it took them back, which is more work on a worker already
    /// behind. `Ok(true)` while this reader owns the partition.
    pub async fn keep_lease(&mut self) -> RedisResult<bool> {
        if !self.owner {
            return Ok(false);
        }
        if self.last_renew.elapsed() < OWNER_TTL / 4 {
            return Ok(true);
        }
        self.renew().await
    }

    /// After a read whose reply may have been lost (an error, or a read cancelled by its
    /// caller), the next read first claims every pending entry of the partition, this
    /// consumer's own included.
    pub fn recover_pending(&mut self) {
        if self.owner {
            self.claim_cursor = Some("0-0".into());
        }
    }

    async fn read(&mut self, max: usize, wait: Duration) -> RedisResult<Batch> {
        let key = self.conn.stream_key(self.partition);
        // First, everything a previous owner read but never acknowledged.
        if let Some(cursor) = self.claim_cursor.take() {
            let reply: StreamAutoClaimReply = self
                .conn
                .query(
                    redis::cmd("XAUTOCLAIM")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(&self.consumer)
                        .arg(0)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(max),
                )
                .await?;
            if reply.next_stream_id != "0-0" {
                self.claim_cursor = Some(reply.next_stream_id.clone());
            }
            if !reply.claimed.is_empty() {
                crate::metrics::metrics()
                    .reclaimed
                    .inc_by(reply.claimed.len() as u64);
                tracing::info!(
                    partition = self.partition,
                    claimed = reply.claimed.len(),
                    "Reclaimed unacknowledged events of a previous owner."
                );
                return Ok(Batch::Events(entries(reply.claimed)));
            }
        }
        let reply: Option<StreamReadReply> =
            self.conn.query(&self.read_new(&key, max, wait)).await?;
        Ok(self.read_batch(reply, max))
    }

    /// The entries of a read of new entries of at most `max`; notes whether it drained the
    /// stream.
    fn read_batch(&mut self, reply: Option<StreamReadReply>, max: usize) -> Batch {
        let batch = read_batch(reply);
        self.drained = matches!(&batch, Batch::Events(e) if e.len() < max);
        batch
    }

    /// The read of entries never delivered to the group, blocking up to `wait`.
    fn read_new(&self, key: &str, max: usize, wait: Duration) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(u64::try_from(wait.min(MAX_BLOCK).as_millis()).unwrap_or(100))
            .arg("STREAMS")
            .arg(key)
            .arg(">");
        cmd
    }

    /// Acknowledges `acked`, then reads as `next_batch` does. Where the read is a plain
    /// `XREADGROUP` (the partition owned, its lease fresh, nothing to claim, no trim due), the
    /// two go out as one pipeline: one round trip, where acknowledging first cost another on
    /// the way of every read. Otherwise the acknowledgement is sent first, as `ack` does. An
    /// error leaves it open whether `acked` was acknowledged (acknowledging again is harmless)
    /// and makes the next read claim this consumer's pending entries first, as a failed read
    /// does.
    pub async fn ack_and_next_batch(
        &mut self,
        acked: &[String],
        max: usize,
        wait: Duration,
    ) -> RedisResult<Batch> {
        if acked.is_empty() {
            return self.next_batch(max, wait).await;
        }
        self.drained = false;
        let plain = self.owner
            && self.claim_cursor.is_none()
            && self.last_renew.elapsed() < OWNER_TTL / 4
            && self.acks_since_trim + acked.len() < TRIM_EVERY;
        if !plain {
            self.ack(acked).await?;
            return self.next_batch(max, wait).await;
        }
        let key = self.conn.stream_key(self.partition);
        let mut pipe = redis::pipe();
        pipe.add_command(xack(&key, acked))
            .ignore()
            .add_command(self.read_new(&key, max, wait));
        match self
            .conn
            .pipeline::<(Option<StreamReadReply>,)>(&pipe)
            .await
        {
            Ok((reply,)) => {
                self.last_acked = acked.last().cloned();
                self.acks_since_trim += acked.len();
                Ok(self.read_batch(reply, max))
            }
            Err(e) => {
                self.recover_pending();
                Err(e)
            }
        }
    }

    /// Acknowledges processed entries, and now and then trims what every reader is done with.
    pub async fn ack(&mut self, ids: &[String]) -> RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.conn.stream_key(self.partition);
        self.conn.query::<i64>(&xack(&key, ids)).await?;
        self.last_acked = ids.last().cloned();
        self.acks_since_trim += ids.len();
        if self.acks_since_trim >= TRIM_EVERY && self.claim_cursor.is_none() {
            self.acks_since_trim = 0;
            // Entries are read and acknowledged in id order by the single owner, and the
            // previous owner's leftovers were claimed first: everything below the last
            // acknowledged id is done.
            if let Some(min) = &self.last_acked {
                self.conn
                    .query::<i64>(redis::cmd("XTRIM").arg(&key).arg("MINID").arg(min))
                    .await?;
            }
        }
        Ok(())
    }

    fn lose(&mut self) {
        self.lease_until_us.store(0, Ordering::SeqCst);
        if self.owner {
            self.owner = false;
            let owned = self
                .share
                .owned
                .fetch_sub(1, Ordering::SeqCst)
                .saturating_sub(1);
            crate::metrics::metrics()
                .partitions_owned
                .set(i64::try_from(owned).unwrap_or(i64::MAX));
        }
    }

    /// Gives the partition back (graceful shutdown or rebalancing).
    pub async fn release(&mut self) {
        if !self.owner {
            return;
        }
        let owner_key = self.conn.owner_key(self.partition);
        let _: RedisResult<i64> = self
            .conn
            .script(
                &redis::Script::new(RELEASE),
                &[&owner_key],
                &[&self.consumer],
            )
            .await;
        self.lose();
    }
}

/// Acknowledges stream entries of the group.
fn xack(key: &str, ids: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("XACK");
    cmd.arg(key).arg(GROUP);
    for id in ids {
        cmd.arg(id);
    }
    cmd
}

/// The entries of an `XREADGROUP` reply (none: the read timed out).
fn read_batch(reply: Option<StreamReadReply>) -> Batch {
    let ids = reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default();
    Batch::Events(entries(ids))
}

fn entries(ids: Vec<StreamId>) -> Vec<(String, Vec<Delivery>)> {
    ids.into_iter()
        .map(|e| {
            let d = decode(&e);
            if d.is_empty() {
                tracing::warn!(id = %e.id, "Skipping a stream entry that is not an event.");
            }
            (e.id, d)
        })
        .collect()
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
