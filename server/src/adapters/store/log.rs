//! The event log and the verdicts stored from it: server sequence numbers, batched appends
//! (`batch`), the log in canonical order, and verdict writes fenced by the log's highest
//! sequence numbers.

use std::io::Write as _;

use sqlx::Row;

use super::{Backend, Result, Store, StoreError, batch, corrupt};
use crate::domain::{Event, Millis, Origin, Record, RecordCounts, RecordList, SessionVerdict};

/// What follows a session id parameter where it meets the event log's key: PostgreSQL keys
/// the log by the id as a 16-byte `uuid` (migration 0010: a third smaller key than its text,
/// compared as bytes), SQLite by its text.
pub(super) fn log_id(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "::uuid",
        Backend::Sqlite => "",
    }
}

impl Store {
    /// Whether `session_id` can have events in the log. Every session id is a uuid
    /// (`create_session`); PostgreSQL's log can hold nothing else, and asked for another
    /// string it would fail the cast, so such a read answers "none" on both stores.
    pub(super) fn may_have_events(&self, session_id: &str) -> bool {
        self.backend() == Backend::Sqlite || uuid::Uuid::try_parse(session_id).is_ok()
    }

    /// Reserves the next server sequence number of a session (atomic across processes).
    pub(super) async fn next_server_seq_q(&self, session_id: &str) -> Result<u64> {
        let row = sqlx::query(
            "UPDATE sessions SET server_seq = server_seq + 1 WHERE id = $1 RETURNING server_seq",
        )
        .bind(session_id)
        .fetch_optional(self.writes())
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no session {session_id}")))?;
        u64::try_from(row.try_get::<i64, _>("server_seq")?).map_err(corrupt)
    }

    /// Appends events; already-stored `(session, origin, seq)` keys are ignored. Atomic: the
    /// whole batch is stored or none of it.
    ///
    /// Optimistic on PostgreSQL: a batch is first written without skipping stored keys, so
    /// each key is checked once, while it is inserted. (`INSERT … ON CONFLICT DO NOTHING`
    /// first probes every key with an index scan and takes a speculative-insertion lock per
    /// row: about a third of PostgreSQL's CPU under load, BENCHMARKS.md.) A large batch is one
    /// `COPY` (no parameters to bind, heap pages filled a batch at a time), a small one a few
    /// plain multi-row `INSERT`s in one transaction (`COPY_MIN_BYTES` says why). A stored key
    /// comes back only with redelivery (a reclaimed or raced partition, a retried write); its
    /// unique violation fails the whole write, and the batch is written again with inserts
    /// that skip the keys already stored.
    pub(super) async fn append_events_q(&self, events: &[(String, Event)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(events.len());
        for (sid, e) in events {
            rows.push((
                sid.as_str(),
                origin_str(e.origin),
                i64::try_from(e.seq).map_err(corrupt)?,
                e.at.0,
                serde_json::to_string(&e.body).map_err(corrupt)?,
            ));
        }
        // In key order, each session's rows of the batch go into the index one after the
        // other, into the leaf page the previous row just touched (BENCHMARKS.md). A text
        // uuid sorts as its bytes do, so the order is the key's on both stores. Stable: of two
        // rows with one key, the first in the batch is still the one stored.
        rows.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        // SQLite probes a new row's key before inserting it either way, so it skips
        // duplicates from the start.
        // The size decides before any `COPY` data is built (escaping only adds to it).
        let size: usize = rows
            .iter()
            .map(|r| r.0.len() + r.1.len() + r.4.len() + 40)
            .sum();
        let first = match &self.copy {
            Some(pg) if size >= COPY_MIN_BYTES => copy_event_rows(pg, copy_data(&rows)?).await,
            Some(_) => self.insert_event_rows(&rows, Duplicates::Refuse).await,
            None => self.insert_event_rows(&rows, Duplicates::Ignore).await,
        };
        match first {
            Err(StoreError::Conflict(_)) => self.insert_event_rows(&rows, Duplicates::Ignore).await,
            done => done,
        }
    }

    /// Writes event rows in one transaction of multi-row inserts; with `Duplicates::Refuse` a
    /// stored key fails the whole batch with `StoreError::Conflict` (the transaction rolls
    /// back).
    async fn insert_event_rows(&self, rows: &[EventRow<'_>], duplicates: Duplicates) -> Result<()> {
        let mut tx = self.writes().begin().await?;
        let mut rest = rows;
        for n in batch::chunks(rows.len()) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = append_statement(self.backend(), n, duplicates);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (sid, origin, seq, at, body) in chunk {
                q = q
                    .bind(*sid)
                    .bind(*origin)
                    .bind(*seq)
                    .bind(*at)
                    .bind(body.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A session's log in canonical order.
    pub(super) async fn events_q(&self, session_id: &str) -> Result<Vec<Event>> {
        if !self.may_have_events(session_id) {
            return Ok(Vec::new());
        }
        let sql = batch::statement(self.backend(), "events_of", 1, |_, p| {
            format!(
                "SELECT origin, seq, at, body_json FROM events WHERE session_id = $1{} \
                 ORDER BY at, origin DESC, seq",
                log_id(p)
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let origin = match r.try_get::<String, _>("origin")?.as_str() {
                    "server" => Origin::Server,
                    "client" => Origin::Client,
                    other => return Err(StoreError::Corrupt(format!("unknown origin {other}"))),
                };
                let body =
                    serde_json::from_str(&r.try_get::<String, _>("body_json")?).map_err(corrupt)?;
                Ok(Event {
                    origin,
                    seq: u64::try_from(r.try_get::<i64, _>("seq")?).map_err(corrupt)?,
                    at: Millis(r.try_get("at")?),
                    body,
                })
            })
            .collect()
    }

    /// The highest stored client sequence number of a session (0 when none).
    pub async fn last_client_seq(&self, session_id: &str) -> Result<u64> {
        if !self.may_have_events(session_id) {
            return Ok(0);
        }
        let sql = batch::statement(self.backend(), "last_client_seq", 1, |_, p| {
            format!(
                "SELECT MAX(seq) AS m FROM events WHERE session_id = $1{} AND origin = 'client'",
                log_id(p)
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session_id)
            .fetch_one(&self.pool)
            .await?;
        let m: Option<i64> = row.try_get("m")?;
        u64::try_from(m.unwrap_or(0)).map_err(corrupt)
    }

    /// Persists verdicts fenced by the log: each verdict is written only if its fence (the
    /// client and server seq its fold had seen) is still the log's highest (no stored event
    /// is above it), i.e. the fold it came from has seen the whole log; its records are
    /// written with it (upserts: a record is a function of the log). Returns the sessions whose verdict was stale (another
    /// worker appended meanwhile: a lease race); the caller re-folds them from the log. A
    /// stale fold can thus never overwrite a newer verdict.
    pub(super) async fn save_verdicts_fenced_q(
        &self,
        verdicts: &[VerdictWrite<'_>],
        now: Millis,
    ) -> Result<Vec<String>> {
        let mut stale = Vec::new();
        if verdicts.is_empty() {
            return Ok(stale);
        }
        let mut rows = Vec::with_capacity(verdicts.len());
        for w in verdicts {
            let released = if w.released.is_zero() {
                None
            } else {
                Some(serde_json::to_string(w.released).map_err(corrupt)?)
            };
            rows.push((
                w,
                serde_json::to_string(w.verdict).map_err(corrupt)?,
                released,
                i64::try_from(w.client_seq).map_err(corrupt)?,
                i64::try_from(w.server_seq).map_err(corrupt)?,
            ));
        }
        let mut written = std::collections::HashSet::new();
        let mut tx = self.writes().begin().await?;
        let mut rest = rows.as_slice();
        for n in batch::chunks(rows.len()) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            // A row is written only where the log holds no event above the fold's sequence
            // numbers; RETURNING names the rows written, the rest are stale. Every event a
            // fold has seen is stored before its verdict (the writer's order; timers and
            // gateways store a server event before it is folded), so the log's highest is
            // never below the fence, and "nothing above it" is "it is the log's highest".
            // Asked that way, each check is a forward index probe that stops at the first
            // key past the fence. `MAX(seq)` was a backward scan, which on PostgreSQL reads
            // every key of the session on the index's last leaf page: about three times the
            // cost per verdict (BENCHMARKS.md). Scalar subqueries, not `NOT EXISTS`:
            // PostgreSQL plans that as an anti-join, which under load took two to four times
            // as long per verdict write as the `MAX` form did (BENCHMARKS.md).
            let sql = batch::statement(self.backend(), "save_verdicts_fenced", n, |n, p| {
                format!(
                    "WITH v (session_id, verdict_json, released_json, credited_ms, ended, flagged, updated_at, cseq, sseq) AS (VALUES {}) \
                     INSERT INTO session_verdicts (session_id, verdict_json, released_json, credited_ms, ended, flagged, updated_at) \
                     SELECT v.session_id, v.verdict_json, v.released_json, v.credited_ms, v.ended, v.flagged, v.updated_at FROM v WHERE \
                     (SELECT e.seq FROM events e WHERE e.session_id = v.session_id{id} AND e.origin = 'client' AND e.seq > v.cseq LIMIT 1) IS NULL AND \
                     (SELECT e.seq FROM events e WHERE e.session_id = v.session_id{id} AND e.origin = 'server' AND e.seq > v.sseq LIMIT 1) IS NULL \
                     ON CONFLICT (session_id) DO UPDATE SET \
                     verdict_json = excluded.verdict_json, released_json = excluded.released_json, \
                     credited_ms = excluded.credited_ms, ended = excluded.ended, \
                     flagged = excluded.flagged, updated_at = excluded.updated_at \
                     RETURNING session_id",
                    batch::placeholders(p, n, 9),
                    id = log_id(p)
                )
            });
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (w, json, released, cseq, sseq) in chunk {
                q = q
                    .bind(w.verdict.session_id.as_str())
                    .bind(json.as_str())
                    .bind(released.as_deref())
                    .bind(w.verdict.credited_ms)
                    .bind(i64::from(w.verdict.ended))
                    .bind(i64::from(w.verdict.flagged_for_review))
                    .bind(now.0)
                    .bind(*cseq)
                    .bind(*sseq);
            }
            for r in q.fetch_all(&mut *tx).await? {
                written.insert(r.try_get::<String, _>("session_id")?);
            }
        }
        let mut records = Vec::new();
        for (w, ..) in &rows {
            let sid = w.verdict.session_id.as_str();
            if !written.contains(sid) {
                stale.push(sid.to_owned());
                continue;
            }
            for (idx, r) in w.records {
                records.push((sid, r.list().key(), i64::from(*idx), record_json(r)?));
            }
            if w.verdict.ended {
                sqlx::query("UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
                    .bind(sid)
                    .bind(w.verdict.last_event_at.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let mut rest = records.as_slice();
        for n in batch::chunks(records.len()) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = batch::statement(self.backend(), "save_verdict_records", n, |n, p| {
                format!(
                    "INSERT INTO verdict_records (session_id, list, idx, body_json) VALUES {} \
                     ON CONFLICT (session_id, list, idx) DO UPDATE SET body_json = excluded.body_json",
                    batch::placeholders(p, n, 4)
                )
            });
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (sid, list, idx, json) in chunk {
                q = q.bind(*sid).bind(*list).bind(*idx).bind(json.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(stale)
    }

    /// The stored verdict of a session as JSON: the verdict row, with the records a worker
    /// released put back in front of its lists (migration 0008).
    pub async fn verdict_json(&self, session_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT verdict_json, released_json FROM session_verdicts WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let head: String = row.try_get("verdict_json")?;
        let released: Option<String> = row.try_get("released_json")?;
        self.restore_verdict(session_id, head, released.as_deref())
            .await
            .map(Some)
    }

    /// A verdict row's JSON made whole: unchanged when nothing was released, else parsed, its
    /// records put back in front of its lists, and written out again.
    pub(super) async fn restore_verdict(
        &self,
        session_id: &str,
        head: String,
        released: Option<&str>,
    ) -> Result<String> {
        if released.is_none() {
            return Ok(head);
        }
        let records = self
            .released_records_of(&[session_id])
            .await?
            .remove(session_id)
            .unwrap_or_default();
        restore_with(session_id, head, released, records)
    }

    /// The released records of several sessions, by session id: one query per chunk of ids
    /// (`batch::CHUNKS`), so a list of verdicts is made whole in a few queries, not one per
    /// verdict.
    pub(super) async fn released_records_of(&self, ids: &[&str]) -> Result<ReleasedRecords> {
        let mut out = ReleasedRecords::new();
        let mut rest = ids;
        for n in batch::chunks(ids.len()) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = batch::statement(self.backend(), "released_records_of", n, |n, p| {
                format!(
                    "SELECT session_id, list, idx, body_json FROM verdict_records \
                     WHERE session_id IN ({})",
                    batch::placeholders(p, n, 1)
                )
            });
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                let list: String = r.try_get("list")?;
                let idx = u32::try_from(r.try_get::<i64, _>("idx")?).map_err(corrupt)?;
                let json: String = r.try_get("body_json")?;
                let list = RecordList::from_key(&list)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown record list {list}")))?;
                out.entry(r.try_get("session_id")?)
                    .or_default()
                    .push((idx, record_from(list, &json)?));
            }
        }
        Ok(out)
    }
}

/// Released records by session id: `(absolute index, record)`, in no particular order.
pub(super) type ReleasedRecords = std::collections::HashMap<String, Vec<(u32, Record)>>;

/// A verdict row's JSON made whole with its session's released records (`released_json` and
/// the rows read for it): unchanged when nothing was released.
pub(super) fn restore_with(
    session_id: &str,
    head: String,
    released: Option<&str>,
    records: Vec<(u32, Record)>,
) -> Result<String> {
    let Some(released) = released else {
        return Ok(head);
    };
    let released: RecordCounts = serde_json::from_str(released).map_err(corrupt)?;
    let mut verdict: SessionVerdict = serde_json::from_str(&head).map_err(corrupt)?;
    verdict
        .restore(&released, records)
        .map_err(|e| StoreError::Corrupt(format!("verdict of {session_id}: {e}")))?;
    serde_json::to_string(&verdict).map_err(corrupt)
}

/// A verdict to store with the fence it was computed at, and the records its fold hands off.
#[derive(Debug, Clone, Copy)]
pub struct VerdictWrite<'a> {
    /// The fold's verdict: a head when the fold released records.
    pub verdict: &'a SessionVerdict,
    /// The highest client and server seq the fold had seen (the fence).
    pub client_seq: u64,
    pub server_seq: u64,
    /// How many records of each list come before the head's (all of them stored).
    pub released: &'a RecordCounts,
    /// Closed records to store (absolute indices), written only with the verdict.
    pub records: &'a [(u32, Record)],
}

/// A record's stored JSON: the item alone (its list is a column).
fn record_json(r: &Record) -> Result<String> {
    match r {
        Record::Span(x) => serde_json::to_string(x),
        Record::Challenge(x) => serde_json::to_string(x),
        Record::FaceCheck(x) => serde_json::to_string(x),
        Record::Snapshot(x) => serde_json::to_string(x),
        Record::Signal(x) => serde_json::to_string(x),
        Record::Finding(_, x) => serde_json::to_string(x),
    }
    .map_err(corrupt)
}

fn record_from(list: RecordList, json: &str) -> Result<Record> {
    match list {
        RecordList::Timeline => serde_json::from_str(json).map(Record::Span),
        RecordList::Challenges => serde_json::from_str(json).map(Record::Challenge),
        RecordList::FaceChecks => serde_json::from_str(json).map(Record::FaceCheck),
        RecordList::Snapshots => serde_json::from_str(json).map(Record::Snapshot),
        RecordList::Signals => serde_json::from_str(json).map(Record::Signal),
        RecordList::Findings(rule) => serde_json::from_str(json).map(|f| Record::Finding(rule, f)),
    }
    .map_err(corrupt)
}

pub(super) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    session_id: &str,
    e: &Event,
) -> Result<()> {
    let sql = append_statement(backend, 1, Duplicates::Ignore);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(session_id)
        .bind(origin_str(e.origin))
        .bind(i64::try_from(e.seq).map_err(corrupt)?)
        .bind(e.at.0)
        .bind(serde_json::to_string(&e.body).map_err(corrupt)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Batches of fewer bytes than this (their fields' sizes, unescaped) are written with
/// multi-row inserts.
///
/// `COPY` sends its data and then its end as two writes, and sqlx does not set `TCP_NODELAY`:
/// the end waits (Nagle) for the server's acknowledgement of the data, which the server
/// delays (up to 40 ms on Linux) unless it received at least two full segments, 128 KiB on
/// loopback. Below that size a batch is a few multi-row statements, each one write answered
/// at once; above it `COPY` is cheaper for both sides (BENCHMARKS.md).
const COPY_MIN_BYTES: usize = 256 * 1024;

/// The rows in `COPY`'s text format.
fn copy_data(rows: &[EventRow<'_>]) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(rows.len() * 160);
    for (sid, origin, seq, at, body) in rows {
        copy_text(&mut data, sid);
        data.push(b'\t');
        copy_text(&mut data, origin);
        write!(data, "\t{seq}\t{at}\t").map_err(corrupt)?;
        copy_text(&mut data, body);
        data.push(b'\n');
    }
    Ok(data)
}

/// Writes event rows with one `COPY … FROM STDIN`: atomic, and a stored key fails it with
/// `StoreError::Conflict`.
async fn copy_event_rows(pg: &sqlx::PgPool, data: Vec<u8>) -> Result<()> {
    let mut conn = pg.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY events (session_id, origin, seq, at, body_json) FROM STDIN")
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// The multi-row insert of `n` event rows.
fn append_statement(backend: Backend, n: usize, duplicates: Duplicates) -> std::sync::Arc<str> {
    let (name, tail) = match duplicates {
        Duplicates::Refuse => ("append_events", ""),
        Duplicates::Ignore => (
            "append_events_ignoring",
            " ON CONFLICT (session_id, origin, seq) DO NOTHING",
        ),
    };
    batch::statement(backend, name, n, |n, p| {
        format!(
            "INSERT INTO events (session_id, origin, seq, at, body_json) VALUES {}{tail}",
            batch::typed_placeholders(p, n, &[log_id(p), "", "", "", ""])
        )
    })
}

/// What a batch write does with a key already in the log.
#[derive(Debug, Clone, Copy)]
enum Duplicates {
    /// Fail the batch (`StoreError::Conflict`).
    Refuse,
    /// Skip the row.
    Ignore,
}

/// Appends `text` as a field of `COPY`'s text format: backslash, tab, newline and carriage
/// return are escaped (anything else is taken as is).
fn copy_text(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// An event row as bound: session, origin, seq, at, body JSON.
type EventRow<'a> = (&'a str, &'static str, i64, i64, String);

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Server => "server",
        Origin::Client => "client",
    }
}

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copy_text_escapes_what_the_text_format_reads_specially() {
        let mut out = Vec::new();
        copy_text(&mut out, "a\\b\tc\nd\re \"课\"");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re \"课\"".as_bytes());
    }
}
