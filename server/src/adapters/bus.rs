//! The in-process bus (the embedded default): events partitioned by session into P bounded
//! channels, one consumer task per partition. A full channel makes `publish` wait, which is
//! the gateway's backpressure. Invariant: every event of a session goes to the same
//! partition, so one worker folds a session's events in arrival order.

use tokio::sync::mpsc;

use crate::domain::Event;

/// One event on its way to a worker.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub session_id: String,
    pub event: Event,
    /// When the gateway accepted the event: wall-clock µs since the Unix epoch, 0 when
    /// unknown. Only for the latency metrics (`proctor_event_latency_seconds`); credit comes
    /// from `event.at`, the server clock the worker folds.
    pub accepted_us: i64,
}

impl Delivery {
    /// An event accepted now.
    pub fn new(session_id: String, event: Event) -> Delivery {
        Delivery {
            session_id,
            event,
            accepted_us: wall_us(),
        }
    }
}

/// Wall-clock µs since the Unix epoch (0 if the clock is before it).
pub fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is shut down")]
    Closed,
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// Workers are not keeping up (store outage, no live worker): the partition's backlog
    /// is over its bound. Backpressure; the event was not accepted.
    #[error("the bus is saturated: workers are not keeping up")]
    Saturated,
}

/// The bus a gateway publishes to: in-process channels (embedded default) or Redis Streams.
#[derive(Debug, Clone)]
pub enum Bus {
    Memory(MemoryBus),
    Redis(crate::adapters::redis::bus::RedisBus),
}

impl Bus {
    /// Publishes one event; returns once the bus holds it (the gateway's acknowledgement point).
    pub async fn publish(&self, d: Delivery) -> Result<(), BusError> {
        match self {
            Bus::Memory(m) => m.publish(d).await,
            Bus::Redis(r) => r.publish(d).await,
        }
    }
}

/// The partition a session belongs to: FNV-1a of its id, stable across processes and builds.
pub fn partition_of(session_id: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // The modulo keeps the value below `partitions`, which is a usize.
    #[allow(clippy::cast_possible_truncation)]
    let p = (h % partitions.max(1) as u64) as usize;
    p
}

/// Producer side of the in-process bus.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    partitions: Vec<mpsc::Sender<Delivery>>,
}

impl MemoryBus {
    /// A bus of `partitions` channels holding up to `capacity` events each, and its consumers.
    pub fn new(partitions: usize, capacity: usize) -> (MemoryBus, Vec<mpsc::Receiver<Delivery>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..partitions.max(1))
            .map(|_| mpsc::channel(capacity.max(1)))
            .unzip();
        (MemoryBus { partitions: tx }, rx)
    }

    /// Publishes one event; waits while its partition is full.
    pub async fn publish(&self, d: Delivery) -> Result<(), BusError> {
        let p = partition_of(&d.session_id, self.partitions.len());
        self.partitions[p]
            .send(d)
            .await
            .map_err(|_| BusError::Closed)
    }

    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Events waiting in each partition's channel (the in-process bus's lag).
    pub fn depths(&self) -> Vec<usize> {
        self.partitions
            .iter()
            .map(|tx| tx.max_capacity() - tx.capacity())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_in_range() {
        for n in 1..9 {
            for s in ["a", "b", "0190c8e2-session", ""] {
                let p = partition_of(s, n);
                assert!(p < n);
                assert_eq!(p, partition_of(s, n));
            }
        }
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (published test vector).
        assert_eq!(
            partition_of("a", 4),
            (0xaf63_dc4c_8601_ec8c_u64 % 4) as usize
        );
    }
}
