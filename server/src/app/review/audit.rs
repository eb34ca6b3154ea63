//! The hash-chained audit log. Each row's hash is `sha256(prev_hash || canonical)`, where
//! `canonical` is the JSON array `[seq, at, actor, action, province, target, detail]`; the
//! first row's `prev_hash` is empty. Editing, deleting or reordering any row breaks the chain
//! at that row, and `verify` names the first broken link.

use sha2::{Digest, Sha256};

use crate::adapters::store::StoreError;
use crate::adapters::store::review::AuditRow;
use crate::app::{App, AppError, AppResult};

/// Serialises appends within a process; across processes the unique `seq` refuses a second
/// writer, which then retries on the new head.
static APPEND: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The hash a row must carry after `prev_hash` (its own `prev_hash` and `hash` are not read).
pub fn row_hash(prev_hash: &str, r: &AuditRow) -> String {
    let canonical = serde_json::json!([
        r.seq, r.at.0, r.actor, r.action, r.province, r.target, r.detail
    ])
    .to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The first broken link, if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Rows checked.
    pub rows: i64,
    /// The seq of the first row that does not chain (`None` when the whole log verifies).
    pub first_broken: Option<i64>,
    pub why: Option<String>,
}

impl App {
    /// Appends one entry to the audit chain.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        province: &str,
        target: &str,
        detail: &str,
    ) -> AppResult<()> {
        let _guard = APPEND.lock().await;
        let at = self.now();
        for _ in 0..20 {
            let (last, prev_hash) = self.store.audit_head().await?;
            let seq = last + 1;
            let row = AuditRow {
                seq,
                at,
                actor: actor.to_owned(),
                action: action.to_owned(),
                province: province.to_owned(),
                target: target.to_owned(),
                detail: detail.to_owned(),
                hash: String::new(),
                prev_hash,
            };
            let mut row = row;
            row.hash = row_hash(&row.prev_hash, &row);
            match self.store.insert_audit(&row).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Unavailable {
            what: "audit log",
            retry_after_s: 1,
        })
    }

    /// Checks the whole chain from the first row.
    pub async fn verify_audit(&self) -> AppResult<Verification> {
        let mut prev = String::new();
        let mut expected = 1;
        let mut rows = 0;
        loop {
            let batch = self.store.audit_rows(expected - 1, 1000).await?;
            if batch.is_empty() {
                return Ok(Verification {
                    rows,
                    first_broken: None,
                    why: None,
                });
            }
            for r in batch {
                let broken = |why: String| Verification {
                    rows,
                    first_broken: Some(r.seq),
                    why: Some(why),
                };
                if r.seq != expected {
                    return Ok(Verification {
                        first_broken: Some(expected),
                        ..broken(format!("row {expected} is missing"))
                    });
                }
                if r.prev_hash != prev {
                    return Ok(broken(format!(
                        "row {} does not point at the hash of row {}",
                        r.seq,
                        r.seq - 1
                    )));
                }
                let want = row_hash(&prev, &r);
                if r.hash != want {
                    return Ok(broken(format!(
                        "row {} was altered: its content does not match its hash",
                        r.seq
                    )));
                }
                prev = r.hash;
                expected += 1;
                rows += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Millis;

    fn row(actor: &str, action: &str, detail: &str) -> AuditRow {
        AuditRow {
            seq: 1,
            at: Millis(5),
            actor: actor.into(),
            action: action.into(),
            province: "41".into(),
            target: "s".into(),
            detail: detail.into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_changed_field_changes_the_hash() {
        let a = row_hash("", &row("r", "view", "d"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, row_hash("", &row("r", "view", "e")));
        assert_ne!(a, row_hash("x", &row("r", "view", "d")));
        // Field boundaries are part of the canonical form: moving text between fields differs.
        assert_ne!(
            row_hash("", &row("ra", "b", "d")),
            row_hash("", &row("r", "ab", "d"))
        );
    }
}
