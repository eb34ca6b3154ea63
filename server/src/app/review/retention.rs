//! Evidence retention (R15): a session's snapshots and event log are kept for the profile's
//! `snapshots.retention_days` after the session ended, then purged by a scheduled job. Sessions
//! under a legal hold are skipped. Each purge is appended to the audit chain (what, when, how
//! many files and events); the verdict row stays, so exports and decisions remain readable.
//! The job takes its time from the server clock; `purge_expired(now)` takes it as a parameter,
//! so tests control it.

use std::sync::Arc;
use std::time::Duration;

use super::{Reviewer, Role};
use crate::app::{App, AppError, AppResult};
use crate::domain::{Millis, Profile};

const DAY_MS: i64 = 86_400_000;

/// What one run of the job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub purged: Vec<String>,
    /// Past retention but under a legal hold.
    pub held: Vec<String>,
}

impl App {
    /// Purges every session whose retention period ended before `now`, except held ones.
    pub async fn purge_expired(&self, now: Millis) -> AppResult<PurgeReport> {
        let mut report = PurgeReport::default();
        for c in self.store.retention_candidates().await? {
            let profile =
                Profile::find(&c.profile).map_err(|e| AppError::Internal(e.to_string()))?;
            let keep_ms = i64::from(profile.snapshots.retention_days) * DAY_MS;
            if c.last_at.0.saturating_add(keep_ms) > now.0 {
                continue;
            }
            if c.held {
                report.held.push(c.session_id);
                continue;
            }
            let files = self.store.snapshot_files_of(&c.session_id).await?;
            let Some((snapshots, events)) = self.store.purge_session(&c.session_id, now).await?
            else {
                // Held or purged meanwhile (another worker): nothing was deleted.
                continue;
            };
            let mut failed = 0;
            for (_, locator) in &files {
                let evidence = self.evidence.clone();
                let locator = locator.clone();
                let deleted = tokio::task::spawn_blocking(move || evidence.delete(&locator)).await;
                if !matches!(deleted, Ok(Ok(()))) {
                    failed += 1;
                }
            }
            self.audit(
                "retention",
                "purge",
                &c.province,
                &c.session_id,
                &format!(
                    "retention_days={} ended_at={} snapshots={snapshots} files_not_deleted={failed} events={events}",
                    profile.snapshots.retention_days, c.last_at.0
                ),
            )
            .await?;
            report.purged.push(c.session_id);
        }
        Ok(report)
    }

    /// Places a legal hold (senior reviewers and administrators of the province).
    pub async fn place_hold(
        &self,
        who: &Reviewer,
        session_id: &str,
        reason: &str,
    ) -> AppResult<()> {
        let s = self.review_session_row(who, session_id).await?;
        if !matches!(who.role, Role::SeniorReviewer | Role::Administrator) {
            return Err(AppError::Forbidden(format!(
                "a {} cannot place legal holds",
                who.role.code()
            )));
        }
        if reason.trim().is_empty() || reason.chars().count() > 500 {
            return Err(AppError::Invalid {
                field: "reason",
                why: "must be 1 to 500 characters".into(),
            });
        }
        if !self
            .store
            .place_legal_hold(&s.id, reason.trim(), &who.id, self.now())
            .await?
        {
            return Err(AppError::Conflict(
                "the session is already under a legal hold".into(),
            ));
        }
        self.audit(&who.id, "legal_hold", &who.province, &s.id, reason.trim())
            .await
    }

    /// Releases a legal hold (senior reviewers and administrators of the province).
    pub async fn release_hold(&self, who: &Reviewer, session_id: &str) -> AppResult<()> {
        let s = self.review_session_row(who, session_id).await?;
        if !matches!(who.role, Role::SeniorReviewer | Role::Administrator) {
            return Err(AppError::Forbidden(format!(
                "a {} cannot release legal holds",
                who.role.code()
            )));
        }
        if !self.store.release_legal_hold(&s.id).await? {
            return Err(AppError::NotFound("legal hold"));
        }
        self.audit(&who.id, "legal_hold_released", &who.province, &s.id, "")
            .await
    }
}

/// The scheduled job: a run at start-up, then every `every`, until shutdown.
pub async fn run_job(
    app: Arc<App>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match app.purge_expired(app.now()).await {
            Ok(r) if !r.purged.is_empty() || !r.held.is_empty() => {
                tracing::info!(
                    purged = r.purged.len(),
                    held = r.held.len(),
                    "Retention job ran."
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "The retention job failed; it retries at its next run.")
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
}
