//! Speed of the session fold against the floor of merely parsing the same events, measured in
//! the same run. Run with `cargo bench -p proctor-server --bench fold --bench fold_memory`
//! (see BENCHMARKS.md). Criterion does not measure memory: the structural sizes are printed
//! before the timings, and `fold_memory` counts the heap exactly.

#[path = "support/log.rs"]
mod log;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use proctor::domain::verdict::{ChallengeRecord, Span};
use proctor::domain::{Applied, Event, EventBody, Profile, SessionFold};

/// A ~140-byte heartbeat as a client sends it (with its played-segments claim), without
/// the gateway's `seq`: the `EventBody` JSON.
pub const HEARTBEAT_JSON: &str = r#"{"type":"heartbeat","position_ms":1234567,"rate_permille":1000,"paused":false,"visible":true,"focused":true,"played":[[0,1234567]]}"#;

/// The same heartbeat as it arrives on the WebSocket: `{"seq": n, ...body}`.
pub const HEARTBEAT_WS_JSON: &str = r#"{"seq":247,"type":"heartbeat","position_ms":1234567,"rate_permille":1000,"paused":false,"visible":true,"focused":true,"played":[[0,1234567]]}"#;

/// The heartbeat as a plain struct: what STACK.md's "serde_json parse of a ~140-byte
/// heartbeat into a struct" measured. `EventBody` is an internally tagged enum that refuses
/// unknown fields, which serde parses through a buffer; the difference is the tag's cost.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // Fields are parsed, never read.
struct PlainHeartbeat {
    #[serde(rename = "type")]
    kind: String,
    position_ms: i64,
    rate_permille: i32,
    paused: bool,
    visible: bool,
    focused: bool,
    played: Vec<[i64; 2]>,
}

fn elements(n: usize) -> Throughput {
    Throughput::Elements(u64::try_from(n).expect("an event count fits in u64"))
}

/// Folds the whole log event by event, as a worker does.
fn fold_all(profile: &Profile, events: &[Event]) -> SessionFold {
    let mut fold = SessionFold::new(profile.clone(), log::ctx());
    for e in events {
        assert_eq!(fold.apply(e), Applied::Applied, "every event is folded");
    }
    fold
}

fn print_sizes(profile: &Profile, events: &[Event]) {
    let fold = fold_all(profile, events);
    let v = fold.verdict();
    assert_eq!(
        v,
        SessionFold::replay(profile.clone(), log::ctx(), events.to_vec()),
        "apply and replay agree"
    );
    let json = serde_json::to_vec(&v).expect("a verdict serialises");
    let heartbeats = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::Heartbeat { .. }))
        .count();
    let stored: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("an event serialises").len())
        .sum();
    println!("== honest 45-minute log ==");
    println!(
        "events: {} ({heartbeats} heartbeats), {stored} bytes as stored JSON (avg {} B/event)",
        events.len(),
        stored / events.len()
    );
    println!(
        "verdict: credited {} ms of {} ms lesson, counts = {}, {} timeline spans, {} challenges, {} snapshots, {} face checks",
        v.credited_ms,
        v.lesson_duration_ms,
        v.counts,
        v.timeline.len(),
        v.challenges.len(),
        v.snapshots.len(),
        v.face_checks.len()
    );
    println!("== memory (criterion does not measure it; exact heap in `--bench fold_memory`) ==");
    println!(
        "size_of::<SessionFold>() = {} B (inline, includes the Profile held by value)",
        std::mem::size_of::<SessionFold>()
    );
    println!(
        "size_of::<Span>() = {} B, size_of::<ChallengeRecord>() = {} B, size_of::<Event>() = {} B",
        std::mem::size_of::<Span>(),
        std::mem::size_of::<ChallengeRecord>(),
        std::mem::size_of::<Event>()
    );
    println!(
        "structural heap estimate after the log: timeline {} B + challenges {} B (+ their nonce strings) + coverage {} B",
        v.timeline.len() * std::mem::size_of::<Span>(),
        v.challenges.len() * std::mem::size_of::<ChallengeRecord>(),
        v.coverage.len() * 16
    );
    println!(
        "verdict() as JSON (serde_json::to_vec): {} B (a proxy for what the worker writes per touched session)",
        json.len()
    );
    println!(
        "heartbeat JSON: {} B body, {} B with seq on the WebSocket",
        HEARTBEAT_JSON.len(),
        HEARTBEAT_WS_JSON.len()
    );
    println!();
}

fn benches(c: &mut Criterion, profile: &Profile, events: &[Event]) {
    let n = events.len();

    let mut g = c.benchmark_group("fold");
    g.throughput(elements(n));
    // Per event: a fresh fold (profile and context cloned in setup, not timed) folds the
    // whole honest log with `apply`; ~90% of the events are heartbeats.
    g.bench_function("apply_heartbeat", |b| {
        b.iter_batched(
            || SessionFold::new(profile.clone(), log::ctx()),
            |mut fold| {
                for e in events {
                    black_box(fold.apply(black_box(e)));
                }
                fold
            },
            BatchSize::SmallInput,
        );
    });
    // A whole replay: sort, de-duplicate, fold and `verdict()` (the log is cloned in setup,
    // since `replay` takes it by value).
    g.bench_function("replay_45min", |b| {
        b.iter_batched(
            || (profile.clone(), log::ctx(), events.to_vec()),
            |(profile, ctx, log)| SessionFold::replay(profile, ctx, log),
            BatchSize::SmallInput,
        );
    });
    // What the worker does for each touched session after a batch: `verdict()` and JSON.
    let done = fold_all(profile, events);
    g.throughput(elements(1));
    g.bench_function("verdict", |b| {
        b.iter(|| {
            let v = black_box(&done).verdict();
            serde_json::to_vec(&v).expect("a verdict serialises")
        });
    });
    g.bench_function("verdict_only", |b| {
        b.iter(|| black_box(&done).verdict());
    });
    g.finish();

    let mut g = c.benchmark_group("reference");
    g.throughput(elements(1));
    g.bench_function("serde_parse_heartbeat", |b| {
        b.iter(|| {
            serde_json::from_str::<EventBody>(black_box(HEARTBEAT_JSON))
                .expect("the heartbeat parses")
        });
    });
    g.bench_function("serde_parse_heartbeat_struct", |b| {
        b.iter(|| {
            serde_json::from_str::<PlainHeartbeat>(black_box(HEARTBEAT_JSON))
                .expect("the heartbeat parses")
        });
    });
    // The gateway's real per-message path: JSON → Value, take `seq`, Value → EventBody, checks.
    g.bench_function("gateway_parse_client_message", |b| {
        b.iter(|| {
            proctor::api::ws::parse_client_message(black_box(HEARTBEAT_WS_JSON), log::LESSON_MS)
                .expect("the message is valid")
        });
    });
    // Parsing the same stored events the fold folds, one by one.
    let stored: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("an event serialises"))
        .collect();
    g.throughput(elements(n));
    g.bench_function("serde_parse_event", |b| {
        b.iter(|| {
            for s in &stored {
                black_box(serde_json::from_str::<Event>(black_box(s)).expect("the event parses"));
            }
        });
    });
    g.finish();
}

fn main() {
    let profile = log::profile();
    let events = log::honest_45min();
    print_sizes(&profile, &events);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    benches(&mut c, &profile, &events);
    c.final_summary();
}
