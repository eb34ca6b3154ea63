//! Memory held by one session's fold, and by all of a worker's per-session state (its table of
//! live sessions: `worker_table`), counted exactly with an instrumented global allocator at
//! points through the honest 45-minute log. A separate
//! bench binary so that the counting allocator does not slow the timings in `fold`.
//! Run with `cargo bench -p proctor-server --bench fold --bench fold_memory`.
//!
//! Heap bytes are the sizes requested from the allocator; glibc malloc adds ~8–16 B per live
//! block on top, so the live block count is printed too.

#[path = "support/log.rs"]
mod log;

use std::alloc::System;
use std::sync::Arc;

use proctor::domain::schedule::ChallengePlan;
use proctor::domain::{Event, Profile, SessionFold, SessionId};
use proctor::pipeline::worker::table::{Live, LiveTable};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net heap bytes and live blocks allocated while `f` ran and still held by what it returned.
fn held<T>(f: impl FnOnce() -> T) -> (T, i64, i64) {
    let region = Region::new(GLOBAL);
    let value = f();
    let s = region.change();
    // stats_alloc already adds a `realloc`'s growth to `bytes_allocated` (and a shrink to
    // `bytes_deallocated`); `bytes_reallocated` is the same amount again, not to be added.
    let bytes = i64::try_from(s.bytes_allocated).expect("fits")
        - i64::try_from(s.bytes_deallocated).expect("fits");
    let blocks =
        i64::try_from(s.allocations).expect("fits") - i64::try_from(s.deallocations).expect("fits");
    (value, bytes, blocks)
}

fn fold_prefix(profile: &Arc<Profile>, events: &[Event]) -> SessionFold {
    // Workers share one profile among all folds (an `Arc`): a fold holds a pointer to it.
    let mut fold = SessionFold::new(profile.clone(), log::ctx());
    for e in events {
        fold.apply(e);
    }
    fold
}

/// As a worker holds it: after every event the closed records are handed to the store and
/// released (a worker releases them once its next verdict write, 150–180 ms later, is stored).
fn fold_prefix_released(profile: &Arc<Profile>, events: &[Event]) -> SessionFold {
    let mut fold = SessionFold::new(profile.clone(), log::ctx());
    for e in events {
        fold.apply(e);
        let upto = fold.closed();
        fold.release(&upto);
    }
    fold
}

/// Sessions in the worker's table for `worker_table`.
const TABLE_SESSIONS: usize = 1000;

/// Everything a worker holds per live session, measured on the worker's own table: the
/// boxed `Live` (fold, challenge plan, pushed state), the fold's heap, the index, the slot
/// and the due order, with every session due a verdict (an active session mostly is), for
/// `TABLE_SESSIONS` sessions at each point `(label, events folded)` of the lesson. The
/// profile and the platform name are one copy per worker, not counted.
fn worker_table(profile: &Arc<Profile>, events: &[Event], points: &[(&str, usize)]) {
    println!(
        "== a worker's table: {TABLE_SESSIONS} sessions, closed records released, every session due =="
    );
    println!(
        "size_of::<Live>() = {} B (boxed, in the heap figures below)",
        std::mem::size_of::<Live>()
    );
    println!(
        "{:>12} {:>7} {:>14} {:>14}",
        "point", "events", "B per session", "blocks/session"
    );
    let platform: Arc<str> = Arc::from("a training platform");
    let n = i64::try_from(TABLE_SESSIONS).expect("fits");
    for &(label, k) in points {
        let (table, heap, blocks) = held(|| {
            let mut table = LiveTable::default();
            let mut draws = 0_u64;
            for i in 0..TABLE_SESSIONS {
                let mut ctx = log::ctx();
                ctx.session_id = SessionId::from(format!("0192f0c4-7a39-7cc1-9e2b-{i:012x}"));
                let mut fold = SessionFold::new(profile.clone(), ctx);
                for e in &events[..k] {
                    fold.apply(e);
                    let upto = fold.closed();
                    fold.release(&upto);
                }
                let plan = ChallengePlan::draw(profile, &mut || {
                    draws = draws
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    draws
                });
                let sid = fold.context().session_id.as_str().to_owned();
                table.insert(Box::new(Live::new(fold, plan, platform.clone(), 1)));
                table.mark(&sid, i64::try_from(i).expect("fits"));
            }
            table
        });
        assert_eq!(table.len(), TABLE_SESSIONS);
        println!(
            "{:>12} {:>7} {:>14} {:>14.1}",
            label,
            k,
            heap / n,
            blocks as f64 / n as f64
        );
        drop(table);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no arguments and only reports.
    let profile = Arc::new(log::profile());
    let events = log::honest_45min();
    let inline = i64::try_from(std::mem::size_of::<SessionFold>()).expect("fits");
    let (copy, profile_heap, profile_blocks) = held(|| Profile::clone(&profile));
    drop(copy);
    let (ctx, ctx_heap, ctx_blocks) = held(log::ctx);
    drop(ctx);
    println!("== fold_memory: heap held by one SessionFold (exact, instrumented allocator) ==");
    println!("size_of::<SessionFold>() = {inline} B inline");
    println!(
        "a Profile copy (shared by all folds through an Arc, not counted per fold): {profile_heap} B heap in {profile_blocks} blocks; SessionContext: {ctx_heap} B in {ctx_blocks} blocks"
    );
    println!(
        "{:>12} {:>7} {:>10} {:>7} {:>12}",
        "server time", "events", "heap B", "blocks", "inline+heap"
    );
    let start = events.first().map_or(0, |e| e.at.0);
    for minutes in [
        Some(0_i64),
        Some(1),
        Some(5),
        Some(15),
        Some(30),
        Some(45),
        None,
    ] {
        let k = minutes.map_or(events.len(), |m| {
            events
                .iter()
                .take_while(|e| e.at.0 <= start + m * 60_000)
                .count()
        });
        let label = minutes.map_or_else(|| "end".to_owned(), |m| format!("{m} m"));
        let (fold, heap, blocks) = held(|| fold_prefix(&profile, &events[..k]));
        println!(
            "{:>12} {:>7} {:>10} {:>7} {:>12}",
            label,
            k,
            heap,
            blocks,
            inline + heap
        );
        drop(fold);
    }
    println!("== the same, with closed records released after each event (a worker's fold) ==");
    println!(
        "{:>12} {:>7} {:>10} {:>7} {:>12}",
        "server time", "events", "heap B", "blocks", "inline+heap"
    );
    for minutes in [0_i64, 1, 5, 15, 30, 45] {
        let k = events
            .iter()
            .take_while(|e| e.at.0 <= start + minutes * 60_000)
            .count();
        let (fold, heap, blocks) = held(|| fold_prefix_released(&profile, &events[..k]));
        println!(
            "{:>12} {:>7} {:>10} {:>7} {:>12}",
            format!("{minutes} m"),
            k,
            heap,
            blocks,
            inline + heap
        );
        drop(fold);
    }
    // The largest it gets at any point of the lesson.
    let (mut worst, mut worst_at) = (0, 0);
    for k in 0..=events.len() {
        let (fold, heap, _) = held(|| fold_prefix_released(&profile, &events[..k]));
        drop(fold);
        if heap > worst {
            (worst, worst_at) = (heap, k);
        }
    }
    println!(
        "largest over the lesson: {} B inline+heap, after event {worst_at} of {}",
        inline + worst,
        events.len()
    );
    let k_at = |m: i64| {
        events
            .iter()
            .take_while(|e| e.at.0 <= start + m * 60_000)
            .count()
    };
    worker_table(
        &profile,
        &events,
        &[
            ("1st event", 1),
            ("5 m", k_at(5)),
            ("fold largest", worst_at),
            ("45 m", k_at(45)),
        ],
    );
    let fold = fold_prefix(&profile, &events);
    let (json, heap, blocks) = held(|| {
        let v = fold.verdict();
        serde_json::to_vec(&v).expect("a verdict serialises")
    });
    println!(
        "verdict() JSON after 45 min: {} B (held as a Vec: {heap} B in {blocks} block)",
        json.len()
    );
}
