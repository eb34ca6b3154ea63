//! Face data in the store: sealed templates, consent receipts and snapshot frame hashes.
//! Invariant: only sealed templates are stored, and the enrolment photo only sealed and only
//! when the profile keeps it;
//! enrolment and withdrawal each write their template change, the learner's consent flag and
//! the consent receipt in one transaction, so no partial state is left.

use sqlx::Row;

use super::{Result, Store, StoreError};
use crate::adapters::face::template::Sealed;
use crate::domain::Millis;

/// A consent receipt: what the learner agreed to (or withdrew from), and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ConsentReceipt {
    pub id: String,
    pub learner_id: String,
    /// `granted` or `withdrawn`.
    pub action: String,
    pub text_version: String,
    pub text_sha256: String,
    pub at: Millis,
}

impl Store {
    /// Stores a learner's sealed template (replacing an older one) and the consent receipt.
    pub async fn enrol_face(
        &self,
        sealed: &Sealed,
        models: &str,
        receipt: &ConsentReceipt,
        photo: Option<&Sealed>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM face_photos WHERE learner_id = $1")
            .bind(&receipt.learner_id)
            .execute(&mut *tx)
            .await?;
        if let Some(p) = photo {
            sqlx::query(
                "INSERT INTO face_photos (learner_id, key_id, sealed, enrolled_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&receipt.learner_id)
            .bind(&p.key_id)
            .bind(&p.sealed)
            .bind(receipt.at.0)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM face_templates WHERE learner_id = $1")
            .bind(&receipt.learner_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO face_templates (learner_id, key_id, sealed, models, enrolled_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&receipt.learner_id)
        .bind(&sealed.key_id)
        .bind(&sealed.sealed)
        .bind(models)
        .bind(receipt.at.0)
        .execute(&mut *tx)
        .await?;
        insert_receipt(&mut tx, receipt).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a learner's template, clears the consent flag, records the withdrawal.
    pub async fn withdraw_face(&self, receipt: &ConsentReceipt) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM face_photos WHERE learner_id = $1")
            .bind(&receipt.learner_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM face_templates WHERE learner_id = $1")
            .bind(&receipt.learner_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE learners SET face_consent = 0 WHERE id = $1")
            .bind(&receipt.learner_id)
            .execute(&mut *tx)
            .await?;
        insert_receipt(&mut tx, receipt).await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// A learner's sealed enrolment photo, when the profile kept it.
    pub async fn face_photo(&self, learner_id: &str) -> Result<Option<Sealed>> {
        let row = sqlx::query("SELECT key_id, sealed FROM face_photos WHERE learner_id = $1")
            .bind(learner_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Sealed {
                key_id: r.try_get("key_id")?,
                sealed: r.try_get("sealed")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::Corrupt(e.to_string()))
    }

    /// A learner's sealed template.
    pub async fn face_template(&self, learner_id: &str) -> Result<Option<Sealed>> {
        let row = sqlx::query("SELECT key_id, sealed FROM face_templates WHERE learner_id = $1")
            .bind(learner_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Sealed {
                key_id: r.try_get("key_id")?,
                sealed: r.try_get("sealed")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::Corrupt(e.to_string()))
    }

    /// A learner's consent receipts, oldest first.
    pub async fn consent_receipts(&self, learner_id: &str) -> Result<Vec<ConsentReceipt>> {
        let rows = sqlx::query(
            "SELECT id, learner_id, action, text_version, text_sha256, at FROM face_consents \
             WHERE learner_id = $1 ORDER BY at, id",
        )
        .bind(learner_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ConsentReceipt {
                    id: r.try_get("id")?,
                    learner_id: r.try_get("learner_id")?,
                    action: r.try_get("action")?,
                    text_version: r.try_get("text_version")?,
                    text_sha256: r.try_get("text_sha256")?,
                    at: Millis(r.try_get("at")?),
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Records a snapshot's frame hash.
    pub async fn insert_frame_hash(
        &self,
        snapshot_id: &str,
        learner_id: &str,
        session_id: &str,
        dhash: u64,
        at: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO frame_hashes (snapshot_id, learner_id, session_id, dhash, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(snapshot_id)
        .bind(learner_id)
        .bind(session_id)
        .bind(format!("{dhash:016x}"))
        .bind(at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent frame hashes (newest first, at most `limit`): `(snapshot, learner, hash)`.
    pub async fn recent_frame_hashes(&self, limit: i64) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "SELECT snapshot_id, learner_id, dhash FROM frame_hashes ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let h: String = r
                    .try_get("dhash")
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let h =
                    u64::from_str_radix(&h, 16).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((
                    r.try_get("snapshot_id")
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    r.try_get("learner_id")
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    h,
                ))
            })
            .collect()
    }
}

async fn insert_receipt(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    r: &ConsentReceipt,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO face_consents (id, learner_id, action, text_version, text_sha256, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.learner_id)
    .bind(&r.action)
    .bind(&r.text_version)
    .bind(&r.text_sha256)
    .bind(r.at.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
