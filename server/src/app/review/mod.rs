//! The provincial reviewers' workbench (issue 6, RULES.md R15–R17): accounts scoped to a
//! province, sign-in with argon2 passwords and optional TOTP, a hash-chained audit log of every
//! reviewer action and evidence view, the risk-sorted queue, two-person decisions and the
//! per-class export.
//!
//! Invariants: every read names the reviewer's province and an id outside it is "not found";
//! a decision takes effect only with two different signers, neither an auditor nor an
//! administrator; every action is appended to the audit chain before its result is returned.

pub mod audit;
pub mod enrolments;
pub mod export;
pub mod publicity;
pub mod retention;
pub mod totp;

use sha2::{Digest, Sha256};

use crate::adapters::store::review::{
    Appeal, DecisionRow, ReviewSessionRow, ReviewerRow, ReviewerSession,
};
use crate::app::{App, AppError, AppResult, new_id};
use crate::domain::{Millis, RuleStatus, SessionVerdict};

/// How long a sign-in lasts (real time).
pub const SESSION_TTL_MS: i64 = 30 * 60 * 1000;

/// What a reviewer account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Reviews sessions and signs decisions.
    Reviewer,
    /// A reviewer who may also read the audit log.
    #[value(name = "senior_reviewer", alias = "senior-reviewer")]
    SeniorReviewer,
    /// Reads everything in the province, including the audit log; signs nothing.
    Auditor,
    /// Reads the audit log; signs nothing.
    Administrator,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::SeniorReviewer => "senior_reviewer",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Reviewer,
            Role::SeniorReviewer,
            Role::Auditor,
            Role::Administrator,
        ]
        .into_iter()
        .find(|r| r.code() == s)
    }

    /// May sign (or countersign) decisions.
    pub fn can_sign(self) -> bool {
        matches!(self, Role::Reviewer | Role::SeniorReviewer)
    }

    /// May read the audit log.
    pub fn can_read_audit(self) -> bool {
        matches!(
            self,
            Role::Auditor | Role::Administrator | Role::SeniorReviewer
        )
    }
}

/// A signed-in reviewer, as handlers see them.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub id: String,
    pub name: String,
    pub province: String,
    /// A city (four digits) or county (six digits) in the province; `None`: all of it.
    pub region: Option<String>,
    pub role: Role,
    pub csrf: String,
}

impl Reviewer {
    /// What this reviewer may see, as the store's scope pattern: a `LIKE` pattern over
    /// `<platform province>/<class region>`. A province-wide account matches every class of
    /// its province; a city or county account only classes whose region starts with its code.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}%",
            self.province,
            self.region.as_deref().unwrap_or("")
        )
    }
}

/// A new account and, when asked for, its TOTP secret (base32) and `otpauth://` URI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedReviewer {
    pub id: String,
    pub name: String,
    pub province: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
}

/// Where a session stands with reviewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStatus {
    NotReviewed,
    /// Signed once; waiting for a second, different reviewer.
    AwaitingCountersign,
    Confirmed,
    Overturned,
    /// The learner appealed after the last effective decision (or before any).
    Appealed,
}

impl ReviewStatus {
    pub fn code(self) -> &'static str {
        match self {
            ReviewStatus::NotReviewed => "not_reviewed",
            ReviewStatus::AwaitingCountersign => "awaiting_countersign",
            ReviewStatus::Confirmed => "confirmed",
            ReviewStatus::Overturned => "overturned",
            ReviewStatus::Appealed => "appealed",
        }
    }

    /// From a session's decisions and appeals: a decision awaiting its countersignature shows
    /// as such; else an appeal newer than the effective decision (or with none) is `appealed`;
    /// else the effective decision decides.
    pub fn of(decisions: &[DecisionRow], appeals: &[Appeal]) -> ReviewStatus {
        let pending = decisions.last().is_some_and(|d| d.signer2.is_none());
        let decided_at = effective(decisions).and_then(|d| d.signed2_at);
        let appealed = appeals
            .iter()
            .any(|a| decided_at.is_none_or(|t| a.submitted_at > t));
        if !pending && appealed {
            return ReviewStatus::Appealed;
        }
        match decisions.last() {
            None => ReviewStatus::NotReviewed,
            Some(d) if d.signer2.is_none() => ReviewStatus::AwaitingCountersign,
            Some(d) if d.outcome == "overturn" => ReviewStatus::Overturned,
            Some(_) => ReviewStatus::Confirmed,
        }
    }
}

/// The effective decision: the latest one with two signatures.
pub fn effective(decisions: &[DecisionRow]) -> Option<&DecisionRow> {
    decisions.iter().rev().find(|d| d.signer2.is_some())
}

/// One queue row.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub session: ReviewSessionRow,
    pub verdict: Option<SessionVerdict>,
    pub risk: i64,
    pub violated: Vec<&'static str>,
    pub status: ReviewStatus,
}

/// Queue filters (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    pub rule: Option<String>,
    pub platform: Option<String>,
    pub class: Option<String>,
    /// `YYYY-MM-DD` (UTC) of the session's start.
    pub date: Option<String>,
    pub status: Option<String>,
}

/// A session's risk for ordering the queue: flags, violated rules, failed face checks,
/// tamper signals and the uncredited share of its wall time.
pub fn risk(v: &SessionVerdict) -> i64 {
    let violated = v
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Violated)
        .count();
    let failed_faces = v.face_checks.iter().filter(|f| !f.passed).count();
    let uncredited_share = if v.wall_ms > 0 {
        (v.wall_ms - v.credited_ms).max(0) * 30 / v.wall_ms
    } else {
        0
    };
    let n = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
    i64::from(v.flagged_for_review) * 50
        + n(violated) * 20
        + n(failed_faces) * 10
        + n(v.signals.len()) * 5
        + uncredited_share
        + i64::from(!v.counts) * 10
}

/// `YYYY-MM-DD` of a server time (UTC).
pub fn day_of(at: Millis) -> String {
    let days = at.0.div_euclid(86_400_000);
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Real time in ms (sign-in sessions always use real time, like tokens).
fn real_now() -> i64 {
    i64::try_from(crate::auth::unix_now_ms()).unwrap_or(i64::MAX)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn reviewer_of(s: ReviewerSession) -> AppResult<Reviewer> {
    Ok(Reviewer {
        role: Role::parse(&s.reviewer.role)
            .ok_or_else(|| AppError::Internal(format!("unknown role {}", s.reviewer.role)))?,
        id: s.reviewer.id,
        name: s.reviewer.name,
        province: s.reviewer.province,
        region: s.reviewer.region,
        csrf: s.csrf,
    })
}

impl App {
    /// The effective two-person decision on a session as the verdict's `reviewed_by`: one
    /// record per signer (name, outcome, when signed). Empty until a decision is countersigned.
    /// Platforms read it with the verdict; the enrolment fold reads it for make-ups (R16).
    pub async fn reviewed_by(
        &self,
        session_id: &str,
    ) -> AppResult<Vec<crate::domain::verdict::ReviewRecord>> {
        let decisions = self.store.decisions_of_session(session_id).await?;
        let Some(d) = effective(&decisions) else {
            return Ok(Vec::new());
        };
        let signers: Vec<(String, Millis)> = [
            Some((d.signer1.clone(), d.signed1_at)),
            d.signer2.clone().zip(d.signed2_at),
        ]
        .into_iter()
        .flatten()
        .collect();
        let ids: Vec<String> = signers.iter().map(|(id, _)| id.clone()).collect();
        let names: std::collections::BTreeMap<String, String> =
            self.store.reviewer_names(&ids).await?.into_iter().collect();
        Ok(signers
            .into_iter()
            .map(|(id, at)| crate::domain::verdict::ReviewRecord {
                reviewer: names.get(&id).cloned().unwrap_or(id),
                decision: d.outcome.clone(),
                at,
            })
            .collect())
    }

    /// Creates a province-wide reviewer account.
    pub async fn create_reviewer(
        &self,
        name: &str,
        province: &str,
        role: Role,
        password: &str,
        with_totp: bool,
    ) -> AppResult<CreatedReviewer> {
        self.create_reviewer_in(name, province, None, role, password, with_totp)
            .await
    }

    /// Creates a reviewer account (`proctor admin create-reviewer`), scoped to a province and
    /// optionally to one city (four-digit code) or county (six-digit code) inside it.
    pub async fn create_reviewer_in(
        &self,
        name: &str,
        province: &str,
        region: Option<&str>,
        role: Role,
        password: &str,
        with_totp: bool,
    ) -> AppResult<CreatedReviewer> {
        use argon2::password_hash::PasswordHasher;
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(AppError::Invalid {
                field: "name",
                why: "must be 1 to 64 characters".into(),
            });
        }
        if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::Invalid {
                field: "province",
                why: "must be a two-digit province code (GB/T 2260), e.g. 41".into(),
            });
        }
        if let Some(region) = region
            && (!matches!(region.len(), 4 | 6)
                || !region.bytes().all(|b| b.is_ascii_digit())
                || !region.starts_with(province))
        {
            return Err(AppError::Invalid {
                field: "region",
                why: format!(
                    "must be a four-digit city or six-digit county code (GB/T 2260) in province {province}"
                ),
            });
        }
        if password.chars().count() < 12 {
            return Err(AppError::Invalid {
                field: "password",
                why: "must have at least 12 characters".into(),
            });
        }
        let password_hash = argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|e| AppError::Internal(e.to_string()))?
            .to_string();
        let totp_secret = with_totp.then(totp::new_secret);
        let row = ReviewerRow {
            id: new_id(),
            name: name.to_owned(),
            province: province.to_owned(),
            region: region.map(str::to_owned),
            role: role.code().to_owned(),
            password_hash,
            totp_secret: totp_secret.clone(),
            created_at: self.now(),
        };
        self.store
            .create_reviewer(&row)
            .await
            .map_err(|e| match e {
                crate::adapters::store::StoreError::Conflict(_) => {
                    AppError::Conflict(format!("a reviewer named {name} exists"))
                }
                other @ (crate::adapters::store::StoreError::Unavailable(_)
                | crate::adapters::store::StoreError::Corrupt(_)) => other.into(),
            })?;
        self.audit(
            "admin",
            "create_reviewer",
            province,
            &row.id,
            &format!(
                "name={name} role={} region={}",
                role.code(),
                region.unwrap_or("-")
            ),
        )
        .await?;
        Ok(CreatedReviewer {
            id: row.id,
            name: row.name.clone(),
            province: row.province,
            region: row.region,
            role: role.code(),
            totp_uri: totp_secret.as_ref().map(|s| {
                format!(
                    "otpauth://totp/proctor:{}?secret={s}&issuer=proctor",
                    row.name
                )
            }),
            totp_secret,
        })
    }

    /// Signs a reviewer in; returns the cookie value (only its hash is stored). Every attempt
    /// is audited; a wrong name, password or code is one indistinct refusal.
    pub async fn review_sign_in(
        &self,
        name: &str,
        password: &str,
        totp_code: Option<&str>,
    ) -> AppResult<String> {
        use argon2::password_hash::PasswordVerifier;
        let refused = || AppError::Forbidden("wrong name, password or code".into());
        let Some(r) = self.store.reviewer_by_name(name).await? else {
            return Err(refused());
        };
        let password_ok = argon2::Argon2::default()
            .verify_password(password.as_bytes(), r.password_hash.as_str())
            .is_ok();
        let now_real = real_now();
        let code_ok = match &r.totp_secret {
            None => true,
            Some(secret) => totp_code.is_some_and(|c| totp::verify(secret, c, now_real / 1000)),
        };
        if !(password_ok && code_ok) {
            self.audit(&r.id, "sign_in_refused", &r.province, &r.id, "")
                .await?;
            return Err(refused());
        }
        let token = random_hex(32);
        self.store
            .create_reviewer_session(
                &hash_token(&token),
                &r.id,
                &random_hex(16),
                Millis(now_real),
                Millis(now_real + SESSION_TTL_MS),
            )
            .await?;
        self.audit(&r.id, "sign_in", &r.province, &r.id, "").await?;
        Ok(token)
    }

    /// The reviewer behind a cookie value, if the session is live.
    pub async fn reviewer_by_token(&self, token: &str) -> AppResult<Option<Reviewer>> {
        let now = Millis(real_now());
        self.store
            .reviewer_session(&hash_token(token), now)
            .await?
            .map(reviewer_of)
            .transpose()
    }

    pub async fn review_sign_out(&self, who: &Reviewer, token: &str) -> AppResult<()> {
        self.store
            .delete_reviewer_session(&hash_token(token))
            .await?;
        self.audit(&who.id, "sign_out", &who.province, &who.id, "")
            .await
    }

    /// The queue: the province's sessions, filtered, riskiest first.
    pub async fn review_queue(&self, who: &Reviewer, f: &QueueFilter) -> AppResult<Vec<QueueItem>> {
        let rows = self.store.review_sessions(&who.scope(), 1000).await?;
        let mut out = Vec::new();
        for s in rows {
            let verdict: Option<SessionVerdict> = s
                .verdict_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let violated: Vec<&'static str> = verdict
                .iter()
                .flat_map(|v| v.rules.iter())
                .filter(|r| r.status == RuleStatus::Violated)
                .map(|r| r.rule.code())
                .collect();
            let decisions = self.store.decisions_of_session(&s.id).await?;
            let appeals = self.store.appeals_of_session(&s.id).await?;
            let status = ReviewStatus::of(&decisions, &appeals);
            let keep = f
                .rule
                .as_deref()
                .is_none_or(|r| r.is_empty() || violated.contains(&r))
                && f.platform
                    .as_deref()
                    .is_none_or(|p| p.is_empty() || p == s.platform_id)
                && f.class
                    .as_deref()
                    .is_none_or(|c| c.is_empty() || c == s.class_id)
                && f.date
                    .as_deref()
                    .is_none_or(|d| d.is_empty() || d == day_of(s.created_at))
                && f.status
                    .as_deref()
                    .is_none_or(|x| x.is_empty() || x == status.code());
            if keep {
                out.push(QueueItem {
                    risk: verdict.as_ref().map_or(0, risk),
                    session: s,
                    verdict,
                    violated,
                    status,
                });
            }
        }
        out.sort_by(|a, b| {
            b.risk
                .cmp(&a.risk)
                .then(b.session.created_at.cmp(&a.session.created_at))
        });
        self.audit(
            &who.id,
            "view_queue",
            &who.province,
            "queue",
            &serde_json::to_string(f).unwrap_or_default(),
        )
        .await?;
        Ok(out)
    }

    /// A learner's appeal, submitted by the platform that owns the session (404 for others).
    pub async fn submit_appeal(
        &self,
        platform: &crate::model::Platform,
        session_id: &str,
        reason: &str,
    ) -> AppResult<Appeal> {
        let (rec, _) = self.session_of(platform, session_id).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(AppError::Invalid {
                field: "reason",
                why: "must be 1 to 2000 characters".into(),
            });
        }
        let a = Appeal {
            id: new_id(),
            session_id: rec.id.clone(),
            reason: reason.to_owned(),
            submitted_at: self.now(),
        };
        self.store.insert_appeal(&a, &platform.id).await?;
        self.audit(
            &format!("platform:{}", platform.id),
            "appeal_submitted",
            &platform.province,
            &rec.id,
            &format!("appeal={} reason={reason}", a.id),
        )
        .await?;
        Ok(a)
    }

    /// A session in the reviewer's province, or not found.
    pub async fn review_session_row(
        &self,
        who: &Reviewer,
        id: &str,
    ) -> AppResult<ReviewSessionRow> {
        self.store
            .review_session(id, &who.scope())
            .await?
            .ok_or(AppError::NotFound("session"))
    }

    /// Signs a new decision on a session (the first signature).
    pub async fn sign_decision(
        &self,
        who: &Reviewer,
        session_id: &str,
        outcome: &str,
        reason_code: &str,
        comment: &str,
    ) -> AppResult<DecisionRow> {
        let s = self.review_session_row(who, session_id).await?;
        if !who.role.can_sign() {
            return Err(AppError::Forbidden(format!(
                "a {} cannot sign decisions",
                who.role.code()
            )));
        }
        if !matches!(outcome, "confirm" | "overturn") {
            return Err(AppError::Invalid {
                field: "outcome",
                why: "must be confirm or overturn".into(),
            });
        }
        let reason_ok = !reason_code.is_empty()
            && reason_code.len() <= 64
            && reason_code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !reason_ok {
            return Err(AppError::Invalid {
                field: "reason_code",
                why: "must be a code like R3_popup_check".into(),
            });
        }
        if comment.chars().count() > 2000 {
            return Err(AppError::Invalid {
                field: "comment",
                why: "must be at most 2000 characters".into(),
            });
        }
        let existing = self.store.decisions_of_session(&s.id).await?;
        if existing.iter().any(|d| d.signer2.is_none()) {
            return Err(AppError::Conflict(
                "a decision on this session awaits its countersignature".into(),
            ));
        }
        let d = DecisionRow {
            id: new_id(),
            session_id: s.id.clone(),
            outcome: outcome.to_owned(),
            reason_code: reason_code.to_owned(),
            comment: comment.to_owned(),
            signer1: who.id.clone(),
            signed1_at: self.now(),
            signer2: None,
            signed2_at: None,
        };
        self.store.insert_decision(&d).await?;
        self.audit(
            &who.id,
            "sign_decision",
            &who.province,
            &s.id,
            &format!(
                "decision={} outcome={outcome} reason={reason_code} comment={comment}",
                d.id
            ),
        )
        .await?;
        Ok(d)
    }

    /// The second signature. The first signer, auditors and administrators are refused.
    pub async fn countersign(&self, who: &Reviewer, decision_id: &str) -> AppResult<DecisionRow> {
        let d = self
            .store
            .decision(decision_id)
            .await?
            .ok_or(AppError::NotFound("decision"))?;
        // Out-of-province decisions are not found.
        self.review_session_row(who, &d.session_id).await?;
        if !who.role.can_sign() {
            return Err(AppError::Forbidden(format!(
                "a {} cannot sign decisions",
                who.role.code()
            )));
        }
        if d.signer1 == who.id {
            self.audit(
                &who.id,
                "countersign_refused",
                &who.province,
                &d.session_id,
                &format!("decision={} same signer", d.id),
            )
            .await?;
            return Err(AppError::Forbidden(
                "the same reviewer cannot sign a decision twice".into(),
            ));
        }
        if d.signer2.is_some() {
            return Err(AppError::Conflict(
                "the decision is already countersigned".into(),
            ));
        }
        if !self
            .store
            .countersign_decision(&d.id, &who.id, self.now())
            .await?
        {
            return Err(AppError::Conflict(
                "the decision was countersigned meanwhile".into(),
            ));
        }
        self.audit(
            &who.id,
            "countersign",
            &who.province,
            &d.session_id,
            &format!("decision={}", d.id),
        )
        .await?;
        self.store
            .decision(decision_id)
            .await?
            .ok_or(AppError::NotFound("decision"))
    }
}
