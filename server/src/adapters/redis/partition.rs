//! The consumer side of the Redis Streams bus: one worker at a time owns a partition (a
//! `SET NX PX` lease it renews every quarter of `OWNER_TTL`, also while its worker is busy)
//! and reads the partition's stream through the consumer group `workers`. Invariants: an
//! entry is acknowledged (`XACK`) only after the events it holds are stored; a new owner first
//! claims (`XAUTOCLAIM`) every entry its predecessor read but did not acknowledge; the stream
//! is trimmed only below the oldest entry that is still unacknowledged; the worker appends
//! server events only while `lease_until` says the lease surely holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::RedisResult;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::bus::decode;
use super::{GROUP, RedisConn};
use crate::adapters::bus::{Delivery, wall_us};

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
