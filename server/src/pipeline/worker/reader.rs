//! The worker's feed: the in-process partition channel, or a Redis partition read (and
//! acknowledged) by its own task so that a read never waits on a store write.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::adapters::bus::Delivery;
use crate::adapters::redis::partition::{Batch, OWNER_TTL, RedisPartition};
use crate::domain::Millis;
use crate::ports::Clock;

/// What the worker's feed hands it next.
#[derive(Debug)]
pub(super) enum Read {
    /// Became the partition's owner: rebuild the state from the store.
    Acquired,
    /// Lost or gave up the partition: drop the in-memory state.
    Lost,
    /// Events, with the stream ids to acknowledge once they are stored (none in memory), and
    /// the server time as of which the feed has held nothing else, where the read said so.
    Events(Vec<String>, Vec<Delivery>, Option<Millis>),
    /// The feed held nothing new as of this server time (a read that came back empty).
    CaughtUp(Millis),
}

/// The worker's side of its source. A Redis partition is read by its own task, which also
/// acknowledges what the worker reports stored, so a read never waits on a store write.
#[derive(Debug)]
pub(super) enum Feed {
    Memory(mpsc::Receiver<Delivery>),
    Redis(mpsc::Receiver<Read>),
}

impl Feed {
    /// Whether nothing accepted is waiting in the feed now: true of an empty in-process
    /// channel (a gateway's send is the acceptance). A Redis reader says so in its reads.
    pub(super) fn is_caught_up(&self) -> bool {
        match self {
            Feed::Memory(rx) => rx.is_empty(),
            Feed::Redis(_) => false,
        }
    }

    /// The next read; `None` when the source is finished. Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<Read> {
        match self {
            Feed::Memory(rx) => {
                let first = rx.recv().await?;
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) => break,
                    }
                }
                Some(Read::Events(Vec::new(), batch, None))
            }
            Feed::Redis(rx) => rx.recv().await,
        }
    }
}

pub(super) const MAX_BATCH: usize = 2048;

/// Stream entries per Redis read. An entry holds up to `MAX_ENTRY_EVENTS` (64) events, so a
/// read brings at most 16 384 events, the worker's bound on events ahead of the store.
const READ_ENTRIES: usize = 256;

/// The longest a Redis read blocks, so acknowledgements wait at most this long.
const READ_WAIT: Duration = Duration::from_millis(100);

/// Reads a Redis partition for its worker: ownership changes and batches, in order, at most
/// two batches ahead; acknowledges what the worker reports stored. On shutdown it reads
/// until the partition has nothing new, acknowledges what the worker then stores, and gives
/// the partition back.
pub(super) async fn read(
    mut part: RedisPartition,
    tx: mpsc::Sender<Read>,
    mut acks: mpsc::UnboundedReceiver<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
    period: Duration,
    clock: Arc<dyn Clock>,
) {
    let mut draining = false;
    // Entries reported stored and not yet acknowledged: kept until an acknowledgement went
    // through (acknowledging twice is harmless; forgetting one leaves it pending).
    let mut stored: Vec<String> = Vec::new();
    loop {
        // Everything reported stored since the last read, in one XACK (in order).
        while let Ok(more) = acks.try_recv() {
            stored.extend(more);
        }
        let sent = clock.now();
        let batch = if draining {
            ack(&mut part, &stored).await;
            stored.clear();
            part.next_batch(READ_ENTRIES, Duration::from_millis(50))
                .await
        } else {
            // The acknowledgement rides with the read (one round trip, not two).
            let b = tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    // The read in flight was dropped; what it was handed is pending, and
                    // `stored` is acknowledged while draining.
                    part.recover_pending();
                    draining = true;
                    continue;
                }
                b = part.ack_and_next_batch(&stored, READ_ENTRIES, period.min(READ_WAIT)) => b,
            };
            if b.is_ok() {
                stored.clear();
            }
            b
        };
        let read = match batch {
            Ok(Batch::NotOwner) | Ok(Batch::Lost) if draining => break,
            Ok(Batch::NotOwner) => continue,
            Ok(Batch::Acquired) => Read::Acquired,
            Ok(Batch::Lost) => Read::Lost,
            Ok(Batch::Events(entries)) => {
                let drained = part.drained().then_some(sent);
                if entries.is_empty() {
                    if draining {
                        break;
                    }
                    // Only news to a worker that has taken everything before: one whose
                    // channel is full hears it with a later read.
                    if let Some(at) = drained {
                        let _ = tx.try_send(Read::CaughtUp(at));
                    }
                    continue;
                }
                let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
                Read::Events(
                    ids,
                    entries.into_iter().flat_map(|(_, d)| d).collect(),
                    drained,
                )
            }
            Err(e) => {
                tracing::warn!(partition = part.partition(), error = %e, "Failed to read the partition stream; retrying.");
                if draining {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if hand_over(&mut part, &tx, read).await.is_err() {
            break;
        }
    }
    drop(tx);
    ack(&mut part, &stored).await;
    while let Some(ids) = acks.recv().await {
        ack(&mut part, &ids).await;
    }
    part.release().await;
}

/// How long a reader keeps its lease for a worker that takes nothing: longer than any load or
/// write on a working store takes, so a worker that is only behind keeps its partitions, while
/// one stuck on its store lets them go to a worker that may do better.
const KEEP_LEASE_FOR: Duration = Duration::from_secs(60);

/// Hands `read` to the worker, renewing the lease while the worker is too busy to take it
/// (its in-flight events at the bound, sessions loading, its store slow or away), up to
/// `KEEP_LEASE_FOR`. Without this the lease lapsed whenever the worker was busy for longer
/// than the TTL, and taking the partition back rebuilt every session from the log. If the
/// lease is lost meanwhile, the worker gets `Lost` instead of the entries: they are pending
/// for the next owner. `Err` when the worker is gone.
async fn hand_over(
    part: &mut RedisPartition,
    tx: &mpsc::Sender<Read>,
    mut read: Read,
) -> Result<(), ()> {
    let since = std::time::Instant::now();
    loop {
        let renew = tokio::time::sleep(OWNER_TTL / 4);
        tokio::select! {
            biased;
            permit = tx.reserve() => {
                permit.map_err(|_| ())?.send(read);
                return Ok(());
            }
            () = renew, if since.elapsed() < KEEP_LEASE_FOR && !matches!(read, Read::Lost) => {}
        }
        match part.keep_lease().await {
            Ok(true) => {}
            Ok(false) => read = Read::Lost,
            Err(e) => {
                tracing::warn!(partition = part.partition(), error = %e, "Failed to renew a partition lease; retrying.")
            }
        }
    }
}

/// Acknowledges stored entries while the reader stops, once: an entry left pending is
/// reclaimed by the partition's next owner, and the store skips what it already holds. (While
/// reading, the acknowledgement goes with the next read: `ack_and_next_batch`.)
async fn ack(part: &mut RedisPartition, ids: &[String]) {
    if let Err(e) = part.ack(ids).await {
        tracing::warn!(error = %e, "Failed to acknowledge stream entries; the next owner reclaims them.");
    }
}
