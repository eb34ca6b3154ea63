//! A partition worker. Per batch: fold the events into the in-memory state (at once: the
//! in-memory verdict) and hand them to the writer task → once they are stored, let the
//! scheduler append server events (challenges, expiries, lease loss) and, on Redis,
//! acknowledge the batch. Apart from that, each session's verdict is handed to the writer
//! when it is due (`VERDICT_LAG_US` after the oldest event it covers was accepted), queued
//! behind the events it covers → once it is stored, effects are pushed. The writer runs its
//! jobs in order. Invariants: no verdict, effect or
//! acknowledgement leaves the worker before the events it reflects are stored, so a restart
//! replays the store (and the unacknowledged entries of the bus) and reaches the same state;
//! a server event may be stored while client events folded before it are still being
//! written, but those are unacknowledged until stored, so they reach the log too, and the
//! fold orders the log by time, not by storage order; every server event gets its sequence
//! number from the store's per-session counter; effects are pushed only after the verdict
//! they reflect is stored. Random choices (when to challenge, nonces, pop-up codes) are made
//! here, never in the domain, and are written to the log as events.

mod load;
mod reader;
pub mod table;
mod writer;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};

use crate::adapters::bus::{Delivery, wall_us};
use crate::adapters::redis::partition::RedisPartition;
use crate::app::App;
use crate::app::hub::Outbound;
use crate::app::protocol::{ChallengeMsg, ServerMsg, close};
use crate::domain::schedule;
use crate::domain::{
    Applied, ChallengeKind, Event, EventBody, Millis, Origin, Profile, TerminationReason,
};
use reader::{Feed, Read, read};
use table::{Live, LiveTable};
use writer::{Done, Due, Job, write};

/// Where a worker's events come from.
#[derive(Debug)]
pub enum Source {
    /// The in-process bus: this worker's partition channel.
    Memory(mpsc::Receiver<Delivery>),
    /// A Redis Streams partition, owned while this worker holds its lease.
    Redis(RedisPartition),
}

/// A batch folded into the in-memory state and handed to the writer, not yet stored.
#[derive(Debug)]
struct InFlight {
    rows: Arc<Vec<(String, Event)>>,
    touched: BTreeSet<String>,
    out_of_order: BTreeSet<String>,
    /// Stream ids to acknowledge once the batch is stored.
    ack: Vec<String>,
}

/// One partition's consumer.
#[derive(Debug)]
pub struct Worker {
    app: Arc<App>,
    partition: usize,
    partitions: usize,
    /// The live sessions, and which are due a verdict: a session's stored verdict is behind
    /// its fold, and its next one is due by `verdict_due`. One verdict covers every event
    /// folded by then, so a session is written about once per `VERDICT_LAG_US`, not once per
    /// batch.
    live: LiveTable,
    /// One shared copy of each profile the live sessions use.
    profiles: HashMap<String, Arc<Profile>>,
    /// One copy of each platform name the live sessions use.
    platforms: HashSet<Arc<str>>,
    rng: StdRng,
    /// Batches folded but not yet stored, oldest first.
    in_flight: VecDeque<InFlight>,
    in_flight_events: usize,
    /// Verdict jobs queued and not yet done.
    verdicts_in_flight: usize,
    jobs: mpsc::UnboundedSender<Job>,
    done: mpsc::UnboundedReceiver<Done>,
    /// The writer's ends, until `run` starts it.
    writer: Option<(mpsc::UnboundedReceiver<Job>, mpsc::UnboundedSender<Done>)>,
    /// Where stored batches' stream ids go to be acknowledged (Redis).
    ack: Option<mpsc::UnboundedSender<Vec<String>>>,
    /// The partition lease's deadline (wall-clock µs), on Redis: timers append server events
    /// only before it, so a worker paused past its lease does not act as the owner on waking.
    lease_until_us: Option<Arc<AtomicI64>>,
    /// The next `Live::epoch`.
    next_epoch: u32,
    /// The server time up to which the feed has delivered everything accepted before it:
    /// silence (a session's lease, a challenge's deadline) is judged only up to here, so a
    /// worker behind its partition does not take events still on the bus for missing ones.
    caught_up_at: Millis,
}

/// Events folded ahead of the store at most; past this the worker waits for the writer.
const MAX_IN_FLIGHT: usize = 16_384;

/// How long after the gateway accepted an event the worker hands over the verdict that covers
/// it (real time): the budget for the stored verdict's latency, less the verdict write. A
/// longer lag means fewer, larger verdict writes. The log is stored before anything is
/// acknowledged, so a verdict that lags is recomputed from the log, never lost.
const VERDICT_LAG_US: i64 = 180_000;

/// The least time between two verdicts of a session handed to the writer (real time), unless
/// it ends. When the bus delivers late, the lag above is mostly spent before the fold sees an
/// event; this floor keeps verdict writes from multiplying then, when the machine can least
/// afford them.
const VERDICT_GAP_US: i64 = 150_000;

/// How often the loop looks for verdicts that are due while sessions are dirty.
const VERDICT_CHECK: Duration = Duration::from_millis(10);

impl Worker {
    pub fn new(app: Arc<App>, partition: usize, partitions: usize) -> Worker {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        Worker {
            app,
            partition,
            partitions,
            live: LiveTable::default(),
            profiles: HashMap::new(),
            platforms: HashSet::new(),
            rng: StdRng::from_os_rng(),
            in_flight: VecDeque::new(),
            in_flight_events: 0,
            verdicts_in_flight: 0,
            jobs,
            done,
            writer: Some((jobs_rx, done_tx)),
            ack: None,
            lease_until_us: None,
            next_epoch: 0,
            caught_up_at: Millis(0),
        }
    }

    /// Runs until `shutdown` flips to true. From the in-process bus it then drains what was
    /// already accepted; from Redis it reads until the partition has nothing new, stores it,
    /// and gives the partition back (unacknowledged entries stay pending for the next owner).
    ///
    /// The loop folds each batch as soon as it arrives (the in-memory verdict) and hands it
    /// to the writer task; what derives from the batch (server events from the timers, the
    /// verdict, pushes, the acknowledgement) waits until the writer reports it stored.
    pub async fn run(mut self, source: Source, shutdown: watch::Receiver<bool>) {
        if let Some((jobs, done)) = self.writer.take() {
            tokio::spawn(write(self.app.clone(), jobs, done));
        }
        let period = self.tick_period();
        let (feed, reader) = match source {
            Source::Memory(rx) => {
                self.adopt_open_sessions().await;
                (Feed::Memory(rx), None)
            }
            Source::Redis(part) => {
                let (tx, rx) = mpsc::channel(2);
                let (ack, acks) = mpsc::unbounded_channel();
                self.ack = Some(ack);
                self.lease_until_us = Some(part.lease_until());
                let reader = tokio::spawn(read(
                    part,
                    tx,
                    acks,
                    shutdown.clone(),
                    period,
                    self.app.clock.clone(),
                ));
                (Feed::Redis(rx), Some(reader))
            }
        };
        self.run_loop(feed, shutdown, period).await;
        // The reader acknowledges what is left, then gives the partition back.
        self.ack = None;
        if let Some(reader) = reader
            && let Err(e) = reader.await
        {
            tracing::error!(partition = self.partition, error = %e, "The partition reader failed.");
        }
        tracing::info!(partition = self.partition, "Worker stopped.");
    }

    /// Timers run on server time: one server second, but at least every 10 ms real.
    fn tick_period(&self) -> Duration {
        let tick_ms = (1000.0 / self.app.clock.scale()).clamp(10.0, 1000.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Duration::from_millis(tick_ms as u64)
    }

    async fn run_loop(
        &mut self,
        mut feed: Feed,
        mut shutdown: watch::Receiver<bool>,
        period: Duration,
    ) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut verdict_check = tokio::time::interval(VERDICT_CHECK);
        verdict_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let room = self.in_flight_events < MAX_IN_FLIGHT;
            tokio::select! {
                biased;
                Some(done) = self.done.recv() => self.on_done(done).await,
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    // Drain: everything a gateway accepted before the bus closed is folded
                    // and stored. (A Redis reader drains its partition by itself.)
                    if let Feed::Memory(rx) = &mut feed {
                        rx.close();
                    }
                }
                r = feed.next(), if room => match r {
                    Some(Read::Events(ids, batch, drained)) => {
                        self.fold_batch(ids, batch).await;
                        if let Some(at) = drained {
                            self.caught_up(at);
                        }
                        if feed.is_caught_up() {
                            self.caught_up(self.app.now());
                        }
                    }
                    Some(Read::CaughtUp(at)) => self.caught_up(at),
                    Some(Read::Acquired) => {
                        tracing::info!(partition = self.partition, "Took ownership of a partition.");
                        self.settle().await;
                        self.live.clear();
                        // What a previous owner left pending is claimed before new entries.
                        self.caught_up_at = Millis(0);
                        self.adopt_open_sessions().await;
                    }
                    Some(Read::Lost) => {
                        tracing::info!(partition = self.partition, "Gave up or lost a partition.");
                        self.settle().await;
                        // Store what this worker's folds know before forgetting them: a server
                        // event it appended just before losing the lease would otherwise be
                        // in the log with no verdict reflecting it. The fence keeps this safe
                        // against the new owner; a stale fold is re-folded and tried again.
                        for _ in 0..3 {
                            if !self.live.any_due() {
                                break;
                            }
                            let now = self.app.now();
                            self.flush(true, now);
                            self.settle().await;
                        }
                        self.live.clear();
                        // Its new owner reports the partition now: a value left here would
                        // stay frozen (and keep an alert on it firing).
                        let _ = crate::metrics::metrics()
                            .unheard
                            .remove_label_values(&[&self.partition.to_string()]);
                    }
                    None => break,
                },
                _ = tick.tick(), if !stopping => {
                    if feed.is_caught_up() {
                        self.caught_up(self.app.now());
                    }
                    self.on_tick().await;
                }
                _ = verdict_check.tick(), if self.live.any_due() => {
                    let now = self.app.now();
                    self.flush(false, now);
                }
                // The writer is gone while the worker waits on it: nothing more can be stored.
                else => break,
            }
        }
        self.settle().await;
        let now = self.app.now();
        self.flush(true, now);
        self.settle().await;
    }

    /// The feed has delivered everything accepted before `at` (server time).
    fn caught_up(&mut self, at: Millis) {
        self.caught_up_at = self.caught_up_at.max(at);
    }

    /// Waits until the writer has stored everything handed to it, and handles what follows.
    async fn settle(&mut self) {
        while !self.in_flight.is_empty() || self.verdicts_in_flight > 0 {
            match self.done.recv().await {
                Some(done) => self.on_done(done).await,
                None => break,
            }
        }
    }

    /// Folds a batch into the in-memory state at once (the `fold` latency) and hands it to
    /// the writer. Nothing derived from it leaves the worker until the writer reports it
    /// stored (`on_done`), so a crash in between loses nothing that a replay of the store
    /// and the bus would not rebuild.
    async fn fold_batch(&mut self, ack: Vec<String>, batch: Vec<Delivery>) {
        let m = crate::metrics::metrics();
        let mut fold_time = Duration::ZERO;
        let fold_latency = m.event_latency.with_label_values(&["fold"]);
        let mut touched = BTreeSet::new();
        let mut out_of_order = BTreeSet::new();
        // A session loaded now reads the log and the batches still in flight, without this
        // one; its events are applied on top (duplicates are ignored by the fold).
        let mut unknown: Vec<String> = Vec::new();
        for d in &batch {
            if !self.live.contains(&d.session_id) && !unknown.contains(&d.session_id) {
                unknown.push(d.session_id.clone());
            }
        }
        self.load_many(unknown).await;
        for d in &batch {
            let Some(live) = self.live.get_mut(&d.session_id) else {
                continue;
            };
            if d.event.origin == Origin::Client {
                live.last_client_at = live.last_client_at.max(d.event.at);
            }
            crate::metrics::observe_answer(&live.fold, &d.event);
            let t = std::time::Instant::now();
            if live.fold.apply(&d.event) == Applied::OutOfOrder {
                out_of_order.insert(d.session_id.clone());
            }
            fold_time += t.elapsed();
            if d.accepted_us > 0 {
                #[allow(clippy::cast_precision_loss)]
                fold_latency.observe((wall_us() - d.accepted_us).max(0) as f64 / 1e6);
                if live.uncovered_since_us == 0 || d.accepted_us < live.uncovered_since_us {
                    live.uncovered_since_us = d.accepted_us;
                }
            }
            touched.insert(d.session_id.clone());
        }
        // The writer stores the verdict after this batch, whenever it is handed over.
        let now_us = wall_us();
        for sid in &touched {
            let due = self.verdict_due(sid, now_us);
            self.live.mark(sid, due);
        }
        m.fold_duration
            .with_label_values(&["apply"])
            .observe(fold_time.as_secs_f64());
        let rows: Arc<Vec<(String, Event)>> =
            Arc::new(batch.into_iter().map(|d| (d.session_id, d.event)).collect());
        self.in_flight_events += rows.len();
        self.in_flight.push_back(InFlight {
            rows: rows.clone(),
            touched,
            out_of_order,
            ack,
        });
        if self.jobs.send(Job::Events(rows)).is_err() {
            tracing::error!(
                partition = self.partition,
                "The store writer is gone; events stay unacknowledged."
            );
        }
    }

    /// What follows a finished write: for stored events, the re-folds, timers, verdicts and
    /// acknowledgement; for stored verdicts, the pushes.
    async fn on_done(&mut self, done: Done) {
        match done {
            Done::Events => {
                let Some(f) = self.in_flight.pop_front() else {
                    return;
                };
                self.in_flight_events -= f.rows.len();
                // An event older than its session's folded state is folded again from the
                // log, which holds it now.
                for sid in &f.out_of_order {
                    if let Err(e) = self.refold(sid).await {
                        tracing::warn!(session = %sid, error = %e, "Failed to re-fold a session.");
                    }
                    let due = self.verdict_due(sid, wall_us());
                    self.live.mark(sid, due);
                }
                let now = self.app.now();
                let mut appended = BTreeSet::new();
                for sid in f.touched {
                    if self.run_timers(&sid, now).await {
                        appended.insert(sid);
                    }
                }
                self.mark_dirty(appended);
                // When more stored batches are already reported, the last of them hands over
                // the due verdicts: fewer, larger verdict writes.
                if self.done.is_empty() {
                    self.flush(false, now);
                }
                if !f.ack.is_empty()
                    && let Some(ack) = &self.ack
                    && ack.send(f.ack).is_err()
                {
                    tracing::warn!(
                        partition = self.partition,
                        "The partition reader is gone; stored events stay pending."
                    );
                }
            }
            Done::Verdicts { stored, stale } => {
                self.verdicts_in_flight = self.verdicts_in_flight.saturating_sub(1);
                if !stale.is_empty() {
                    tracing::info!(
                        sessions = stale.len(),
                        "Verdicts behind the log (another worker appended); re-folding them."
                    );
                    let due = wall_us();
                    for sid in stale {
                        if let Err(e) = self.refold(&sid).await {
                            tracing::warn!(session = %sid, error = %e, "Failed to re-fold a session.");
                        }
                        self.live.mark(&sid, due);
                    }
                }
                self.push_effects(stored).await;
                if self.done.is_empty() {
                    let now = self.app.now();
                    self.flush(false, now);
                }
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = self.app.now();
        if self.caught_up_at > Millis(0) {
            #[allow(clippy::cast_precision_loss)]
            let behind = now.saturating_sub(self.caught_up_at) as f64 / 1000.0;
            crate::metrics::metrics()
                .unheard
                .with_label_values(&[&self.partition.to_string()])
                .set(behind);
        }
        let ids = self.live.ids();
        let mut touched = BTreeSet::new();
        for sid in ids {
            if self.run_timers(&sid, now).await {
                touched.insert(sid);
            }
        }
        self.mark_dirty(touched);
        self.flush(false, now);
    }

    /// Marks sessions whose timers appended server events as behind (`verdict_due`).
    fn mark_dirty(&mut self, touched: BTreeSet<String>) {
        let now_us = wall_us();
        for sid in touched {
            let due = self.verdict_due(&sid, now_us);
            self.live.mark(&sid, due);
        }
    }

    /// When a session's next verdict is due (wall-clock µs): at once if it ended; else
    /// `VERDICT_LAG_US` after its oldest uncovered event was accepted (a gateway clock ahead
    /// of this one counts as now), but not before `VERDICT_GAP_US` after its previous one.
    fn verdict_due(&self, sid: &str, now_us: i64) -> i64 {
        let Some(live) = self.live.get(sid) else {
            return now_us;
        };
        if live.fold.ended() {
            return 0;
        }
        let since = live.uncovered_since_us.clamp(0, now_us);
        (if since > 0 { since } else { now_us } + VERDICT_LAG_US)
            .max(live.last_verdict_us + VERDICT_GAP_US)
    }

    /// Hands the verdicts that are due to the writer (`verdict_due`); every dirty one when
    /// `all`. The writer stores them after every batch already folded into them; `on_done`
    /// pushes their effects.
    ///
    /// Unless `all`, nothing is handed over while a verdict job is still queued or being
    /// written: what falls due meanwhile goes in the next job, once that one is done. A store
    /// that falls behind thus gets fewer, larger verdict writes rather than a verdict per
    /// session per check, so the verdict load cannot feed on its own backlog.
    fn flush(&mut self, all: bool, now: Millis) {
        if !self.live.any_due() || (!all && self.verdicts_in_flight > 0) {
            return;
        }
        let now_us = wall_us();
        // A fold that set an out-of-order event aside is incomplete until the re-fold that
        // follows its batch's store: its verdict waits for that (the fence compares only the
        // highest sequence numbers, which such an event does not raise).
        let in_flight = &self.in_flight;
        let due = self.live.take_due(now_us, all, |sid| {
            in_flight.iter().any(|f| f.out_of_order.contains(sid))
        });
        let t = std::time::Instant::now();
        let mut batch = Vec::with_capacity(due.len());
        for sid in &due {
            if let Some(live) = self.live.get_mut(sid) {
                live.last_verdict_us = now_us;
                // The records closed since the last hand-over go with the verdict; the fold
                // drops them once the store confirms (`push_effects`).
                let upto = live.fold.closed();
                let records = live.fold.closed_records(&live.sent);
                live.sent = upto;
                batch.push(Due {
                    verdict: live.fold.verdict(),
                    client_seq: live.fold.last_seq(Origin::Client),
                    server_seq: live.fold.last_seq(Origin::Server),
                    uncovered_since_us: std::mem::take(&mut live.uncovered_since_us),
                    released: live.fold.released(),
                    records,
                    upto,
                    epoch: live.epoch,
                });
            }
        }
        if batch.is_empty() {
            return;
        }
        crate::metrics::metrics()
            .fold_duration
            .with_label_values(&["verdicts"])
            .observe(t.elapsed().as_secs_f64());
        self.verdicts_in_flight += 1;
        if self.jobs.send(Job::Verdicts { batch, now }).is_err() {
            self.verdicts_in_flight -= 1;
            tracing::error!(
                partition = self.partition,
                "The store writer is gone; verdicts are not stored."
            );
        }
    }

    /// Appends whatever the timers call for now. Returns whether anything was appended.
    async fn run_timers(&mut self, sid: &str, now: Millis) -> bool {
        if self
            .lease_until_us
            .as_ref()
            .is_some_and(|until| wall_us() >= until.load(Ordering::SeqCst))
        {
            return false;
        }
        let Some(live) = self.live.get(sid) else {
            return false;
        };
        if live.fold.ended() {
            return false;
        }
        let profile = live.fold.profile_shared().clone();
        let mut appended = false;
        // Silence is known only up to where the feed is caught up: later events may still
        // be on the bus.
        let heard_up_to = self.caught_up_at.min(now);
        if heard_up_to.saturating_sub(live.last_client_at) > profile.single_window.lease_ttl_ms {
            let body = EventBody::Terminated {
                reason: TerminationReason::LeaseExpired,
                position_ms: None,
            };
            return self.append(sid, body, now).await;
        }
        let expired = schedule::expired(&live.fold, heard_up_to);
        // Built only when something expired: this runs for every touched session per batch.
        let kinds: HashMap<String, ChallengeKind> = if expired.is_empty() {
            HashMap::new()
        } else {
            live.fold
                .outstanding()
                .into_iter()
                .map(|o| (o.nonce, o.kind))
                .collect()
        };
        for nonce in expired {
            let kind = kinds.get(&nonce).copied();
            let stored = self
                .append(sid, EventBody::ChallengeExpired { nonce }, now)
                .await;
            if stored && let Some(kind) = kind {
                crate::metrics::metrics()
                    .challenges_missed
                    .with_label_values(&[crate::metrics::kind_label(kind)])
                    .inc();
            }
            appended |= stored;
        }
        let Some(live) = self.live.get(sid) else {
            return appended;
        };
        for kind in schedule::due(&live.fold, &live.plan, now) {
            appended |= self.issue(sid, kind, &profile, now).await;
        }
        appended
    }

    async fn issue(
        &mut self,
        sid: &str,
        kind: ChallengeKind,
        profile: &Profile,
        now: Millis,
    ) -> bool {
        let nonce = format!("{:032x}", self.rng.random::<u128>());
        let deadline = now.plus(schedule::deadline_ms(profile, kind));
        // The pop-up code is the logged, random choice; the message (decoys, prompt) is made
        // the same way as for a reconnecting socket.
        let expected = match kind {
            ChallengeKind::Popup => Some(format!("{:04}", self.rng.random_range(0..10_000))),
            ChallengeKind::Snapshot | ChallengeKind::FaceRecheck | ChallengeKind::Liveness => None,
        };
        let body = EventBody::ChallengeIssued {
            nonce: nonce.clone(),
            kind,
            deadline,
            expected: expected.clone(),
        };
        if !self.append(sid, body, now).await {
            return false;
        }
        crate::metrics::metrics()
            .challenges_issued
            .with_label_values(&[crate::metrics::kind_label(kind)])
            .inc();
        if let Some(live) = self.live.get_mut(sid) {
            let Live { plan, fold, .. } = live;
            let rng = &mut self.rng;
            plan.after_issue(kind, fold, &mut || rng.random::<u64>());
        }
        self.app
            .push(
                sid,
                ServerMsg::Challenge(ChallengeMsg::new(nonce, kind, deadline, expected, now)),
            )
            .await;
        true
    }

    /// Stores a server event, then folds it.
    async fn append(&mut self, sid: &str, body: EventBody, now: Millis) -> bool {
        let Some(live) = self.live.get(sid) else {
            return false;
        };
        let at = live.fold.next_server_at(now);
        let seq = match self.app.store.next_server_seq(sid).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(session = %sid, error = %e, "Failed to reserve a server sequence number; the timer retries next tick.");
                return false;
            }
        };
        let event = Event {
            origin: Origin::Server,
            seq,
            at,
            body,
        };
        if let Err(e) = self
            .app
            .store
            .append_events(&[(sid.to_owned(), event.clone())])
            .await
        {
            tracing::warn!(session = %sid, error = %e, "Failed to store a server event; the timer retries next tick.");
            return false;
        }
        if let Some(live) = self.live.get_mut(sid) {
            live.fold.apply(&event);
        }
        true
    }

    /// Pushes what stored verdicts changed: credit, new warnings, and the end of a session;
    /// releases the records stored with them from the folds that handed them over.
    async fn push_effects(&mut self, stored: Vec<Due>) {
        // Every message and close of the batch goes out together (one Redis round trip), in
        // order; ended sessions are let go after that.
        let mut out: Vec<(String, Outbound)> = Vec::new();
        let mut ended: Vec<(String, String)> = Vec::new();
        for due in stored {
            let Due {
                verdict: v,
                uncovered_since_us,
                released,
                upto,
                epoch,
                ..
            } = due;
            let sid = v.session_id.as_str().to_owned();
            let Some(live) = self.live.get_mut(&sid) else {
                continue;
            };
            if live.epoch == epoch {
                live.fold.release(&upto);
            }
            if uncovered_since_us > 0 {
                #[allow(clippy::cast_precision_loss)]
                crate::metrics::metrics()
                    .event_latency
                    .with_label_values(&["verdict"])
                    .observe((wall_us() - uncovered_since_us).max(0) as f64 / 1e6);
            }
            let credit = (
                v.credited_ms,
                v.provisional_ms,
                v.lesson_coverage_ms,
                v.lesson_complete,
            );
            if credit != live.pushed {
                live.pushed = credit;
                out.push((
                    sid.clone(),
                    msg(ServerMsg::Credit {
                        credited_ms: v.credited_ms,
                        provisional_ms: v.provisional_ms,
                        lesson_coverage_ms: v.lesson_coverage_ms,
                        lesson_complete: v.lesson_complete,
                    }),
                ));
            }
            // The head's findings of a rule start at its released count; those below what was
            // pushed already (per rule) are not pushed again.
            let mut fresh = Vec::new();
            for r in &v.rules {
                let i = r.rule.index();
                let first = released.findings[i];
                let seen = live.findings_seen[i];
                let skip = usize::try_from(seen.saturating_sub(first)).unwrap_or(usize::MAX);
                fresh.extend(r.findings.iter().skip(skip).map(|f| (r.rule, f)));
                let end = first.saturating_add(u32::try_from(r.findings.len()).unwrap_or(u32::MAX));
                live.findings_seen[i] = seen.max(end);
            }
            for (rule, f) in fresh {
                crate::metrics::metrics()
                    .violations
                    .with_label_values(&[rule.code(), &*live.platform])
                    .inc();
                out.push((
                    sid.clone(),
                    msg(ServerMsg::Warning {
                        rule: rule.code().to_owned(),
                        code: serde_json::to_value(f.code)
                            .ok()
                            .and_then(|c| c.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        message: f.detail.clone(),
                    }),
                ));
            }
            if v.ended {
                crate::metrics::metrics()
                    .verdicts
                    .with_label_values(&[if v.counts { "counts" } else { "not_counted" }])
                    .inc();
                let reason = v.termination.unwrap_or(TerminationReason::Server);
                out.push((sid.clone(), msg(ServerMsg::Ended { reason })));
                out.push((
                    sid.clone(),
                    Outbound::Close(close::SESSION_ENDED, "session ended".to_owned()),
                ));
                ended.push((sid, live.fold.context().learner_id.as_str().to_owned()));
            }
        }
        self.app.effects(out).await;
        for (sid, learner_id) in ended {
            // The gateways forget the session's seq on the `SESSION_ENDED` close just sent.
            self.app.lease_release(&learner_id, &sid).await;
            // A session whose fold changed after this verdict was computed (a re-fold)
            // stays live until its next verdict is stored.
            if !self.live.is_due(&sid) {
                self.live.remove(&sid);
            }
        }
    }
}

fn msg(m: ServerMsg) -> Outbound {
    Outbound::Msg(Box::new(m))
}
