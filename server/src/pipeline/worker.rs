//! A partition worker. Per batch: persist the events (idempotent) → fold them → let the
//! scheduler append server events (challenges, expiries, lease loss) → persist verdicts →
//! push effects. Invariants: an event is folded only after it is stored, so a restart
//! replays the store and reaches the same state; every server event gets its sequence
//! number from the store's per-session counter; effects are pushed only after the verdict
//! they reflect is stored. Random choices (when to challenge, nonces, pop-up codes) are made
//! here, never in the domain, and are written to the log as events.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};

use crate::adapters::bus::{Delivery, partition_of};
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
    rng: StdRng,
}

const MAX_BATCH: usize = 2048;

impl Worker {
    pub fn new(app: Arc<App>, partition: usize, partitions: usize) -> Worker {
        Worker {
            app,
            partition,
            partitions,
            live: HashMap::new(),
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
                    _ = shutdown.changed() => { draining = true; continue; }
                    b = part.next_batch(MAX_BATCH, period) => b,
                }
            };
            match batch {
                Ok(Batch::NotOwner) | Ok(Batch::Lost) if draining => break,
                Ok(Batch::NotOwner) => {}
                Ok(Batch::Acquired) => {
                    tracing::info!(partition = self.partition, "Took ownership of a partition.");
                    self.live.clear();
                    self.adopt_open_sessions().await;
                }
                Ok(Batch::Lost) => {
                    tracing::info!(partition = self.partition, "Gave up or lost a partition.");
                    self.live.clear();
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
                for s in open.into_iter().filter(|s| partition_of(&s.id, of) == mine) {
                    if let Err(e) = self.load(&s.id).await {
                        tracing::warn!(session = %s.id, error = %e, "Failed to adopt an open session.");
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
        let profile = Profile::find(&rec.profile).map_err(|e| AppError::Internal(e.to_string()))?;
        let events = self.app.store.events(session_id).await?;
        let fold = SessionFold::refold(profile.clone(), ctx, events);
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
            },
        );
        Ok(())
    }

    async fn process(&mut self, batch: Vec<Delivery>) {
        let rows: Vec<(String, Event)> = batch
            .iter()
            .map(|d| (d.session_id.clone(), d.event.clone()))
            .collect();
        // Persist first. A store outage holds the batch here (retrying) rather than dropping
        // it: the bus's bounded channels then push back on the gateways.
        let mut delay = Duration::from_millis(50);
        while let Err(e) = self.app.store.append_events(&rows).await {
            tracing::warn!(error = %e, batch = rows.len(), "Failed to store events; retrying.");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        let mut touched = BTreeSet::new();
        for d in batch {
            if !self.live.contains_key(&d.session_id)
                && let Err(e) = self.load(&d.session_id).await
            {
                tracing::warn!(session = %d.session_id, error = %e, "Failed to load a session; its event stays stored.");
                continue;
            }
            let Some(live) = self.live.get_mut(&d.session_id) else {
                continue;
            };
            if d.event.origin == Origin::Client {
                live.last_client_at = live.last_client_at.max(d.event.at);
            }
            if live.fold.apply(&d.event) == Applied::OutOfOrder {
                // Re-fold from the store, which already holds this event.
                self.live.remove(&d.session_id);
                if let Err(e) = self.load(&d.session_id).await {
                    tracing::warn!(session = %d.session_id, error = %e, "Failed to re-fold a session.");
                    continue;
                }
            }
            touched.insert(d.session_id);
        }
        let now = self.app.now();
        for sid in &touched {
            self.run_timers(sid, now).await;
        }
        self.persist_and_push(&touched, now).await;
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
        self.persist_and_push(&touched, now).await;
    }

    /// Appends whatever the timers call for now. Returns whether anything was appended.
    async fn run_timers(&mut self, sid: &str, now: Millis) -> bool {
        let Some(live) = self.live.get(sid) else {
            return false;
        };
        if live.fold.ended() {
            return false;
        }
        let profile = live.fold.profile().clone();
        let mut appended = false;
        if now.saturating_sub(live.last_client_at) > profile.single_window.lease_ttl_ms {
            let body = EventBody::Terminated {
                reason: TerminationReason::LeaseExpired,
                position_ms: None,
            };
            return self.append(sid, body, now).await;
        }
        for nonce in schedule::expired(&live.fold, now) {
            appended |= self
                .append(sid, EventBody::ChallengeExpired { nonce }, now)
                .await;
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
        let verdicts: Vec<_> = touched
            .iter()
            .filter_map(|s| self.live.get(s))
            .map(|l| l.fold.verdict())
            .collect();
        let refs: Vec<_> = verdicts.iter().collect();
        let mut delay = Duration::from_millis(50);
        while let Err(e) = self.app.store.save_verdicts(&refs, now).await {
            tracing::warn!(error = %e, "Failed to store verdicts; retrying.");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        for v in verdicts {
            let sid = v.session_id.as_str().to_owned();
            let Some(live) = self.live.get_mut(&sid) else {
                continue;
            };
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
