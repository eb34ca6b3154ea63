//! The worker's batched writes on the pass's store (SQLite, or PostgreSQL on the second pass):
//! one batch of events is cut into multi-row statements (256 + 32 + 4 + 1 rows) and must store
//! every event exactly once, whatever the chunk boundaries, duplicates inside the batch and
//! rows stored by an earlier batch; a batch of fenced verdicts writes exactly the verdicts whose
//! sequence numbers are still the log's highest (client and server) and names the others as
//! stale. On PostgreSQL the batch is first one `COPY`, which a stored key fails; it is then
//! written again as inserts that skip stored keys.

use proctor::adapters::store::VerdictWrite;
use proctor::domain::{
    Event, EventBody, Millis, Origin, Profile, RecordCounts, SessionFold, SessionVerdict,
};

fn signal(seq: u64) -> Event {
    Event {
        origin: Origin::Client,
        seq,
        at: Millis(1_000_000 + i64::try_from(seq).expect("small")),
        body: EventBody::Signal {
            name: "batch".into(),
            // Backslashes (JSON's escapes) and non-ASCII text must survive PostgreSQL's `COPY`
            // text format.
            detail: format!("event {seq}: C:\\dir \"quoted\"\ttab\nline 课时"),
        },
    }
}

fn last_seq(log: &[Event], origin: Origin) -> u64 {
    log.iter()
        .filter(|e| e.origin == origin)
        .map(|e| e.seq)
        .max()
        .unwrap_or(0)
}

/// Starts the sessions of two learners of one class and waits until the worker stored their
/// first verdicts (on Redis, once it owns the partitions). Nothing reaches these sessions
/// through the bus afterwards, so the worker leaves them alone while a test writes to the
/// store directly.
async fn two_sessions_with_first_verdicts(t: &proctor_e2e::TestApp) -> (String, String) {
    let token = t.token().await;
    let class = t.new_class(&token).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let enrolment = t.enrol_in(&token, &class, false).await;
        let (status, s) = t.start(&token, &enrolment, 0).await;
        assert_eq!(status, 201, "{s}");
        ids.push(s["session_id"].as_str().expect("session id").to_owned());
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let store = &t.app.store;
    for i in 0.. {
        let a_done = store.verdict_json(&a).await.expect("read").is_some();
        if a_done && store.verdict_json(&b).await.expect("read").is_some() {
            break;
        }
        assert!(i < 300, "the worker stored no first verdicts within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_events_are_stored_once_and_verdicts_fenced_per_row() {
    let mut t = proctor_e2e::spawn_app(1.0).await;
    let (a, b) = two_sessions_with_first_verdicts(&t).await;
    let store = &t.app.store;

    // An earlier batch: 40 events of session a.
    let first: Vec<(String, Event)> = (0..40).map(|i| (a.clone(), signal(10_000 + i))).collect();
    store.append_events(&first).await.expect("first batch");
    // 301 rows, both sessions interleaved: 40 of a's are stored already, one is repeated.
    let mut batch = Vec::new();
    for i in 0..150 {
        batch.push((a.clone(), signal(10_000 + i)));
        batch.push((b.clone(), signal(10_000 + i)));
    }
    batch.push((a.clone(), signal(10_005)));
    assert_eq!(batch.len(), 301);
    store.append_events(&batch).await.expect("second batch");

    for sid in [&a, &b] {
        let log = t.stored_events(sid).await;
        let ours: Vec<&Event> = log.iter().filter(|e| e.seq >= 10_000).collect();
        let seqs: Vec<u64> = ours.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (10_000..10_150).collect::<Vec<_>>(),
            "every event once, in order"
        );
        for e in ours {
            assert_eq!(*e, signal(e.seq), "stored as sent");
        }
    }

    // Fenced verdicts: b's fence is the log's head, a's is behind it (a stale fold).
    let verdict = |sid: &str| {
        let t = &t;
        let sid = sid.to_owned();
        async move {
            let json = t
                .app
                .store
                .verdict_json(&sid)
                .await
                .expect("verdict")
                .expect("the worker stored a first verdict");
            let mut v: SessionVerdict = serde_json::from_str(&json).expect("verdict json");
            // A value no fold produces, to see which rows were written.
            v.credited_ms = 987_654_321;
            v
        }
    };
    let (va, vb) = (verdict(&a).await, verdict(&b).await);
    let (log_a, log_b) = (t.stored_events(&a).await, t.stored_events(&b).await);
    let none = RecordCounts::default();
    let fences = [
        VerdictWrite {
            verdict: &va,
            client_seq: last_seq(&log_a, Origin::Client) - 1,
            server_seq: last_seq(&log_a, Origin::Server),
            released: &none,
            records: &[],
        },
        VerdictWrite {
            verdict: &vb,
            client_seq: last_seq(&log_b, Origin::Client),
            server_seq: last_seq(&log_b, Origin::Server),
            released: &none,
            records: &[],
        },
    ];
    let stale = store
        .save_verdicts_fenced(&fences, Millis(2_000_000))
        .await
        .expect("save verdicts");
    assert_eq!(stale, vec![a.clone()], "only a's fold was behind its log");
    let stored = |sid: String| {
        let t = &t;
        async move {
            let json = t.app.store.verdict_json(&sid).await.expect("read");
            serde_json::from_str::<SessionVerdict>(&json.expect("stored")).expect("json")
        }
    };
    assert_ne!(
        stored(a.clone()).await.credited_ms,
        987_654_321,
        "a stale verdict is not written"
    );
    assert_eq!(
        stored(b.clone()).await.credited_ms,
        987_654_321,
        "b's is written"
    );
    // The server side of the fence: a server event stored above b's fence (a challenge
    // another worker issued, say) makes the same fence stale, and the row is kept.
    let server_seq = last_seq(&log_b, Origin::Server);
    let issued = Event {
        origin: Origin::Server,
        ..signal(server_seq + 1)
    };
    store
        .append_events(&[(b.clone(), issued)])
        .await
        .expect("a server event");
    let mut vb2 = vb.clone();
    vb2.credited_ms = 123_456_789;
    let behind = VerdictWrite {
        verdict: &vb2,
        ..fences[1]
    };
    let stale = store
        .save_verdicts_fenced(&[behind], Millis(2_000_001))
        .await
        .expect("save verdicts");
    assert_eq!(
        stale,
        vec![b.clone()],
        "b's fold is behind its server events"
    );
    assert_eq!(
        stored(b.clone()).await.credited_ms,
        987_654_321,
        "b's row is unchanged"
    );
    let caught_up = VerdictWrite {
        verdict: &vb2,
        server_seq: server_seq + 1,
        ..fences[1]
    };
    let stale = store
        .save_verdicts_fenced(&[caught_up], Millis(2_000_002))
        .await
        .expect("save verdicts");
    assert!(stale.is_empty(), "a fence at the log's head holds");
    assert_eq!(stored(b.clone()).await.credited_ms, 123_456_789);

    // Batches of 256 KiB and more are one `COPY` on PostgreSQL: one all new, then one whose
    // first three quarters are stored already (the `COPY` fails on a stored key and the batch
    // is rewritten with inserts). Each batch is ~0.5 MB.
    let big = |sid: &str, from: u64, n: u64| -> Vec<(String, Event)> {
        (from..from + n)
            .map(|s| (sid.to_owned(), padded(s)))
            .collect()
    };
    store
        .append_events(&big(&b, 20_000, 1_500))
        .await
        .expect("a large new batch");
    store
        .append_events(&big(&b, 20_000, 2_000))
        .await
        .expect("a large batch, partly stored");
    let log = t.stored_events(&b).await;
    let ours: Vec<&Event> = log.iter().filter(|e| e.seq >= 20_000).collect();
    assert_eq!(
        ours.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (20_000..22_000).collect::<Vec<_>>(),
        "every event of the large batches once, in order"
    );
    for e in ours {
        assert_eq!(*e, padded(e.seq), "stored as sent");
    }
    t.stop().await;
}

/// A signal with a detail of ~300 bytes.
fn padded(seq: u64) -> Event {
    let mut e = signal(seq);
    if let EventBody::Signal { detail, .. } = &mut e.body {
        detail.push_str(&"\\ padding".repeat(30));
    }
    e
}

/// A fold that released its closed records: the verdict row is a head, the records are stored
/// beside it, and reading the verdict (the API's, `replay`'s and the workbench's path, where a
/// class's list reads the records of all its verdicts at once) puts them back: the same bytes
/// as a fold that released nothing. A head whose records are missing is reported as corrupt,
/// never read as a shorter verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_records_are_stored_beside_the_verdict_and_put_back() {
    let mut t = proctor_e2e::spawn_app(1.0).await;
    let (a, b) = two_sessions_with_first_verdicts(&t).await;
    let store = &t.app.store;
    // Signals are closed records as soon as they are folded.
    let add_signals = |sid: String, from: u64| async move {
        let rows: Vec<(String, Event)> = (from..from + 12)
            .map(|i| (sid.clone(), signal(i)))
            .collect();
        store.append_events(&rows).await.expect("signals");
    };
    // Folds the stored log, releases what it closed and stores the head with `keep` of the
    // closed records; returns the verdict as a fold that released nothing shows it.
    let save_head = |sid: String, keep: bool| {
        let t = &t;
        async move {
            let (rec, ctx) = t.app.session_with_context(&sid).await.expect("session");
            let profile = Profile::find(&rec.profile).expect("profile");
            let log = t.stored_events(&sid).await;
            let (cseq, sseq) = (
                last_seq(&log, Origin::Client),
                last_seq(&log, Origin::Server),
            );
            let mut fold = SessionFold::refold(profile, ctx, log);
            let whole = serde_json::to_string(&fold.verdict()).expect("json");
            let records = fold.closed_records(&RecordCounts::default());
            let upto = fold.closed();
            fold.release(&upto);
            assert!(
                fold.released().signals >= 12,
                "the signals were released: {:?}",
                fold.released()
            );
            let head = fold.verdict();
            assert!(head.signals.is_empty(), "a head lists no released signal");
            let stale = t
                .app
                .store
                .save_verdicts_fenced(
                    &[VerdictWrite {
                        verdict: &head,
                        client_seq: cseq,
                        server_seq: sseq,
                        released: &fold.released(),
                        records: if keep { &records } else { &[] },
                    }],
                    Millis(3_000_000),
                )
                .await
                .expect("save the head");
            assert!(stale.is_empty(), "the fence holds");
            whole
        }
    };
    let mut wholes = Vec::new();
    for sid in [&a, &b] {
        add_signals(sid.clone(), 30_000).await;
        let whole = save_head(sid.clone(), true).await;
        let read = store
            .verdict_json(sid)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            read, whole,
            "head + records = the whole verdict, byte for byte"
        );
        let report = t.app.replay(sid).await.expect("replay");
        assert!(report.matches, "replay agrees with the restored verdict");
        let row = store
            .review_session(sid, "%")
            .await
            .expect("review row")
            .expect("listed");
        assert_eq!(row.verdict_json.as_deref(), Some(whole.as_str()));
        wholes.push((sid.clone(), row.class_id, whole));
    }
    // The workbench's list of the class: both verdicts, each with its own records.
    let class = &wholes[0].1;
    let rows = store
        .review_sessions_of_class(class, "%")
        .await
        .expect("the class's rows");
    assert_eq!(rows.len(), 2, "both sessions are in the class");
    for (sid, _, whole) in &wholes {
        let row = rows.iter().find(|r| &r.id == sid).expect("listed");
        assert_eq!(row.verdict_json.as_deref(), Some(whole.as_str()), "{sid}");
    }
    // More records released, stored without them: the head is corrupt, alone or in a list.
    add_signals(b.clone(), 40_000).await;
    save_head(b.clone(), false).await;
    let err = store
        .verdict_json(&b)
        .await
        .expect_err("a head without its records is corrupt");
    assert!(
        err.to_string().contains("missing"),
        "the error names what is missing: {err}"
    );
    let err = store
        .review_sessions_of_class(class, "%")
        .await
        .expect_err("a list holding that head fails too");
    assert!(err.to_string().contains("missing"), "{err}");
    t.stop().await;
}
