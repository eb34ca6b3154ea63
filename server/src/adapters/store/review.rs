//! The reviewers' workbench in the store: accounts, sign-in sessions, the hash-chained audit
//! log, two-person decisions, legal holds and purges. Invariants: the audit log is only ever
//! appended to (`append_audit` takes the next `seq` after the last row and the unique key
//! refuses a second writer of the same `seq`); every session read here carries the province
//! of the platform that owns the session, and reads take a reviewer's scope (province, and
//! optionally city or county, matched against the class's region), so callers deny across them.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, log};
use crate::domain::Millis;

/// A reviewer account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerRow {
    pub id: String,
    pub name: String,
    pub province: String,
    /// A city (four digits) or county (six digits) inside the province; `None`: all of it.
    pub region: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub created_at: Millis,
}

/// A signed-in reviewer's session.
#[derive(Debug, Clone)]
pub struct ReviewerSession {
    pub reviewer: ReviewerRow,
    pub csrf: String,
    pub expires_at: Millis,
}

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub province: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A session as a reviewer sees it in lists: ids, owner, province, class and the stored verdict.
#[derive(Debug, Clone)]
pub struct ReviewSessionRow {
    pub id: String,
    pub platform_id: String,
    pub platform_name: String,
    pub province: String,
    pub class_id: String,
    pub class_name: String,
    pub enrolment_id: String,
    pub learner_id: String,
    pub learner_name: String,
    pub lesson_id: String,
    pub created_at: Millis,
    pub verdict_json: Option<String>,
}

/// A decision on a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecisionRow {
    pub id: String,
    pub session_id: String,
    pub outcome: String,
    pub reason_code: String,
    pub comment: String,
    pub signer1: String,
    pub signed1_at: Millis,
    pub signer2: Option<String>,
    pub signed2_at: Option<Millis>,
}

/// A stored snapshot's file and owner.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub id: String,
    pub session_id: String,
    pub content_type: String,
    pub path: String,
    pub at: Millis,
}

macro_rules! review_session_select {
    ($tail:literal) => {
        concat!(
            "SELECT s.id, s.platform_id, p.name AS platform_name, p.province, e.class_id, ",
            "c.name AS class_name, s.enrolment_id, s.learner_id, l.real_name AS learner_name, ",
            "s.lesson_id, s.created_at, v.verdict_json, v.released_json ",
            "FROM sessions s JOIN platforms p ON p.id = s.platform_id ",
            "JOIN enrolments e ON e.id = s.enrolment_id JOIN classes c ON c.id = e.class_id ",
            "JOIN learners l ON l.id = s.learner_id ",
            "LEFT JOIN session_verdicts v ON v.session_id = s.id ",
            $tail
        )
    };
}

/// The decision columns with a static filter (QueryBuilder over `Any` writes `?` placeholders,
/// which PostgreSQL refuses).
macro_rules! decision_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, session_id, outcome, reason_code, comment, signer1, signed1_at, signer2, signed2_at ",
            "FROM review_decisions ",
            $tail
        )
    };
}

impl Store {
    /// The connection pool, for operators' tooling and tests that must reach below the
    /// application (e.g. to prove that `proctor audit verify` catches an edited row).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    // ----- accounts -----

    pub async fn create_reviewer(&self, r: &ReviewerRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO reviewers (id, name, province, role, password_hash, totp_secret, created_at, region) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.province)
        .bind(&r.role)
        .bind(&r.password_hash)
        .bind(r.totp_secret.as_deref())
        .bind(r.created_at.0)
        .bind(r.region.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn reviewer_by_name(&self, name: &str) -> Result<Option<ReviewerRow>> {
        let row = sqlx::query(
            "SELECT id, name, province, region, role, password_hash, totp_secret, created_at FROM reviewers WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(reviewer_from).transpose()
    }

    pub async fn reviewer_names(&self, ids: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query("SELECT name FROM reviewers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                out.push((id.clone(), r.try_get("name")?));
            }
        }
        Ok(out)
    }

    // ----- sign-in sessions -----

    pub async fn create_reviewer_session(
        &self,
        token_sha256: &str,
        reviewer_id: &str,
        csrf: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        sqlx::query("DELETE FROM reviewer_sessions WHERE expires_at < $1")
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO reviewer_sessions (token_sha256, reviewer_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256)
        .bind(reviewer_id)
        .bind(csrf)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session behind a cookie's hash (expired ones are not returned).
    pub async fn reviewer_session(
        &self,
        token_sha256: &str,
        now: Millis,
    ) -> Result<Option<ReviewerSession>> {
        let row = sqlx::query(
            "SELECT r.id, r.name, r.province, r.region, r.role, r.password_hash, r.totp_secret, r.created_at, \
             s.csrf, s.expires_at FROM reviewer_sessions s JOIN reviewers r ON r.id = s.reviewer_id \
             WHERE s.token_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(token_sha256)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ReviewerSession {
                reviewer: reviewer_from(&r)?,
                csrf: r.try_get("csrf")?,
                expires_at: Millis(r.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    pub async fn delete_reviewer_session(&self, token_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM reviewer_sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----- audit log -----

    /// The last row's `(seq, hash)`, or `(0, "")` for an empty log.
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok((r.try_get("seq")?, r.try_get("hash")?)),
            None => Ok((0, String::new())),
        }
    }

    /// Inserts a row; a `Conflict` means another writer took this `seq` first.
    pub async fn insert_audit(&self, a: &AuditRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, province, target, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(a.seq)
        .bind(a.at.0)
        .bind(&a.actor)
        .bind(&a.action)
        .bind(&a.province)
        .bind(&a.target)
        .bind(&a.detail)
        .bind(&a.prev_hash)
        .bind(&a.hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit rows with `seq > after`, in order, at most `limit`.
    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        sqlx::query(
            "SELECT seq, at, actor, action, province, target, detail, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from)
        .collect()
    }

    /// The latest audit rows of one province, newest first.
    pub async fn audit_rows_of_province(
        &self,
        province: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        sqlx::query(
            "SELECT seq, at, actor, action, province, target, detail, prev_hash, hash FROM audit_log \
             WHERE province = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(province)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from)
        .collect()
    }

    // ----- sessions as reviewers see them -----

    /// Sessions in a reviewer's `scope` (see `Reviewer::scope`), newest first, at most `limit`.
    pub async fn review_sessions(
        &self,
        province: &str,
        limit: i64,
    ) -> Result<Vec<ReviewSessionRow>> {
        let rows = sqlx::query(review_session_select!(
            "WHERE (p.province || '/' || COALESCE(c.region, '')) LIKE $1 ORDER BY s.created_at DESC LIMIT $2"
        ))
        .bind(province)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.review_sessions_from(&rows).await
    }

    /// One session, only if it is in `scope`.
    pub async fn review_session(
        &self,
        id: &str,
        province: &str,
    ) -> Result<Option<ReviewSessionRow>> {
        let rows = sqlx::query(review_session_select!(
            "WHERE s.id = $1 AND (p.province || '/' || COALESCE(c.region, '')) LIKE $2"
        ))
        .bind(id)
        .bind(province)
        .fetch_optional(&self.pool)
        .await?;
        Ok(self
            .review_sessions_from(rows.as_slice())
            .await?
            .into_iter()
            .next())
    }

    /// The sessions of one class, only if the class is in `scope`.
    pub async fn review_sessions_of_class(
        &self,
        class_id: &str,
        province: &str,
    ) -> Result<Vec<ReviewSessionRow>> {
        let rows = sqlx::query(review_session_select!(
            "WHERE e.class_id = $1 AND (p.province || '/' || COALESCE(c.region, '')) LIKE $2 ORDER BY s.learner_id, s.created_at"
        ))
        .bind(class_id)
        .bind(province)
        .fetch_all(&self.pool)
        .await?;
        self.review_sessions_from(&rows).await
    }

    /// Review rows with their verdicts made whole (the records a worker released put back,
    /// read for all the rows at once).
    async fn review_sessions_from(&self, rows: &[AnyRow]) -> Result<Vec<ReviewSessionRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let released: Option<String> = r.try_get("released_json")?;
            out.push((review_session_from(r)?, released));
        }
        let ids: Vec<&str> = out
            .iter()
            .filter(|(row, released)| row.verdict_json.is_some() && released.is_some())
            .map(|(row, _)| row.id.as_str())
            .collect();
        let mut records = self.released_records_of(&ids).await?;
        out.into_iter()
            .map(|(mut row, released)| {
                if let Some(head) = row.verdict_json.take() {
                    let mine = records.remove(&row.id).unwrap_or_default();
                    row.verdict_json =
                        Some(log::restore_with(&row.id, head, released.as_deref(), mine)?);
                }
                Ok(row)
            })
            .collect()
    }

    /// `(enrolment id, learner id, learner name)` of a class, by learner.
    pub async fn enrolments_of_class(
        &self,
        class_id: &str,
    ) -> Result<Vec<(String, String, String)>> {
        sqlx::query(
            "SELECT e.id, e.learner_id, l.real_name FROM enrolments e JOIN learners l ON l.id = e.learner_id \
             WHERE e.class_id = $1 ORDER BY e.learner_id",
        )
        .bind(class_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("learner_id")?, r.try_get("real_name")?)))
        .collect()
    }

    /// Whether a class exists in `scope`.
    pub async fn class_in_province(&self, class_id: &str, province: &str) -> Result<bool> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM classes c JOIN platforms p ON p.id = c.platform_id \
             WHERE c.id = $1 AND (p.province || '/' || COALESCE(c.region, '')) LIKE $2",
        )
        .bind(class_id)
        .bind(province)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }

    /// A snapshot's file, only if its session is in `scope`.
    pub async fn review_snapshot(&self, id: &str, province: &str) -> Result<Option<SnapshotFile>> {
        let row = sqlx::query(
            "SELECT n.id, n.session_id, n.content_type, n.path, n.at FROM snapshots n \
             JOIN sessions s ON s.id = n.session_id JOIN platforms p ON p.id = s.platform_id \
             JOIN enrolments e ON e.id = s.enrolment_id JOIN classes c ON c.id = e.class_id \
             WHERE n.id = $1 AND (p.province || '/' || COALESCE(c.region, '')) LIKE $2",
        )
        .bind(id)
        .bind(province)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SnapshotFile {
                id: r.try_get("id")?,
                session_id: r.try_get("session_id")?,
                content_type: r.try_get("content_type")?,
                path: r.try_get("path")?,
                at: Millis(r.try_get("at")?),
            })
        })
        .transpose()
    }

    // ----- decisions -----

    pub async fn insert_decision(&self, d: &DecisionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO review_decisions (id, session_id, outcome, reason_code, comment, signer1, signed1_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(&d.session_id)
        .bind(&d.outcome)
        .bind(&d.reason_code)
        .bind(&d.comment)
        .bind(&d.signer1)
        .bind(d.signed1_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds the second signature if the decision has none and `signer` is not the first
    /// signer; false if either condition failed (the row is unchanged).
    pub async fn countersign_decision(&self, id: &str, signer: &str, at: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE review_decisions SET signer2 = $1, signed2_at = $2 \
             WHERE id = $3 AND signer2 IS NULL AND signer1 <> $1",
        )
        .bind(signer)
        .bind(at.0)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn decision(&self, id: &str) -> Result<Option<DecisionRow>> {
        sqlx::query(decision_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(decision_from)
            .transpose()
    }

    /// A session's decisions, oldest first.
    pub async fn decisions_of_session(&self, session_id: &str) -> Result<Vec<DecisionRow>> {
        sqlx::query(decision_select!(
            "WHERE session_id = $1 ORDER BY signed1_at, id"
        ))
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decision_from)
        .collect()
    }
}

/// A session the retention job considers.
#[derive(Debug, Clone)]
pub struct RetentionCandidate {
    pub session_id: String,
    pub province: String,
    pub profile: crate::domain::ProfileRef,
    /// When the session ended (or started, if it never ended).
    pub last_at: Millis,
    pub held: bool,
}

impl Store {
    // ----- retention and legal holds (R15) -----

    /// Sessions whose evidence has not been purged yet.
    pub async fn retention_candidates(&self) -> Result<Vec<RetentionCandidate>> {
        sqlx::query(
            "SELECT s.id, p.province, s.profile_id, s.profile_version, s.created_at, s.ended_at, \
             (SELECT COUNT(*) FROM legal_holds h WHERE h.session_id = s.id) AS held \
             FROM sessions s JOIN platforms p ON p.id = s.platform_id \
             WHERE NOT EXISTS (SELECT 1 FROM purged_sessions x WHERE x.session_id = s.id) ORDER BY s.created_at",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let created: i64 = r.try_get("created_at")?;
            Ok(RetentionCandidate {
                session_id: r.try_get("id")?,
                province: r.try_get("province")?,
                profile: crate::domain::ProfileRef {
                    id: r.try_get("profile_id")?,
                    version: u32::try_from(r.try_get::<i64, _>("profile_version")?)
                        .map_err(|e| super::StoreError::Corrupt(e.to_string()))?,
                },
                last_at: Millis(r.try_get::<Option<i64>, _>("ended_at")?.unwrap_or(created)),
                held: r.try_get::<i64, _>("held")? > 0,
            })
        })
        .collect()
    }

    /// `(snapshot id, locator)` of a session's stored snapshots.
    pub async fn snapshot_files_of(&self, session_id: &str) -> Result<Vec<(String, String)>> {
        sqlx::query("SELECT id, path FROM snapshots WHERE session_id = $1 ORDER BY id")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("path")?)))
            .collect()
    }

    /// Deletes a session's snapshots (rows and frame hashes) and event log, and records the
    /// purge, in one transaction; false if it was purged already or is under a legal hold.
    pub async fn purge_session(&self, session_id: &str, at: Millis) -> Result<Option<(u64, u64)>> {
        let mut tx = self.pool.begin().await?;
        let held: i64 = sqlx::query("SELECT COUNT(*) AS n FROM legal_holds WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if held > 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM frame_hashes WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        let snapshots = sqlx::query("DELETE FROM snapshots WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let events = if self.may_have_events(session_id) {
            let sql = super::batch::statement(self.backend(), "purge_events", 1, |_, p| {
                format!(
                    "DELETE FROM events WHERE session_id = $1{}",
                    super::log::log_id(p)
                )
            });
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(session_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            0
        };
        let inserted = sqlx::query(
            "INSERT INTO purged_sessions (session_id, purged_at, snapshots, events) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(at.0)
        .bind(i64::try_from(snapshots).unwrap_or(i64::MAX))
        .bind(i64::try_from(events).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some((snapshots, events)))
    }

    /// When a session's evidence was purged, if it was.
    pub async fn purged_at(&self, session_id: &str) -> Result<Option<Millis>> {
        let row = sqlx::query("SELECT purged_at FROM purged_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(Millis(r.try_get("purged_at")?))).transpose()
    }

    pub async fn place_legal_hold(
        &self,
        session_id: &str,
        reason: &str,
        by: &str,
        at: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO legal_holds (session_id, reason, placed_by, placed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(reason)
        .bind(by)
        .bind(at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn release_legal_hold(&self, session_id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM legal_holds WHERE session_id = $1")
            .bind(session_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// The hold on a session: `(reason, placed_by, placed_at)`.
    pub async fn legal_hold(&self, session_id: &str) -> Result<Option<(String, String, Millis)>> {
        let row = sqlx::query(
            "SELECT reason, placed_by, placed_at FROM legal_holds WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("reason")?,
                r.try_get("placed_by")?,
                Millis(r.try_get("placed_at")?),
            ))
        })
        .transpose()
    }
}

/// A learner's appeal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Appeal {
    pub id: String,
    pub session_id: String,
    pub reason: String,
    pub submitted_at: Millis,
}

impl Store {
    /// Effective (countersigned) decisions of the sessions in `scope`, newest first, with the
    /// session's profile.
    pub async fn effective_decisions_of_province(
        &self,
        province: &str,
        limit: i64,
    ) -> Result<Vec<(DecisionRow, crate::domain::ProfileRef)>> {
        sqlx::query(
            "SELECT d.id, d.session_id, d.outcome, d.reason_code, d.comment, d.signer1, d.signed1_at, d.signer2, \
             d.signed2_at, s.profile_id, s.profile_version FROM review_decisions d JOIN sessions s ON s.id = d.session_id \
             JOIN platforms p ON p.id = s.platform_id JOIN enrolments e ON e.id = s.enrolment_id \
             JOIN classes c ON c.id = e.class_id WHERE (p.province || '/' || COALESCE(c.region, '')) LIKE $1 AND d.signer2 IS NOT NULL \
             ORDER BY d.signed2_at DESC LIMIT $2",
        )
        .bind(province)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                decision_from(r)?,
                crate::domain::ProfileRef {
                    id: r.try_get("profile_id")?,
                    version: u32::try_from(r.try_get::<i64, _>("profile_version")?)
                        .map_err(|e| super::StoreError::Corrupt(e.to_string()))?,
                },
            ))
        })
        .collect()
    }

    pub async fn insert_appeal(&self, a: &Appeal, platform_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO appeals (id, session_id, platform_id, reason, submitted_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&a.id)
        .bind(&a.session_id)
        .bind(platform_id)
        .bind(&a.reason)
        .bind(a.submitted_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session's appeals, oldest first.
    pub async fn appeals_of_session(&self, session_id: &str) -> Result<Vec<Appeal>> {
        sqlx::query("SELECT id, session_id, reason, submitted_at FROM appeals WHERE session_id = $1 ORDER BY submitted_at, id")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Appeal {
                    id: r.try_get("id")?,
                    session_id: r.try_get("session_id")?,
                    reason: r.try_get("reason")?,
                    submitted_at: Millis(r.try_get("submitted_at")?),
                })
            })
            .collect()
    }
}

fn reviewer_from(r: &AnyRow) -> Result<ReviewerRow> {
    Ok(ReviewerRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        province: r.try_get("province")?,
        region: r.try_get("region")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret: r.try_get("totp_secret")?,
        created_at: Millis(r.try_get("created_at")?),
    })
}

fn audit_from(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: Millis(r.try_get("at")?),
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        province: r.try_get("province")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn review_session_from(r: &AnyRow) -> Result<ReviewSessionRow> {
    Ok(ReviewSessionRow {
        id: r.try_get("id")?,
        platform_id: r.try_get("platform_id")?,
        platform_name: r.try_get("platform_name")?,
        province: r.try_get("province")?,
        class_id: r.try_get("class_id")?,
        class_name: r.try_get("class_name")?,
        enrolment_id: r.try_get("enrolment_id")?,
        learner_id: r.try_get("learner_id")?,
        learner_name: r.try_get("learner_name")?,
        lesson_id: r.try_get("lesson_id")?,
        created_at: Millis(r.try_get("created_at")?),
        verdict_json: r.try_get("verdict_json")?,
    })
}

fn decision_from(r: &AnyRow) -> Result<DecisionRow> {
    Ok(DecisionRow {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        outcome: r.try_get("outcome")?,
        reason_code: r.try_get("reason_code")?,
        comment: r.try_get("comment")?,
        signer1: r.try_get("signer1")?,
        signed1_at: Millis(r.try_get("signed1_at")?),
        signer2: r.try_get("signer2")?,
        signed2_at: r.try_get::<Option<i64>, _>("signed2_at")?.map(Millis),
    })
}
