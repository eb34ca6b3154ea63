//! The production pipeline on a 3-master Redis Cluster on loopback (started here from the
//! `redis-server` binary; the test fails when it is missing): sessions stream through the
//! service on `redis+cluster://…`, effects (acks, credit, `ended`) come back over the cluster's
//! pub/sub, every stored verdict equals a replay, and each partition's keys share one slot.
//! Runs in the PostgreSQL + Redis pass of `scripts/test`.

use std::time::Duration;

use futures_util::StreamExt;
use proctor_e2e::redis_server::{RedisCluster, cli};

/// Private ports below the ephemeral range (32768–60999), so no client socket can hold one;
/// the cluster bus ports (+10000) stay below it too.
const PORTS: [u16; 3] = [21001, 21002, 21003];
const PARTITIONS: usize = 6;
const SESSIONS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_on_a_redis_cluster() {
    if proctor_e2e::test_redis_url().is_none() {
        eprintln!(
            "cluster tests run in the PostgreSQL + Redis pass of scripts/test (PROCTOR_TEST_BUS=redis)"
        );
        return;
    }
    let cluster = RedisCluster::start(&PORTS);
    let app = proctor_e2e::spawn_app_on(10.0, Some(cluster.url()), PARTITIONS).await;
    let conn = app.app.redis.clone().expect("the service uses Redis");

    // Hash tags: every key of a partition lives in one slot, and the partitions spread over
    // more than one master.
    let mut nodes_used = std::collections::BTreeSet::new();
    for p in 0..PARTITIONS {
        let slot = |key: &str| -> u16 {
            cli(PORTS[0], &["CLUSTER", "KEYSLOT", key])
                .expect("CLUSTER KEYSLOT")
                .trim()
                .parse()
                .expect("slot")
        };
        let (stream, owner) = (conn.stream_key(p), conn.owner_key(p));
        assert_eq!(
            slot(&stream),
            slot(&owner),
            "partition {p}: {stream} and {owner} differ in slot"
        );
        // The node that serves the stream holds it (no MOVED): it is a real key there.
        let holder = PORTS
            .iter()
            .find(|port| cli(**port, &["EXISTS", &stream]).is_ok_and(|o| o.trim() == "1"))
            .unwrap_or_else(|| panic!("no node holds {stream}"));
        nodes_used.insert(*holder);
    }
    assert!(
        nodes_used.len() > 1,
        "all partitions landed on one node: {nodes_used:?}"
    );

    let token = app.token().await;
    let streamed: Vec<proctor_e2e::Streamed> = futures_util::stream::iter(0..SESSIONS)
        .map(|_| {
            proctor_e2e::stream_session(
                &app,
                &token,
                10,
                Duration::from_millis(30),
                Duration::from_secs(10),
            )
        })
        .buffer_unordered(SESSIONS)
        .collect()
        .await;
    for s in &streamed {
        assert_eq!(
            s.acked, 10,
            "session {}: every event acknowledged",
            s.session
        );
        // `ended` is an effect: the worker publishes it on the cluster's pub/sub and the
        // gateway delivers it to the socket.
        assert!(
            s.saw_ended,
            "session {}: the `ended` effect never reached the socket",
            s.session
        );
    }
    let results: Vec<(String, u64)> = streamed.into_iter().map(|s| (s.session, s.acked)).collect();
    proctor_e2e::assert_logs_match_replays(&app, &token, &results, Duration::from_secs(30)).await;

    // Every event really went through the cluster's streams: the entries (several events
    // each when a gateway batches) hold each session's 10 client events, exactly once.
    let mut conn = conn;
    let mut client_events = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for p in 0..PARTITIONS {
        let key = conn.stream_key(p);
        let range: redis::streams::StreamRangeReply = conn
            .query(redis::cmd("XRANGE").arg(&key).arg("-").arg("+"))
            .await
            .expect("XRANGE on the cluster");
        for entry in &range.ids {
            for d in proctor::adapters::redis::bus::decode(entry) {
                if d.event.origin == proctor::domain::Origin::Client {
                    client_events
                        .entry(d.session_id)
                        .or_default()
                        .push(d.event.seq);
                }
            }
        }
    }
    assert_eq!(
        client_events.len(),
        SESSIONS,
        "sessions seen in the streams"
    );
    for (session, seqs) in &client_events {
        assert_eq!(
            seqs,
            &(1..=10).collect::<Vec<u64>>(),
            "session {session}: its client events in the streams, in order"
        );
    }
}
