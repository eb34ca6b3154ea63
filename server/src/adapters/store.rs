//! The relational store (sqlx). One set of portable queries runs on SQLite (the embedded
//! default) and PostgreSQL; DDL lives in `server/migrations/<backend>/`. Invariants: the
//! event log is append-only and idempotent on `(session, origin, seq)`; server sequence
//! numbers come from one atomic counter per session, so two writers never share a number.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::domain::{Event, Millis, ProfileRef};
use crate::model::{Class, Course, Enrolment, Learner, Lesson, Platform, SessionRecord, Snapshot};

/// The session columns, with a static filter (sqlx only takes static SQL text).
macro_rules! session_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, enrolment_id, learner_id, lesson_id, platform_id, context_json, profile_id, ",
            "profile_version, created_at, ended_at FROM sessions ",
            $tail
        )
    };
}

/// Lessons with `approved` judged for the province bound as `$1`.
macro_rules! lesson_select {
    ($filter:literal) => {
        concat!(
            "SELECT l.id, l.course_id, l.position, l.title, l.duration_ms, l.content_hash, ",
            "(SELECT COUNT(*) FROM approved_content a WHERE a.province = $1 AND a.content_hash = l.content_hash) AS approved ",
            "FROM lessons l WHERE ",
            $filter,
            " ORDER BY l.position"
        )
    };
}

/// A store failure, by domain: the caller decides what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded: a bug or tampering.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(db.message().to_owned());
        }
        StoreError::Unavailable(e)
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

type Result<T> = std::result::Result<T, StoreError>;

mod batch;
mod face;
mod log;
mod metered;
pub mod review;
pub use face::ConsentReceipt;
pub use log::VerdictWrite;

/// A refused session start, as stored.
#[derive(Debug, Clone)]
pub struct RefusalRow<'a> {
    pub id: &'a str,
    pub learner_id: &'a str,
    pub enrolment_id: Option<&'a str>,
    pub lesson_id: Option<&'a str>,
    pub rule: &'a str,
    pub detail: &'a str,
    pub at: Millis,
}

/// Set on every SQLite connection. WAL lets `proctor admin` write while `proctor serve` runs,
/// and the busy timeout makes a concurrent writer wait instead of failing. The last three are
/// for the write path under load: pages come from a 64 MiB cache and a memory map instead of a
/// `pread` each, and the WAL is checkpointed every ~40 MiB rather than every 4 MiB, so a
/// verdict row rewritten five times a second reaches the database file once per checkpoint.
const SQLITE_PRAGMAS: [&str; 7] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -65536",
    "PRAGMA mmap_size = 268435456",
    "PRAGMA wal_autocheckpoint = 10000",
];

/// Native PostgreSQL connections for the event log's `COPY`s: each partition's store writer
/// holds at most one at a time.
const COPY_CONNECTIONS: u32 = 8;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL only: a few native connections for `COPY` (the event log's batched appends;
    /// `sqlx::Any` has no `COPY`). Connected on first use.
    copy: Option<sqlx::PgPool>,
    /// SQLite only: one connection for the write path (`writes`). SQLite has one writer at a
    /// time anyway; with the writes spread over the pool, each connection's page cache was
    /// stale whenever it wrote (another connection had committed since), so every write
    /// re-read its pages (`pread`) before changing them.
    writer: Option<AnyPool>,
}

/// A new session with everything the fold needs.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub record: &'a SessionRecord,
    pub context_json: &'a str,
    pub started: &'a Event,
}

impl Store {
    /// Connects and applies migrations. `url` is `sqlite://path` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Corrupt(format!(
                "unsupported database URL scheme in {url}"
            )));
        };
        // A store outage answers 503 within seconds instead of holding requests for the
        // default 30 s acquire timeout.
        let options = |connections: u32| {
            let opts = AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(std::time::Duration::from_secs(3));
            if backend == Backend::Sqlite {
                opts.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
            } else {
                opts
            }
        };
        let pool = options(if backend == Backend::Sqlite { 4 } else { 16 })
            .connect(url)
            .await
            .map_err(StoreError::Unavailable)?;
        let writer = match backend {
            Backend::Sqlite => Some(
                options(1)
                    .connect(url)
                    .await
                    .map_err(StoreError::Unavailable)?,
            ),
            Backend::Postgres => None,
        };
        let copy = match backend {
            Backend::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(COPY_CONNECTIONS)
                    .acquire_timeout(std::time::Duration::from_secs(3))
                    .connect_lazy(url)
                    .map_err(StoreError::Unavailable)?,
            ),
            Backend::Sqlite => None,
        };
        let store = Store {
            pool,
            backend,
            copy,
            writer,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool of the hot write path (the event log, server sequence numbers, verdicts): on
    /// SQLite its one writer connection, on PostgreSQL the pool.
    fn writes(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(copy) = &self.copy {
            copy.close().await;
        }
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    // ----- platforms and approved content -----

    pub async fn create_platform(&self, p: &Platform, secret_sha256: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO platforms (id, name, province, client_id, secret_sha256, registered, banned_since, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.province)
        .bind(&p.client_id)
        .bind(secret_sha256)
        .bind(i64::from(p.registered))
        .bind(p.banned_since.map(|m| m.0))
        .bind(p.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The platform and its secret hash, by OAuth2 client id.
    pub async fn platform_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<(Platform, String)>> {
        let row = sqlx::query(
            "SELECT id, name, province, client_id, registered, banned_since, created_at, secret_sha256 \
             FROM platforms WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((platform_from(&r)?, r.try_get::<String, _>("secret_sha256")?)))
            .transpose()
    }

    pub async fn platform(&self, id: &str) -> Result<Option<Platform>> {
        let row = sqlx::query(
            "SELECT id, name, province, client_id, registered, banned_since, created_at FROM platforms WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| platform_from(&r)).transpose()
    }

    pub async fn set_platform_standing(
        &self,
        id: &str,
        registered: bool,
        banned_since: Option<Millis>,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE platforms SET registered = $2, banned_since = $3 WHERE id = $1")
                .bind(id)
                .bind(i64::from(registered))
                .bind(banned_since.map(|m| m.0))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn approve_content(
        &self,
        province: &str,
        content_hash: &str,
        at: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO approved_content (province, content_hash, approved_at) VALUES ($1, $2, $3) \
             ON CONFLICT (province, content_hash) DO NOTHING",
        )
        .bind(province)
        .bind(content_hash)
        .bind(at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ----- courses and lessons -----

    pub async fn create_course(&self, c: &Course) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO courses (id, platform_id, title, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&c.id)
        .bind(&c.platform_id)
        .bind(&c.title)
        .bind(c.created_at.0)
        .execute(&mut *tx)
        .await?;
        for l in &c.lessons {
            sqlx::query(
                "INSERT INTO lessons (id, course_id, position, title, duration_ms, content_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&l.id)
            .bind(&c.id)
            .bind(i64::from(l.position))
            .bind(&l.title)
            .bind(l.duration_ms)
            .bind(&l.content_hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A course with its lessons in order; `approved` is judged for `province`.
    pub async fn course(&self, id: &str, province: &str) -> Result<Option<Course>> {
        let Some(row) =
            sqlx::query("SELECT id, platform_id, title, created_at FROM courses WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let lessons = sqlx::query(lesson_select!("l.course_id = $2"))
            .bind(province)
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(lesson_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Course {
            id: row.try_get("id")?,
            platform_id: row.try_get("platform_id")?,
            title: row.try_get("title")?,
            lessons,
            created_at: Millis(row.try_get("created_at")?),
        }))
    }

    pub async fn lesson(&self, id: &str, province: &str) -> Result<Option<Lesson>> {
        let row = sqlx::query(lesson_select!("l.id = $2"))
            .bind(province)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(lesson_from).transpose()
    }

    // ----- classes, learners, enrolments -----

    pub async fn create_class(&self, c: &Class) -> Result<()> {
        sqlx::query(
            "INSERT INTO classes (id, platform_id, course_id, name, occupation, profile_id, profile_version, \
             planned_total_hours, planned_online_hours, created_at, region) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&c.id)
        .bind(&c.platform_id)
        .bind(&c.course_id)
        .bind(&c.name)
        .bind(c.occupation.as_deref())
        .bind(&c.profile.id)
        .bind(i64::from(c.profile.version))
        .bind(i64::from(c.planned_total_hours))
        .bind(i64::from(c.planned_online_hours))
        .bind(c.created_at.0)
        .bind(c.region.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn class(&self, id: &str) -> Result<Option<Class>> {
        let row = sqlx::query(
            "SELECT id, platform_id, course_id, name, occupation, profile_id, profile_version, planned_total_hours, \
             planned_online_hours, created_at, region FROM classes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Class {
                id: r.try_get("id")?,
                platform_id: r.try_get("platform_id")?,
                course_id: r.try_get("course_id")?,
                name: r.try_get("name")?,
                occupation: r.try_get("occupation")?,
                region: r.try_get("region")?,
                profile: ProfileRef {
                    id: r.try_get("profile_id")?,
                    version: u32_col(&r, "profile_version")?,
                },
                planned_total_hours: u32_col(&r, "planned_total_hours")?,
                planned_online_hours: u32_col(&r, "planned_online_hours")?,
                created_at: Millis(r.try_get("created_at")?),
            })
        })
        .transpose()
    }

    pub async fn class_size(&self, class_id: &str) -> Result<u32> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM enrolments WHERE class_id = $1")
            .bind(class_id)
            .fetch_one(&self.pool)
            .await?;
        u32_col(&row, "n")
    }

    pub async fn create_learner(&self, l: &Learner, id_number_sha256: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO learners (id, platform_id, external_ref, real_name, id_number_sha256, face_consent, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&l.id)
        .bind(&l.platform_id)
        .bind(&l.external_ref)
        .bind(&l.real_name)
        .bind(id_number_sha256)
        .bind(i64::from(l.face_consent))
        .bind(l.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn learner(&self, id: &str) -> Result<Option<Learner>> {
        let row = sqlx::query(
            "SELECT id, platform_id, external_ref, real_name, face_consent, created_at FROM learners WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Learner {
                id: r.try_get("id")?,
                platform_id: r.try_get("platform_id")?,
                external_ref: r.try_get("external_ref")?,
                real_name: r.try_get("real_name")?,
                face_consent: r.try_get::<i64, _>("face_consent")? != 0,
                created_at: Millis(r.try_get("created_at")?),
            })
        })
        .transpose()
    }

    pub async fn create_enrolment(&self, e: &Enrolment) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrolments (id, class_id, learner_id, enrolled_at, examined_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&e.id)
        .bind(&e.class_id)
        .bind(&e.learner_id)
        .bind(e.enrolled_at.0)
        .bind(e.examined_at.map(|m| m.0))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn enrolment(&self, id: &str) -> Result<Option<Enrolment>> {
        let row = sqlx::query("SELECT id, class_id, learner_id, enrolled_at, examined_at FROM enrolments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(enrolment_from).transpose()
    }

    /// Every enrolment of a learner's real identity across platforms (same ID-number hash).
    pub async fn enrolments_of_person(&self, learner_id: &str) -> Result<Vec<Enrolment>> {
        sqlx::query(
            "SELECT e.id, e.class_id, e.learner_id, e.enrolled_at, e.examined_at FROM enrolments e \
             JOIN learners l ON l.id = e.learner_id \
             WHERE l.id_number_sha256 = (SELECT id_number_sha256 FROM learners WHERE id = $1) \
             ORDER BY e.enrolled_at, e.id",
        )
        .bind(learner_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(enrolment_from)
        .collect()
    }

    pub async fn set_examined(&self, enrolment_id: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE enrolments SET examined_at = $2 WHERE id = $1")
            .bind(enrolment_id)
            .bind(at.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ----- sessions and their logs -----

    /// Creates a session with its first event (`SessionStarted`, server seq 1).
    ///
    /// A session id is a uuid (`app::new_id`): PostgreSQL's event log keys sessions by it
    /// (migration 0010), so another id is refused on both stores.
    pub async fn create_session(&self, s: NewSession<'_>) -> Result<()> {
        let r = s.record;
        if uuid::Uuid::try_parse(&r.id).is_err() {
            return Err(StoreError::Corrupt(format!(
                "session id {} is not a uuid",
                r.id
            )));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, enrolment_id, learner_id, lesson_id, platform_id, context_json, profile_id, \
             profile_version, server_seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(&r.enrolment_id)
        .bind(&r.learner_id)
        .bind(&r.lesson_id)
        .bind(&r.platform_id)
        .bind(s.context_json)
        .bind(&r.profile.id)
        .bind(i64::from(r.profile.version))
        .bind(i64::try_from(s.started.seq).map_err(corrupt)?)
        .bind(r.created_at.0)
        .execute(&mut *tx)
        .await?;
        log::insert_event(&mut tx, self.backend(), &r.id, s.started).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_q(&self, id: &str) -> Result<Option<(SessionRecord, String)>> {
        let row = sqlx::query(session_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((session_from(&r)?, r.try_get::<String, _>("context_json")?)))
            .transpose()
    }

    pub async fn sessions_of_enrolment(&self, enrolment_id: &str) -> Result<Vec<SessionRecord>> {
        sqlx::query(session_select!(
            "WHERE enrolment_id = $1 ORDER BY created_at, id"
        ))
        .bind(enrolment_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(session_from)
        .collect()
    }

    /// Every session id, oldest first (operators' tools and tests).
    pub async fn all_session_ids(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT id FROM sessions ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
            .collect()
    }

    /// Sessions that have not ended, oldest first (for the worker's lease sweep at start-up).
    pub async fn open_sessions(&self) -> Result<Vec<SessionRecord>> {
        sqlx::query(session_select!(
            "WHERE ended_at IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(session_from)
        .collect()
    }

    pub async fn record_refusal(&self, r: &RefusalRow<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO refusals (id, enrolment_id, learner_id, lesson_id, rule, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id)
        .bind(r.enrolment_id)
        .bind(r.learner_id)
        .bind(r.lesson_id)
        .bind(r.rule)
        .bind(r.detail)
        .bind(r.at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Refused starts of an enrolment: (rule, detail, lesson, at).
    pub async fn refusals_of_enrolment(
        &self,
        enrolment_id: &str,
    ) -> Result<Vec<(String, String, Option<String>, Millis)>> {
        sqlx::query("SELECT rule, detail, lesson_id, at FROM refusals WHERE enrolment_id = $1 ORDER BY at, id")
            .bind(enrolment_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("rule")?, r.try_get("detail")?, r.try_get("lesson_id")?, Millis(r.try_get("at")?))))
            .collect()
    }

    // ----- snapshots -----

    async fn insert_snapshot_q(&self, s: &Snapshot, path: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO snapshots (id, session_id, nonce, sha256, content_type, bytes, path, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.session_id)
        .bind(&s.nonce)
        .bind(&s.sha256)
        .bind(&s.content_type)
        .bind(s.bytes)
        .bind(path)
        .bind(s.at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn u32_col(r: &AnyRow, col: &str) -> Result<u32> {
    u32::try_from(r.try_get::<i64, _>(col)?).map_err(corrupt)
}

fn platform_from(r: &AnyRow) -> Result<Platform> {
    Ok(Platform {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        province: r.try_get("province")?,
        client_id: r.try_get("client_id")?,
        registered: r.try_get::<i64, _>("registered")? != 0,
        banned_since: r.try_get::<Option<i64>, _>("banned_since")?.map(Millis),
        created_at: Millis(r.try_get("created_at")?),
    })
}

fn lesson_from(r: &AnyRow) -> Result<Lesson> {
    Ok(Lesson {
        id: r.try_get("id")?,
        course_id: r.try_get("course_id")?,
        position: u32_col(r, "position")?,
        title: r.try_get("title")?,
        duration_ms: r.try_get("duration_ms")?,
        content_hash: r.try_get("content_hash")?,
        approved: r.try_get::<i64, _>("approved")? > 0,
    })
}

fn enrolment_from(r: &AnyRow) -> Result<Enrolment> {
    Ok(Enrolment {
        id: r.try_get("id")?,
        class_id: r.try_get("class_id")?,
        learner_id: r.try_get("learner_id")?,
        enrolled_at: Millis(r.try_get("enrolled_at")?),
        examined_at: r.try_get::<Option<i64>, _>("examined_at")?.map(Millis),
    })
}

fn session_from(r: &AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        enrolment_id: r.try_get("enrolment_id")?,
        learner_id: r.try_get("learner_id")?,
        lesson_id: r.try_get("lesson_id")?,
        platform_id: r.try_get("platform_id")?,
        profile: ProfileRef {
            id: r.try_get("profile_id")?,
            version: u32_col(r, "profile_version")?,
        },
        created_at: Millis(r.try_get("created_at")?),
        ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(Millis),
    })
}
