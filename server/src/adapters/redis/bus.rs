//! The Redis Streams bus. Gateways `XADD` each accepted event to its partition's stream
//! (`proctor:{pN}:events`); one worker at a time owns a partition (a `SET NX PX` lease it
//! renews) and reads it through the consumer group `workers`. Invariants: an entry is
//! acknowledged (`XACK`) only after the events and verdicts it led to are stored; a new owner
//! first claims (`XAUTOCLAIM`) every entry its predecessor read but did not acknowledge; the
//! stream is trimmed only below the oldest entry that is still unacknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::RedisResult;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::{GROUP, RedisConn};
use crate::adapters::bus::{Delivery, partition_of};
use crate::domain::{Event, Millis, Origin};

/// How long a partition lease lasts without renewal: a dead worker's partitions are taken
/// over within this time.
pub const OWNER_TTL: Duration = Duration::from_secs(4);

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// The producer side.
#[derive(Debug, Clone)]
pub struct RedisBus {
    conn: RedisConn,
    partitions: usize,
}

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Server => "server",
        Origin::Client => "client",
    }
}

impl RedisBus {
    /// Connects and makes sure every partition stream has its consumer group.
    pub async fn new(mut conn: RedisConn, partitions: usize) -> RedisResult<RedisBus> {
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
        Ok(RedisBus {
            conn,
            partitions: partitions.max(1),
        })
    }

    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// Appends one event to its session's partition stream.
    pub async fn publish(&self, d: &Delivery) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let body = serde_json::to_string(&d.event.body).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "event encoding", e.to_string()))
        })?;
        let key = conn.stream_key(partition_of(&d.session_id, self.partitions));
        conn.query::<String>(
            redis::cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("s")
                .arg(&d.session_id)
                .arg("o")
                .arg(origin_str(d.event.origin))
                .arg("q")
                .arg(d.event.seq)
                .arg("a")
                .arg(d.event.at.0)
                .arg("b")
                .arg(body),
        )
        .await?;
        Ok(())
    }
}

/// Decodes one stream entry; `None` for an entry that is not an event (logged and acked).
pub fn decode(entry: &StreamId) -> Option<Delivery> {
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
    Some(Delivery {
        session_id,
        event: Event {
            origin,
            seq,
            at: Millis(at),
            body,
        },
    })
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
    /// Entries to process, with their stream ids for the acknowledgement (`None`: an entry
    /// that is not an event; it is acknowledged and skipped).
    Events(Vec<(String, Option<Delivery>)>),
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
}

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
        }
    }

    pub fn partition(&self) -> usize {
        self.partition
    }

    /// Reads the next batch, taking or keeping ownership of the partition as needed.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> RedisResult<Batch> {
        let owner_key = self.conn.owner_key(self.partition);
        let ttl_ms = OWNER_TTL.as_millis().to_string();
        if !self.owner {
            if self.share.owned.load(Ordering::SeqCst)
                >= self.share.fair.load(Ordering::SeqCst).max(1)
            {
                tokio::time::sleep(wait).await;
                return Ok(Batch::NotOwner);
            }
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
                tokio::time::sleep(wait).await;
                return Ok(Batch::NotOwner);
            }
            self.owner = true;
            self.share.owned.fetch_add(1, Ordering::SeqCst);
            self.claim_cursor = Some("0-0".into());
            self.last_renew = Instant::now();
            return Ok(Batch::Acquired);
        }
        if self.last_renew.elapsed() >= OWNER_TTL / 4 {
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
                return Ok(Batch::Lost);
            }
            self.last_renew = Instant::now();
            // Give a partition back when this process holds more than its share.
            if self.share.owned.load(Ordering::SeqCst)
                > self.share.fair.load(Ordering::SeqCst).max(1)
            {
                self.release().await;
                return Ok(Batch::Lost);
            }
        }
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
                tracing::info!(
                    partition = self.partition,
                    claimed = reply.claimed.len(),
                    "Reclaimed unacknowledged events of a previous owner."
                );
                return Ok(Batch::Events(entries(reply.claimed)));
            }
        }
        let reply: Option<StreamReadReply> = self
            .conn
            .query(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(max)
                    .arg("BLOCK")
                    .arg(u64::try_from(wait.as_millis()).unwrap_or(100))
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(">"),
            )
            .await?;
        let ids = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        Ok(Batch::Events(entries(ids)))
    }

    /// Acknowledges processed entries, and now and then trims what every reader is done with.
    pub async fn ack(&mut self, ids: &[String]) -> RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.conn.stream_key(self.partition);
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&key).arg(GROUP);
        for id in ids {
            cmd.arg(id);
        }
        self.conn.query::<i64>(&cmd).await?;
        self.last_acked = ids.last().cloned();
        self.acks_since_trim += ids.len();
        if self.acks_since_trim >= 4096 && self.claim_cursor.is_none() {
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
        if self.owner {
            self.owner = false;
            self.share.owned.fetch_sub(1, Ordering::SeqCst);
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

fn entries(ids: Vec<StreamId>) -> Vec<(String, Option<Delivery>)> {
    ids.into_iter()
        .map(|e| {
            let d = decode(&e);
            if d.is_none() {
                tracing::warn!(id = %e.id, "Skipping a stream entry that is not an event.");
            }
            (e.id, d)
        })
        .collect()
}
