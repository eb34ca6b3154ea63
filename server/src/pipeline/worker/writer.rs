//! The worker's store writer: one task per partition that stores event batches and fenced
//! verdicts strictly in the order the worker queued them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapters::store::VerdictWrite;
use crate::app::App;
use crate::domain::{Event, Millis, Record, RecordCounts, SessionVerdict};

/// The writer's work, done strictly in order: a verdict job queued after an events job is
/// stored after those events, so its fence (the log's highest sequence numbers) holds.
#[derive(Debug)]
pub(super) enum Job {
    Events(Arc<Vec<(String, Event)>>),
    Verdicts { batch: Vec<Due>, now: Millis },
}

/// A verdict to store, with the fence it was computed at.
#[derive(Debug)]
pub(super) struct Due {
    pub(super) verdict: SessionVerdict,
    pub(super) client_seq: u64,
    pub(super) server_seq: u64,
    /// `Live::uncovered_since_us` when the verdict was computed.
    pub(super) uncovered_since_us: i64,
    /// The fold's released counts (the head's lists start there).
    pub(super) released: RecordCounts,
    /// Closed records not handed over before, stored with the verdict.
    pub(super) records: Vec<(u32, Record)>,
    /// The fold's closed counts at hand-over: what it may release once this is stored.
    pub(super) upto: RecordCounts,
    /// `Live::epoch` of the fold it came from.
    pub(super) epoch: u32,
}

/// What the writer finished, in the order the jobs were queued.
#[derive(Debug)]
pub(super) enum Done {
    /// The oldest in-flight batch is stored.
    Events,
    /// A verdict job: what was stored, and the sessions whose fold was behind the log.
    Verdicts {
        stored: Vec<Due>,
        stale: Vec<String>,
    },
}

/// Events the writer stores in one call at most, when batches queue up behind a write.
const MAX_WRITE: usize = 8_192;

/// How long the writer holds a batch of fewer than `LINGER_BELOW` events for others to join.
const LINGER: Duration = Duration::from_millis(5);
const LINGER_BELOW: usize = 1_024;

/// The store writer: runs the jobs in order, retrying through a store outage (the worker
/// then stops reading once `MAX_IN_FLIGHT` events wait, and the bus pushes back on the
/// gateways). Events batches queued behind a write are stored together.
pub(super) async fn write(
    app: Arc<App>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        match job {
            Job::Events(first) => {
                // A small batch with nothing behind it waits a moment for company: one
                // transaction (and, on PostgreSQL, one commit) per few milliseconds rather
                // than per read. The fold does not wait; only the stored verdict does.
                if first.len() < LINGER_BELOW && jobs.is_empty() {
                    tokio::time::sleep(LINGER).await;
                }
                let mut n = first.len();
                let mut parts = vec![first];
                while n < MAX_WRITE {
                    match jobs.try_recv() {
                        Ok(Job::Events(rows)) => {
                            n += rows.len();
                            parts.push(rows);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let merged: Vec<(String, Event)>;
                let rows: &[(String, Event)] = match parts.as_slice() {
                    [one] => one,
                    _ => {
                        merged = parts.iter().flat_map(|p| p.iter().cloned()).collect();
                        &merged
                    }
                };
                if !rows.is_empty() {
                    let mut delay = Duration::from_millis(50);
                    while let Err(e) = app.store.append_events(rows).await {
                        tracing::warn!(error = %e, batch = rows.len(), "Failed to store events; retrying.");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    crate::metrics::metrics()
                        .events_persisted
                        .inc_by(rows.len() as u64);
                }
                for _ in &parts {
                    if done.send(Done::Events).is_err() {
                        return;
                    }
                }
            }
            Job::Verdicts { batch, now } => {
                let refs: Vec<_> = batch
                    .iter()
                    .map(|d| VerdictWrite {
                        verdict: &d.verdict,
                        client_seq: d.client_seq,
                        server_seq: d.server_seq,
                        released: &d.released,
                        records: &d.records,
                    })
                    .collect();
                let mut delay = Duration::from_millis(50);
                let stale = loop {
                    match app.store.save_verdicts_fenced(&refs, now).await {
                        Ok(stale) => break stale,
                        Err(e) => {
                            tracing::warn!(error = %e, "Failed to store verdicts; retrying.");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(2));
                        }
                    }
                };
                drop(refs);
                let stored: Vec<Due> = batch
                    .into_iter()
                    .filter(|d| !stale.iter().any(|s| s == d.verdict.session_id.as_str()))
                    .collect();
                let records: usize = stored.iter().map(|d| d.records.len()).sum();
                crate::metrics::metrics()
                    .verdict_records
                    .inc_by(records as u64);
                if done.send(Done::Verdicts { stored, stale }).is_err() {
                    return;
                }
            }
        }
    }
}
