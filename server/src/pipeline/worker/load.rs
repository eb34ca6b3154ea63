//! Building a session's live state: from the log plus the batches still in flight, several
//! sessions at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;

use super::{Live, Worker};
use crate::adapters::bus::partition_of;
use crate::app::{App, AppError};
use crate::domain::schedule::ChallengePlan;
use crate::domain::{Event, Profile, SessionContext, SessionFold};
use crate::model::SessionRecord;

impl Worker {
    /// Loads sessions that were open at start-up, so their timers (deadlines, lease expiry)
    /// run even if no event arrives.
    pub(super) async fn adopt_open_sessions(&mut self) {
        match self.app.store.open_sessions().await {
            Ok(open) => {
                let (mine, of) = (self.partition, self.partitions);
                let ids: Vec<String> = open
                    .into_iter()
                    .filter(|s| partition_of(&s.id, of) == mine)
                    .map(|s| s.id)
                    .collect();
                self.load_many(ids.clone()).await;
                // A previous owner may have died with these verdicts behind the log (a
                // session that did not load is not marked).
                let at = super::wall_us();
                for sid in ids {
                    self.live.mark(&sid, at);
                }
            }
            Err(e) => tracing::warn!(error = %e, "Failed to list open sessions at start-up."),
        }
    }

    /// Loads sessions that are not live yet, several at a time (each is a few store reads),
    /// waiting out a store outage like `load_retrying`. A session that cannot be loaded is
    /// logged and stays out.
    pub(super) async fn load_many(&mut self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let work: Vec<(String, Vec<Event>)> = ids
            .into_iter()
            .map(|sid| {
                let extra = self.in_flight_events_of(&sid);
                (sid, extra)
            })
            .collect();
        let (app, profiles) = (&self.app, &self.profiles);
        let fetched: Vec<(String, Result<Fetched, AppError>)> =
            futures_util::stream::iter(work.into_iter().map(|(sid, extra)| async move {
                let r = fetch_retrying(app, profiles, &sid, &extra).await;
                (sid, r)
            }))
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        for (sid, r) in fetched {
            match r {
                Ok(f) => self.install(f),
                Err(e) => {
                    tracing::warn!(session = %sid, error = %e, "Failed to load a session; its events are stored, not folded.");
                }
            }
        }
    }

    /// The events of the batches the writer has not stored yet, for one session.
    fn in_flight_events_of(&self, session_id: &str) -> Vec<Event> {
        self.in_flight
            .iter()
            .flat_map(|f| f.rows.iter())
            .filter(|(s, _)| s == session_id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Folds what `fetch` read and makes the session live.
    fn install(&mut self, f: Fetched) {
        let Fetched {
            rec,
            ctx,
            profile,
            events,
            platform,
            credited_before,
            snapshots_in_hour,
        } = f;
        self.profiles
            .entry(rec.profile.to_string())
            .or_insert_with(|| profile.clone());
        let t = std::time::Instant::now();
        let fold = SessionFold::refold(profile.clone(), ctx, events);
        crate::metrics::metrics()
            .fold_duration
            .with_label_values(&["refold"])
            .observe(t.elapsed().as_secs_f64());
        // Snapshot points continue the enrolment's 课时 grid, so a 课时 that spans sessions
        // still gets its snapshots.
        let plan = ChallengePlan::draw_continuing(
            &profile,
            credited_before,
            snapshots_in_hour,
            &mut || self.rng.random::<u64>(),
        );
        let platform = match self.platforms.get(platform.as_str()) {
            Some(p) => p.clone(),
            None => {
                let p: Arc<str> = platform.into();
                self.platforms.insert(p.clone());
                p
            }
        };
        // Compared only for equality with a verdict in flight: wrapping is harmless.
        self.next_epoch = self.next_epoch.wrapping_add(1);
        self.live
            .insert(Box::new(Live::new(fold, plan, platform, self.next_epoch)));
    }

    /// Builds a session's fold from its stored log and the batches still in flight, waiting
    /// out a store outage: the batch is not acknowledged until its sessions are folded, so
    /// giving up here would leave a stored event out of the verdict.
    async fn load_retrying(&mut self, session_id: &str) -> Result<(), AppError> {
        let extra = self.in_flight_events_of(session_id);
        let fetched = fetch_retrying(&self.app, &self.profiles, session_id, &extra).await?;
        self.install(fetched);
        Ok(())
    }

    /// Rebuilds a live session's fold from the log, keeping what was already pushed to the
    /// learner: findings not yet pushed (and counted in `proctor_violations_total`) stay
    /// unpushed, so a re-fold never swallows a warning.
    pub(super) async fn refold(&mut self, session_id: &str) -> Result<(), AppError> {
        let before = self
            .live
            .get(session_id)
            .map(|l| (l.findings_seen, l.pushed, l.uncovered_since_us));
        // The new fold replaces the old one in place, keeping its due time; a session that
        // cannot be loaded again is let go (its fold is known to be incomplete).
        if let Err(e) = self.load_retrying(session_id).await {
            self.live.remove(session_id);
            return Err(e);
        }
        if let (Some((seen, pushed, uncovered)), Some(live)) =
            (before, self.live.get_mut(session_id))
        {
            live.findings_seen = seen;
            live.pushed = pushed;
            live.uncovered_since_us = uncovered;
        }
        Ok(())
    }
}

/// How many sessions `load_many` reads at once.
const LOAD_CONCURRENCY: usize = 16;

/// What loading a session reads from the store.
#[derive(Debug)]
struct Fetched {
    rec: SessionRecord,
    ctx: SessionContext,
    profile: Arc<Profile>,
    /// The log, and `extra` (events not stored yet).
    events: Vec<Event>,
    platform: String,
    credited_before: i64,
    snapshots_in_hour: u32,
}

/// `fetch`, retrying while the store is unavailable.
async fn fetch_retrying(
    app: &App,
    profiles: &HashMap<String, Arc<Profile>>,
    session_id: &str,
    extra: &[Event],
) -> Result<Fetched, AppError> {
    let mut delay = Duration::from_millis(50);
    loop {
        match fetch(app, profiles, session_id, extra).await {
            Err(AppError::Unavailable { .. }) => {
                tracing::warn!(session = %session_id, "The store is unavailable; retrying the session's load.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Reads what a session's fold is built from; `extra` are its events still in flight.
async fn fetch(
    app: &App,
    profiles: &HashMap<String, Arc<Profile>>,
    session_id: &str,
    extra: &[Event],
) -> Result<Fetched, AppError> {
    let (rec, ctx) = app.session_with_context(session_id).await?;
    let profile = match profiles.get(&rec.profile.to_string()) {
        Some(p) => p.clone(),
        None => {
            Arc::new(Profile::find(&rec.profile).map_err(|e| AppError::Internal(e.to_string()))?)
        }
    };
    let mut events = app.store.events(session_id).await?;
    events.extend_from_slice(extra);
    let platform = match app.store.platform(&rec.platform_id).await {
        Ok(Some(p)) => p.name,
        Ok(None) | Err(_) => "unknown".to_owned(),
    };
    let (credited_before, snapshots_in_hour) = app.enrolment_progress(&rec, &profile).await?;
    Ok(Fetched {
        rec,
        ctx,
        profile,
        events,
        platform,
        credited_before,
        snapshots_in_hour,
    })
}
