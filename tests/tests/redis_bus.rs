//! The Redis Streams partition read on its own, against the real Redis: the reader
//! acknowledges what the worker stored together with its next read (one pipeline), and
//! exactly the entries not yet stored stay pending; a reader keeps its lease while its worker
//! is busy, and lets go of one another consumer took; publishers on current-thread runtimes
//! are answered through their thread's mailbox. Runs in the Redis pass of `scripts/test`
//! (`PROCTOR_TEST_BUS=redis`), where a missing Redis fails it.

use std::sync::Arc;
use std::time::Duration;

use proctor::adapters::bus::Delivery;
use proctor::adapters::redis::bus::{DEFAULT_MAX_BACKLOG, RedisBus};
use proctor::adapters::redis::partition::{Batch, OWNER_TTL, RedisPartition, Share};
use proctor::adapters::redis::{GROUP, RedisConn, RedisTarget};
use proctor::domain::{Event, EventBody, Millis, Origin};

fn heartbeat(seq: u64) -> Event {
    Event {
        origin: Origin::Server,
        seq,
        at: Millis(1_700_000_000_000),
        body: EventBody::SessionStarted,
    }
}

/// The stream ids of a read's entries.
fn ids(batch: Batch) -> Vec<String> {
    match batch {
        Batch::Events(entries) => entries.into_iter().map(|(id, _)| id).collect(),
        other @ (Batch::NotOwner | Batch::Acquired | Batch::Lost) => {
            panic!("expected entries, got {other:?}")
        }
    }
}

/// The ids pending for the group, oldest first.
async fn pending(conn: &mut RedisConn, key: &str) -> Vec<String> {
    let reply: Vec<(String, String, u64, u64)> = conn
        .query(
            redis::cmd("XPENDING")
                .arg(key)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(100),
        )
        .await
        .expect("XPENDING");
    reply.into_iter().map(|(id, ..)| id).collect()
}

/// A fresh namespace on the test Redis with one partition stream: its connection, the bus
/// on it, and a partition reader (consumer `reader-1`, fair share 1) that owns partition 0.
/// `None` (after saying why) outside the Redis pass.
async fn scratch() -> Option<(RedisConn, RedisBus, RedisPartition)> {
    let Some(url) = proctor_e2e::test_redis_url() else {
        eprintln!(
            "the partition read test runs in the Redis pass of scripts/test (PROCTOR_TEST_BUS=redis)"
        );
        return None;
    };
    let target = RedisTarget::parse(&url);
    let ns = format!("bus-test-{}", proctor_e2e::rand_digits());
    let conn = RedisConn::connect(&target, &ns).await.expect("Redis");
    let bus = RedisBus::new(conn.clone(), 1, DEFAULT_MAX_BACKLOG)
        .await
        .expect("streams");
    let share = Arc::new(Share::default());
    share.fair.store(1, std::sync::atomic::Ordering::SeqCst);
    let own = RedisConn::connect(&target, &ns).await.expect("Redis");
    let mut part = RedisPartition::new(own, 0, "reader-1".into(), share);
    assert!(matches!(
        part.next_batch(256, Duration::from_millis(100))
            .await
            .expect("take"),
        Batch::Acquired
    ));
    Some((conn, bus, part))
}

/// Deletes every key of the scratch namespace.
async fn drop_namespace(conn: &mut RedisConn) {
    let keys: Vec<String> = conn
        .query(redis::cmd("KEYS").arg(format!("{}:*", conn.ns())))
        .await
        .expect("KEYS");
    for k in keys {
        let _: i64 = conn.query(redis::cmd("DEL").arg(&k)).await.expect("DEL");
    }
}

#[tokio::test]
async fn entries_acknowledged_with_the_next_read_are_no_longer_pending() {
    let Some((mut conn, bus, mut part)) = scratch().await else {
        return;
    };
    let key = conn.stream_key(0);
    let publish = |seqs: std::ops::Range<u64>| {
        let bus = bus.clone();
        async move {
            // One at a time: each publish returns once its entry is in the stream.
            for seq in seqs {
                bus.publish(Delivery::new("s1".into(), heartbeat(seq)))
                    .await
                    .expect("publish");
            }
        }
    };
    let wait = Duration::from_millis(100);

    publish(1..4).await;
    let first = ids(part.next_batch(256, wait).await.expect("read"));
    assert_eq!(first.len(), 3, "one entry per event published alone");
    assert_eq!(pending(&mut conn, &key).await, first);

    // The worker stored the first read; the reader acknowledges it with its next read.
    publish(4..6).await;
    let second = ids(part
        .ack_and_next_batch(&first, 256, wait)
        .await
        .expect("acknowledge and read"));
    assert_eq!(second.len(), 2);
    assert_eq!(
        pending(&mut conn, &key).await,
        second,
        "the first read is acknowledged, the second is pending"
    );

    // Nothing new: the read times out, and the acknowledgement still went through.
    let none = ids(part
        .ack_and_next_batch(&second, 256, wait)
        .await
        .expect("acknowledge and read"));
    assert!(none.is_empty());
    assert!(pending(&mut conn, &key).await.is_empty());

    part.release().await;
    drop_namespace(&mut conn).await;
}

/// A reader whose worker is too busy to take the next batch keeps the partition's lease with
/// `keep_lease` (renewed once a quarter of the TTL has passed) past the TTL, and learns when
/// the lease went to another consumer.
#[tokio::test]
async fn a_lease_kept_while_the_worker_is_busy_outlives_the_ttl() {
    let Some((mut conn, _bus, mut part)) = scratch().await else {
        return;
    };
    let owner_key = conn.owner_key(0);
    let owner = |mut c: RedisConn, k: String| async move {
        c.query::<Option<String>>(redis::cmd("GET").arg(&k))
            .await
            .expect("GET")
    };
    // Twice the TTL without a read, the lease kept every 500 ms as the reader does.
    let until = tokio::time::Instant::now() + OWNER_TTL * 2;
    while tokio::time::Instant::now() < until {
        assert!(part.keep_lease().await.expect("keep"), "still the owner");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        owner(conn.clone(), owner_key.clone()).await.as_deref(),
        Some("reader-1"),
        "the lease outlived its TTL"
    );
    assert!(
        part.lease_until().load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the worker may still act as the owner"
    );

    // Another consumer holds it now: the next renewal finds out, and the reader lets go.
    let _: () = conn
        .query(redis::cmd("SET").arg(&owner_key).arg("reader-2"))
        .await
        .expect("SET");
    tokio::time::sleep(OWNER_TTL / 4).await;
    assert!(!part.keep_lease().await.expect("keep"), "the lease is gone");
    assert_eq!(
        part.lease_until().load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(
        owner(conn.clone(), owner_key.clone()).await.as_deref(),
        Some("reader-2"),
        "the other consumer's lease is left alone"
    );

    drop_namespace(&mut conn).await;
}

/// Publishers on current-thread runtimes (as learner sockets on actix threads) are answered
/// through their thread's mailbox: several threads at once, each with events in flight
/// together so that one `XADD` holds several threads' events, and a thread whose runtime was
/// dropped and replaced. Every publish is answered, and the stream holds every event, each
/// thread's in the order it published them.
#[tokio::test]
async fn publishers_on_current_thread_runtimes_are_all_answered_in_order() {
    let Some((mut conn, bus, mut part)) = scratch().await else {
        return;
    };
    const THREADS: u64 = 3;
    const PER_ROUND: u64 = 40;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                // Two runtimes, one after the other: the second finds the first's mailbox
                // gone with it.
                for round in 0..2u64 {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        let sid = format!("s{t}");
                        let sends = (0..PER_ROUND).map(|i| {
                            let bus = bus.clone();
                            let seq = round * PER_ROUND + i + 1;
                            let d = Delivery::new(sid.clone(), heartbeat(seq));
                            async move {
                                tokio::time::timeout(Duration::from_secs(10), bus.publish(d)).await
                            }
                        });
                        for (i, r) in futures_util::future::join_all(sends)
                            .await
                            .into_iter()
                            .enumerate()
                        {
                            r.unwrap_or_else(|_| {
                                panic!("thread {t} round {round}: publish {i} unanswered")
                            })
                            .expect("publish");
                        }
                    });
                }
            })
        })
        .collect();
    for t in threads {
        tokio::task::spawn_blocking(move || t.join().expect("publisher thread"))
            .await
            .expect("join");
    }
    let mut seen: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let mut entries = 0;
    loop {
        match part
            .next_batch(1024, Duration::from_millis(100))
            .await
            .expect("read")
        {
            Batch::Events(batch) if batch.is_empty() => break,
            Batch::Events(batch) => {
                for (_, events) in batch {
                    entries += 1;
                    for d in events {
                        seen.entry(d.session_id).or_default().push(d.event.seq);
                    }
                }
            }
            other @ (Batch::NotOwner | Batch::Acquired | Batch::Lost) => {
                panic!("expected entries, got {other:?}")
            }
        }
    }
    for t in 0..THREADS {
        let want: Vec<u64> = (1..=2 * PER_ROUND).collect();
        assert_eq!(seen.get(&format!("s{t}")), Some(&want), "thread {t}");
    }
    assert!(
        entries < THREADS * 2 * PER_ROUND,
        "events published together share entries ({entries} entries)"
    );
    part.release().await;
    drop_namespace(&mut conn).await;
}
