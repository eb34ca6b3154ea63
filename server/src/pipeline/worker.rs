//! A partition worker. Per batch: fold the events into the in-memory state → persist them
//! (idempotent) → let the scheduler append server events (challenges, expiries, lease loss)
//! → persist verdicts → push effects (and, on Redis, acknowledge). Invariants: nothing
//! derived from an event (a server event, a verdict, an effect, an acknowledgement) leaves
//! the worker before the event is stored, so a restart replays the store and reaches the
//! same state; every server event gets its sequence
//! number from the store's per-session counter; effects are pushed only after the verdict
//! they reflect is stored. Random choices (when to challenge, nonces, pop-up codes) are made
//! here, never in the domain, and are written to the log as events.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};

use crate::adapters::bus::{Delivery, partition_of, wall_us};
use crate::adapters::redis::bus::{Batch, RedisPartition};
use crate::app::protocol::{ChallengeMsg, ServerMsg, close};
use crate::app::{App, AppError};
use crate::domain::schedule::{self, ChallengePlan};
use crate::domain::{
    Applied, ChallengeKind, Event, EventBody, Millis, Origin, Profile, SessionContext, SessionFold,
    TerminationReason,
};

/// Per-session worker state. Not evidence: everything that decides credit is in the fold,
/// which is rebuilt from the log when missing.
#[derive(Debug)]
struct Live {
    fold: SessionFold,
    plan: ChallengePlan,
    learner_id: String,
    last_client_at: Millis,
    pushed: (i64, i64, i64, bool),
    findings_seen: usize,
    /// The platform's name: the `platform` label of `proctor_violations_total`.
    platform: String,
    /// When the gateway accepted the oldest event not yet covered by a stored verdict
    /// (wall-clock µs; 0: none). For `proctor_event_latency_seconds{stage="verdict"}`.
    uncovered_since_us: i64,
}

/// Where a worker's events come from.
#[derive(Debug)]
pub enum Source {
    /// The in-process bus: this worker's partition channel.
    Memory(mpsc::Receiver<Delivery>),
    /// A Redis Streams partition, owned while this worker holds its lease.
    Redis(RedisPartition),
}

/// One partition's consumer.
#[derive(Debug)]
pub struct Worker {
    app: Arc<App>,
    partition: usize,
    partitions: usize,
    live: HashMap<String, Live>,
    /// One shared copy of each profile the live sessions use.
    profiles: HashMap<String, Arc<Profile>>,
    /// Sessions whose stored verdict is behind their fold, with when that began. Verdicts are
    /// computed and stored at most every `VERDICT_EVERY` per session (at once when a session
    /// ends), not once per batch.
    dirty: HashMap<String, std::time::Instant>,
    rng: StdRng,
}

const MAX_BATCH: usize = 2048;

/// How long a session's stored verdict may lag its fold (real time). The log is stored before
/// anything is acknowledged, so a verdict that lags is recomputed from the log, never lost.
const VERDICT_EVERY: Duration = Duration::from_millis(200);

impl Worker {
    pub fn new(app: Arc<App>, partition: usize, partitions: usize) -> Worker {
        Worker {
            app,
            partition,
            partitions,
            live: HashMap::new(),
            profiles: HashMap::new(),
            dirty: HashMap::new(),
            rng: StdRng::from_os_rng(),
        }
    }

    /// Runs until `shutdown` flips to true. From the in-process bus it then drains what was
    /// already accepted; from Redis it gives the partition back (unacknowledged entries stay
    /// pending for the next owner).
    pub async fn run(self, source: Source, shutdown: watch::Receiver<bool>) {
        match source {
            Source::Memory(rx) => self.run_memory(rx, shutdown).await,
            Source::Redis(part) => self.run_redis(part, shutdown).await,
        }
    }

    /// Timers run on server time: one server second, but at least every 10 ms real.
    fn tick_period(&self) -> Duration {
        let tick_ms = (1000.0 / self.app.clock.scale()).clamp(10.0, 1000.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Duration::from_millis(tick_ms as u64)
    }

    async fn run_memory(
        mut self,
        mut rx: mpsc::Receiver<Delivery>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.adopt_open_sessions().await;
        let mut tick = tokio::time::interval(self.tick_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                d = rx.recv() => match d {
                    Some(d) => {
                        let mut batch = vec![d];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(d) => batch.push(d),
                                Err(_) => break,
                            }
                        }
                        self.process(batch).await;
                    }
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        // Drain: everything a gateway accepted before the bus closed is folded and stored.
        rx.close();
        let mut batch = Vec::new();
        while let Some(d) = rx.recv().await {
            batch.push(d);
        }
        let n = batch.len();
        if n > 0 {
            self.process(batch).await;
        }
        let now = self.app.now();
        self.flush(true, now).await;
        tracing::info!(
            partition = self.partition,
            drained = n,
            "Worker stopped after draining its partition."
        );
    }

    async fn run_redis(mut self, mut part: RedisPartition, mut shutdown: watch::Receiver<bool>) {
        let period = self.tick_period();
        let mut last_tick = tokio::time::Instant::now();
        // After the shutdown signal the gateway has stopped publishing: keep reading until the
        // partition has nothing new, so what this process accepted is stored before it exits.
        let mut draining = false;
        loop {
            let batch = if draining {
                part.next_batch(MAX_BATCH, Duration::from_millis(50)).await
            } else {
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => {
                        // The read in flight was dropped; what it was handed is pending.
                        part.recover_pending();
                        draining = true;
                        continue;
                    }
                    b = part.next_batch(MAX_BATCH, period) => b,
                }
            };
            match batch {
                Ok(Batch::NotOwner) | Ok(Batch::Lost) if draining => break,
                Ok(Batch::NotOwner) => {}
                Ok(Batch::Acquired) => {
                    tracing::info!(partition = self.partition, "Took ownership of a partition.");
                    self.live.clear();
                    self.dirty.clear();
                    self.adopt_open_sessions().await;
                }
                Ok(Batch::Lost) => {
                    tracing::info!(partition = self.partition, "Gave up or lost a partition.");
                    self.live.clear();
                    self.dirty.clear();
                }
                Ok(Batch::Events(entries)) => {
                    if entries.is_empty() && draining {
                        break;
                    }
                    let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
                    let batch: Vec<Delivery> = entries.into_iter().filter_map(|(_, d)| d).collect();
                    if !batch.is_empty() {
                        self.process(batch).await;
                    }
                    // Acknowledge only now: the events and verdicts are stored.
                    let mut delay = Duration::from_millis(50);
                    while let Err(e) = part.ack(&ids).await {
                        tracing::warn!(error = %e, "Failed to acknowledge stream entries; retrying.");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        if draining {
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(partition = self.partition, error = %e, "Failed to read the partition stream; retrying.");
                    if draining {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            if !draining && last_tick.elapsed() >= period {
                last_tick = tokio::time::Instant::now();
                self.on_tick().await;
            }
        }
        let now = self.app.now();
        self.flush(true, now).await;
        part.release().await;
        tracing::info!(
            partition = self.partition,
            "Worker stopped and gave its partition back."
        );
    }

    /// Loads sessions that were open at start-up, so their timers (deadlines, lease expiry)
    /// run even if no event arrives.
    async fn adopt_open_sessions(&mut self) {
        match self.app.store.open_sessions().await {
            Ok(open) => {
                let (mine, of) = (self.partition, self.partitions);
                let at = std::time::Instant::now();
                for s in open.into_iter().filter(|s| partition_of(&s.id, of) == mine) {
                    match self.load(&s.id).await {
                        // A previous owner may have died with this verdict behind the log.
                        Ok(()) => {
                            self.dirty.insert(s.id.clone(), at);
                        }
                        Err(e) => {
                            tracing::warn!(session = %s.id, error = %e, "Failed to adopt an open session.");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Failed to list open sessions at start-up."),
        }
    }

    /// Builds a session's fold from its stored log.
    async fn load(&mut self, session_id: &str) -> Result<(), AppError> {
        let (rec, ctx) = self
            .app
            .store
            .session(session_id)
            .await?
            .ok_or(AppError::NotFound("session"))?;
        let ctx: SessionContext =
            serde_json::from_str(&ctx).map_err(|e| AppError::Internal(e.to_string()))?;
        let key = rec.profile.to_string();
        let profile = match self.profiles.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(
                    Profile::find(&rec.profile).map_err(|e| AppError::Internal(e.to_string()))?,
                );
                self.profiles.insert(key, p.clone());
                p
            }
        };
        let events = self.app.store.events(session_id).await?;
        let platform = match self.app.store.platform(&rec.platform_id).await {
            Ok(Some(p)) => p.name,
            Ok(None) | Err(_) => "unknown".to_owned(),
        };
        let t = std::time::Instant::now();
        let fold = SessionFold::refold(profile.clone(), ctx, events);
        crate::metrics::metrics()
            .fold_duration
            .with_label_values(&["refold"])
            .observe(t.elapsed().as_secs_f64());
        let findings_seen = count_findings(&fold);
        // Snapshot points continue the enrolment's 课时 grid, so a 课时 that spans sessions
        // still gets its snapshots.
        let (credited_before, snapshots_in_hour) =
            self.app.enrolment_progress(&rec, &profile).await?;
        let plan = ChallengePlan::draw_continuing(
            &profile,
            credited_before,
            snapshots_in_hour,
            &mut || self.rng.random::<u64>(),
        );
        let last_client_at = fold.last_event_at();
        let v = fold.verdict();
        self.live.insert(
            session_id.to_owned(),
            Live {
                fold,
                plan,
                learner_id: rec.learner_id,
                last_client_at,
                pushed: (
                    v.credited_ms,
                    v.provisional_ms,
                    v.lesson_coverage_ms,
                    v.lesson_complete,
                ),
                findings_seen,
                platform,
                uncovered_since_us: 0,
            },
        );
        Ok(())
    }

    /// `load`, waiting out a store outage: the batch is not acknowledged until its sessions
    /// are folded, so giving up here would leave a stored event out of the verdict.
    async fn load_retrying(&mut self, session_id: &str) -> Result<(), AppError> {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.load(session_id).await {
                Err(AppError::Unavailable { .. }) => {
                    tracing::warn!(session = %session_id, "The store is unavailable; retrying the session's load.");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Rebuilds a live session's fold from the log, keeping what was already pushed to the
    /// learner: findings not yet pushed (and counted in `proctor_violations_total`) stay
    /// unpushed, so a re-fold never swallows a warning.
    async fn refold(&mut self, session_id: &str) -> Result<(), AppError> {
        let before = self
            .live
            .remove(session_id)
            .map(|l| (l.findings_seen, l.pushed, l.uncovered_since_us));
        self.load_retrying(session_id).await?;
        if let (Some((seen, pushed, uncovered)), Some(live)) =
            (before, self.live.get_mut(session_id))
        {
            live.findings_seen = seen;
            live.pushed = pushed;
            live.uncovered_since_us = uncovered;
        }
        Ok(())
    }

    async fn process(&mut self, batch: Vec<Delivery>) {
        let m = crate::metrics::metrics();
        // Fold first: the in-memory state is current as soon as the batch arrives (the
        // `fold` latency). Nothing derived from it leaves the worker (server events, verdicts,
        // pushes, acknowledgements) before the batch is stored below, so a crash in between
        // loses nothing that a replay of the store would not rebuild.
        let mut fold_time = Duration::ZERO;
        let fold_latency = m.event_latency.with_label_values(&["fold"]);
        let mut touched = BTreeSet::new();
        let mut out_of_order = BTreeSet::new();
        for d in &batch {
            // A session loaded now reads the log without this batch; the batch's events are
            // then applied on top (and duplicates of stored ones are ignored by the fold).
            if !self.live.contains_key(&d.session_id)
                && let Err(e) = self.load_retrying(&d.session_id).await
            {
                tracing::warn!(session = %d.session_id, error = %e, "Failed to load a session; its event is stored, not folded.");
                continue;
            }
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
        m.fold_duration
            .with_label_values(&["apply"])
            .observe(fold_time.as_secs_f64());
        let rows: Vec<(String, Event)> =
            batch.into_iter().map(|d| (d.session_id, d.event)).collect();
        // Persist. A store outage holds the batch here (retrying) rather than dropping it: the
        // bus's bounded channels then push back on the gateways.
        let mut delay = Duration::from_millis(50);
        while let Err(e) = self.app.store.append_events(&rows).await {
            tracing::warn!(error = %e, batch = rows.len(), "Failed to store events; retrying.");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        m.events_persisted.inc_by(rows.len() as u64);
        // An event older than its session's folded state is folded again from the log, which
        // holds it now.
        for sid in &out_of_order {
            if let Err(e) = self.refold(sid).await {
                tracing::warn!(session = %sid, error = %e, "Failed to re-fold a session.");
            }
        }
        let now = self.app.now();
        for sid in &touched {
            self.run_timers(sid, now).await;
        }
        self.mark_dirty(touched);
        self.flush(false, now).await;
    }

    async fn on_tick(&mut self) {
        let now = self.app.now();
        let ids: Vec<String> = self.live.keys().cloned().collect();
        let mut touched = BTreeSet::new();
        for sid in ids {
            if self.run_timers(&sid, now).await {
                touched.insert(sid);
            }
        }
        self.mark_dirty(touched);
        self.flush(false, now).await;
    }

    fn mark_dirty(&mut self, touched: BTreeSet<String>) {
        let at = std::time::Instant::now();
        for sid in touched {
            self.dirty.entry(sid).or_insert(at);
        }
    }

    /// Stores (and pushes) the verdicts that are due: sessions that ended, or whose stored
    /// verdict has lagged for `VERDICT_EVERY`; every dirty one when `all`.
    async fn flush(&mut self, all: bool, now: Millis) {
        if self.dirty.is_empty() {
            return;
        }
        let due: BTreeSet<String> = self
            .dirty
            .iter()
            .filter(|(sid, since)| {
                all || since.elapsed() >= VERDICT_EVERY
                    || self.live.get(*sid).is_none_or(|l| l.fold.ended())
            })
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in &due {
            self.dirty.remove(sid);
        }
        self.persist_and_push(&due, now).await;
    }

    /// Appends whatever the timers call for now. Returns whether anything was appended.
    async fn run_timers(&mut self, sid: &str, now: Millis) -> bool {
        let Some(live) = self.live.get(sid) else {
            return false;
        };
        if live.fold.ended() {
            return false;
        }
        let profile = live.fold.profile_shared().clone();
        let mut appended = false;
        if now.saturating_sub(live.last_client_at) > profile.single_window.lease_ttl_ms {
            let body = EventBody::Terminated {
                reason: TerminationReason::LeaseExpired,
                position_ms: None,
            };
            return self.append(sid, body, now).await;
        }
        let expired = schedule::expired(&live.fold, now);
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
        let (expected, choices, prompt) = match kind {
            ChallengeKind::Popup => {
                let code = format!("{:04}", self.rng.random_range(0..10_000));
                let mut choices = vec![code.clone()];
                while choices.len() < 3 {
                    let c = format!("{:04}", self.rng.random_range(0..10_000));
                    if !choices.contains(&c) {
                        choices.push(c);
                    }
                }
                let at = self.rng.random_range(0..choices.len());
                choices.swap(0, at);
                (
                    Some(code.clone()),
                    choices,
                    format!("请选择 {code} 继续学习 / Pick {code} to continue"),
                )
            }
            ChallengeKind::Snapshot => {
                (None, vec![], "Taking a photo for your study record".into())
            }
            ChallengeKind::FaceRecheck => (
                None,
                vec![],
                "Please look at the camera for a face check".into(),
            ),
            // Issued by the gateway when the client asks (`app::liveness`), never planned.
            ChallengeKind::Liveness => (None, vec![], String::new()),
        };
        let body = EventBody::ChallengeIssued {
            nonce: nonce.clone(),
            kind,
            deadline,
            expected,
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
                ServerMsg::Challenge(ChallengeMsg {
                    nonce,
                    kind,
                    deadline,
                    deadline_in_ms: deadline.0 - now.0,
                    choices,
                    prompt,
                }),
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

    async fn persist_and_push(&mut self, touched: &BTreeSet<String>, now: Millis) {
        if touched.is_empty() {
            return;
        }
        let mut pending: Vec<String> = touched.iter().cloned().collect();
        let mut verdicts = Vec::with_capacity(pending.len());
        // A verdict is stored only if its fold saw the whole log (fenced by the log's highest
        // sequence numbers). A fold that missed events another worker appended (two workers
        // briefly owning a partition) is rebuilt from the log and tried again.
        for _attempt in 0..5 {
            let batch: Vec<_> = pending
                .iter()
                .filter_map(|s| self.live.get(s))
                .map(|l| {
                    (
                        l.fold.verdict(),
                        l.fold.last_seq(Origin::Client),
                        l.fold.last_seq(Origin::Server),
                    )
                })
                .collect();
            let refs: Vec<_> = batch.iter().map(|(v, c, s)| (v, *c, *s)).collect();
            let mut delay = Duration::from_millis(50);
            let stale = loop {
                match self.app.store.save_verdicts_fenced(&refs, now).await {
                    Ok(stale) => break stale,
                    Err(e) => {
                        tracing::warn!(error = %e, "Failed to store verdicts; retrying.");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            };
            verdicts.extend(
                batch
                    .into_iter()
                    .map(|(v, _, _)| v)
                    .filter(|v| !stale.iter().any(|s| s == v.session_id.as_str())),
            );
            if stale.is_empty() {
                break;
            }
            tracing::info!(
                sessions = stale.len(),
                "Verdicts behind the log (another worker appended); re-folding them."
            );
            for sid in &stale {
                if let Err(e) = self.refold(sid).await {
                    tracing::warn!(session = %sid, error = %e, "Failed to re-fold a session.");
                }
            }
            pending = stale;
        }
        for v in verdicts {
            let sid = v.session_id.as_str().to_owned();
            let Some(live) = self.live.get_mut(&sid) else {
                continue;
            };
            if live.uncovered_since_us > 0 {
                #[allow(clippy::cast_precision_loss)]
                crate::metrics::metrics()
                    .event_latency
                    .with_label_values(&["verdict"])
                    .observe((wall_us() - live.uncovered_since_us).max(0) as f64 / 1e6);
                live.uncovered_since_us = 0;
            }
            let credit = (
                v.credited_ms,
                v.provisional_ms,
                v.lesson_coverage_ms,
                v.lesson_complete,
            );
            if credit != live.pushed {
                live.pushed = credit;
                self.app
                    .push(
                        &sid,
                        ServerMsg::Credit {
                            credited_ms: v.credited_ms,
                            provisional_ms: v.provisional_ms,
                            lesson_coverage_ms: v.lesson_coverage_ms,
                            lesson_complete: v.lesson_complete,
                        },
                    )
                    .await;
            }
            let findings: Vec<_> = v
                .rules
                .iter()
                .flat_map(|r| r.findings.iter().map(move |f| (r.rule, f)))
                .collect();
            for (rule, f) in findings.iter().skip(live.findings_seen) {
                crate::metrics::metrics()
                    .violations
                    .with_label_values(&[rule.code(), live.platform.as_str()])
                    .inc();
                self.app
                    .push(
                        &sid,
                        ServerMsg::Warning {
                            rule: rule.code().to_owned(),
                            code: serde_json::to_value(f.code)
                                .ok()
                                .and_then(|c| c.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            message: f.detail.clone(),
                        },
                    )
                    .await;
            }
            live.findings_seen = live.findings_seen.max(findings.len());
            if v.ended {
                crate::metrics::metrics()
                    .verdicts
                    .with_label_values(&[if v.counts { "counts" } else { "not_counted" }])
                    .inc();
                let reason = v.termination.unwrap_or(TerminationReason::Server);
                self.app.push(&sid, ServerMsg::Ended { reason }).await;
                self.app
                    .close_socket(&sid, close::SESSION_ENDED, "session ended")
                    .await;
                self.app.lease_release(&live.learner_id, &sid).await;
                self.app.hub.forget(&sid);
                self.live.remove(&sid);
            }
        }
    }
}

fn count_findings(fold: &SessionFold) -> usize {
    fold.verdict().rules.iter().map(|r| r.findings.len()).sum()
}
