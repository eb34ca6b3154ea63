//! Migrations that rewrite a table keep what it held. A store made by the migrations before
//! one, with events already in the log, is opened by the service (which applies the rest):
//! every event reads back the same, and the key still refuses a duplicate.
//! - SQLite (the embedded store): 0009 rebuilds the event log without its foreign key, since
//!   SQLite cannot drop a constraint.
//! - PostgreSQL (on every pass, in a fresh database): 0010 keys the log by the session id as
//!   a `uuid` instead of text; 0011 leaves room on the verdict table's pages.

use std::borrow::Cow;
use std::str::FromStr;

use proctor::adapters::store::Store;
use proctor::domain::{Event, EventBody, Millis, Origin};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// How many foreign keys the `events` table declares.
async fn event_foreign_keys(pool: &sqlx::SqlitePool) -> usize {
    sqlx::query("SELECT * FROM pragma_foreign_key_list('events')")
        .fetch_all(pool)
        .await
        .expect("list the foreign keys")
        .len()
}

fn event(origin: Origin, seq: u64, at: i64) -> Event {
    Event {
        origin,
        seq,
        at: Millis(at),
        body: EventBody::Signal {
            name: "migration".into(),
            detail: format!("{origin:?} {seq} 课时"),
        },
    }
}

/// An event as a row of the log: origin, seq, at, body.
fn row(e: &Event) -> (&'static str, i64, i64, String) {
    let origin = match e.origin {
        Origin::Client => "client",
        Origin::Server => "server",
    };
    (
        origin,
        i64::try_from(e.seq).expect("small"),
        e.at.0,
        serde_json::to_string(&e.body).expect("a body serialises"),
    )
}

/// Two sessions' logs, interleaved: three events of `a` (both origins), one of `b`.
fn two_logs<'a>(a: &'a str, b: &'a str) -> Vec<(&'a str, Event)> {
    vec![
        (a, event(Origin::Client, 1, 1_000)),
        (a, event(Origin::Server, 1, 1_500)),
        (a, event(Origin::Client, 2, 2_000)),
        (b, event(Origin::Client, 1, 1_200)),
    ]
}

/// A session's events of `log`, in the log's order.
fn expected(log: &[(&str, Event)], sid: &str) -> Vec<Event> {
    let mut v: Vec<Event> = log
        .iter()
        .filter(|(s, _)| *s == sid)
        .map(|(_, e)| e.clone())
        .collect();
    v.sort_by_key(|e| e.at);
    v
}

/// The migrations before `version` (which must exist).
fn migrations_before(mut all: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    let earlier: Vec<_> = all
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect();
    assert!(
        earlier.len() < all.migrations.len(),
        "migration {version} exists"
    );
    all.migrations = Cow::Owned(earlier);
    all
}

#[tokio::test]
async fn the_event_log_rebuilt_without_its_foreign_key_keeps_every_event() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/proctor.db?mode=rwc", dir.path().display());
    // The store as the migrations before 0009 left it. The session rows the foreign key
    // points at are beside the point here: the check is off for the set-up only.
    let opts = SqliteConnectOptions::from_str(&url)
        .expect("a SQLite URL")
        .foreign_keys(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .expect("open SQLite");
    migrations_before(sqlx::migrate!("../server/migrations/sqlite"), 9)
        .run(&pool)
        .await
        .expect("the migrations before 0009");
    assert_eq!(
        event_foreign_keys(&pool).await,
        1,
        "the log starts with its foreign key"
    );
    let log = two_logs("s1", "s2");
    for (sid, e) in &log {
        let (origin, seq, at, body) = row(e);
        sqlx::query(
            "INSERT INTO events (session_id, origin, seq, at, body_json) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(*sid)
        .bind(origin)
        .bind(seq)
        .bind(at)
        .bind(body)
        .execute(&pool)
        .await
        .expect("an event row as stored before 0009");
    }
    pool.close().await;

    let store = Store::connect(&url)
        .await
        .expect("the service applies 0009");
    let want = |sid: &str| expected(&log, sid);
    assert_eq!(store.events("s1").await.expect("read s1"), want("s1"));
    assert_eq!(store.events("s2").await.expect("read s2"), want("s2"));
    // The key survived the rebuild: an event stored again is not a second row.
    store
        .append_events(&[("s1".to_owned(), event(Origin::Client, 2, 2_000))])
        .await
        .expect("a stored event appended again is skipped");
    assert_eq!(store.events("s1").await.expect("read s1"), want("s1"));

    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("open SQLite again");
    assert_eq!(
        event_foreign_keys(&pool).await,
        0,
        "0009 drops the foreign key"
    );
}

/// A fresh PostgreSQL database made by the migrations before `version`: its URL, and a pool of
/// one connection to it.
async fn postgres_before(version: i64) -> (String, sqlx::PgPool) {
    let url = proctor_e2e::fresh_pg_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("open the test database");
    migrations_before(sqlx::migrate!("../server/migrations/postgres"), version)
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("the migrations before {version}: {e}"));
    (url, pool)
}

#[tokio::test]
async fn the_postgres_event_log_keyed_by_uuid_keeps_every_event() {
    let (url, pool) = postgres_before(10).await;
    let key_type = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'events' AND column_name = 'session_id'",
        )
        .fetch_one(&pool)
        .await
        .expect("the key's type")
    };
    assert_eq!(key_type(pool.clone()).await, "text");
    let (a, b) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let log = two_logs(&a, &b);
    for (sid, e) in &log {
        let (origin, seq, at, body) = row(e);
        sqlx::query(
            "INSERT INTO events (session_id, origin, seq, at, body_json) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(*sid)
        .bind(origin)
        .bind(seq)
        .bind(at)
        .bind(body)
        .execute(&pool)
        .await
        .expect("an event row as stored before 0010");
    }

    let store = Store::connect(&url)
        .await
        .expect("the service applies 0010");
    assert_eq!(key_type(pool.clone()).await, "uuid");
    let want = |sid: &str| expected(&log, sid);
    assert_eq!(store.events(&a).await.expect("read a"), want(&a));
    assert_eq!(store.events(&b).await.expect("read b"), want(&b));
    assert_eq!(store.last_client_seq(&a).await.expect("a's last seq"), 2);
    // The key survived the change: an event stored again is not a second row, a new one is.
    let third = event(Origin::Client, 3, 3_000);
    store
        .append_events(&[
            (a.clone(), event(Origin::Client, 2, 2_000)),
            (a.clone(), third.clone()),
        ])
        .await
        .expect("a stored event appended again is skipped");
    let mut grown = want(&a);
    grown.push(third);
    assert_eq!(store.events(&a).await.expect("read a"), grown);
    // An id that is no uuid has no events (a read, not a failed cast).
    assert!(store.events("s1").await.expect("read s1").is_empty());
    assert_eq!(store.last_client_seq("s1").await.expect("s1's last seq"), 0);
    store.close().await;
    pool.close().await;
}

/// 0011 leaves half of each verdict page free, so a verdict row's next version (every
/// 150-180 ms per live session) fits on its page and is updated in place, without a new
/// index entry (a HOT update; BENCHMARKS.md measures it). Rows already there move as they are
/// rewritten; the setting is what the migration owns.
#[tokio::test]
async fn the_postgres_verdict_table_keeps_room_for_its_rows_next_versions() {
    let (url, pool) = postgres_before(11).await;
    let options = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, Option<Vec<String>>>(
            "SELECT reloptions FROM pg_class WHERE relname = 'session_verdicts'",
        )
        .fetch_one(&pool)
        .await
        .expect("the table's storage options")
        .unwrap_or_default()
    };
    assert!(
        options(pool.clone()).await.is_empty(),
        "full pages before 0011"
    );
    let store = Store::connect(&url)
        .await
        .expect("the service applies 0011");
    assert_eq!(
        options(pool.clone()).await,
        vec!["fillfactor=50".to_owned()]
    );
    store.close().await;
    pool.close().await;
}
