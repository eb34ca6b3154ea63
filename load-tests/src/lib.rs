//! A lean load generator: K learners, each on its own real WebSocket, stream heartbeats at a
//! target total rate for a while, then end their sessions. It reports
//! - end-to-end events/s (events the gateway acknowledged, i.e. the bus holds them),
//! - event → ack latency (accepted by the gateway onto the bus),
//! - event → durable verdict latency: each learner's final `terminated` event until the
//!   server's `ended` message, which the worker pushes only after the final verdict is stored,
//! - memory per idle connection at the gateway and per active session at the worker
//!   (`VmRSS` from `/proc/<pid>/status` before and after),
//! - event → in-memory verdict and event → stored verdict latency as the server measured
//!   them (`proctor_event_latency_seconds`, scraped from `/metrics` before and after; the
//!   quantiles are interpolated within histogram buckets),
//! - and, as the bus's physical limit, the raw pipelined `XADD` rate of the same volume.
//!
//! Sessions are created through the platform REST API with the demo credentials, as
//! `proctor simulate` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "proctor-load", about = "WebSocket load generator for proctor")]
pub struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// The demo credentials file the server wrote (`<data dir>/demo-credentials.json`).
    #[arg(long)]
    pub credentials: std::path::PathBuf,
    /// Concurrent learners (one WebSocket each).
    #[arg(long, default_value_t = 100)]
    pub learners: usize,
    /// Target total events per second (0: as fast as acknowledgements allow).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds of streaming.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Events a learner may have in flight (sent, not yet acknowledged).
    #[arg(long, default_value_t = 32)]
    pub window: u64,
    /// The gateway's pid, for memory per idle connection.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// The worker's pid (the same as the gateway's for `--role all`), for memory per session.
    #[arg(long)]
    pub worker_pid: Option<u32>,
    /// Redis to measure the raw pipelined XADD rate on (a scratch key, deleted after).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// A peer learning record store (xAPI, e.g. ralph-malph) to post the same event volume
    /// to as statements, for reference: its statements endpoint base, e.g.
    /// `http://127.0.0.1:43300/xAPI`.
    #[arg(long)]
    pub lrs_url: Option<String>,
    /// `user:password` for the LRS (HTTP basic).
    #[arg(long, default_value = "load:secret")]
    pub lrs_auth: String,
    /// At most this many statements are posted to the LRS (the rate is what is compared).
    #[arg(long, default_value_t = 20_000)]
    pub lrs_max: u64,
    /// Client runtime threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// With `--rate`: every learner sends at the same instants (a burst of all K learners'
    /// events once per period), as the generator did before 2026-12-07. By default learner
    /// `i` of K starts `i / K` of a period late, so the total rate arrives evenly, as
    /// independent learners' heartbeats do.
    #[arg(long, default_value_t = false)]
    pub aligned: bool,
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub learners: usize,
    /// How the learners' sends were phased: `spread` over the period, `aligned`, or
    /// `unpaced` (as fast as their windows allow: `--rate 0`).
    pub arrivals: &'static str,
    pub seconds: f64,
    pub events_acked: u64,
    pub events_per_s: f64,
    /// Acknowledged events over the time until the last session's final verdict was stored.
    pub durable_events_per_s: f64,
    pub ack_ms: Percentiles,
    pub durable_ms: Percentiles,
    /// Server-side: gateway accept → folded into the in-memory verdict state.
    pub fold_ms: Option<Percentiles>,
    /// Server-side: gateway accept → a stored verdict covers the event.
    pub stored_verdict_ms: Option<Percentiles>,
    pub ended: usize,
    pub gateway_kib_per_idle_connection: Option<f64>,
    pub worker_kib_per_active_session: Option<f64>,
    pub xadd_per_s: Option<f64>,
    pub lrs_statements_per_s: Option<f64>,
    pub lrs_statements: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub n: usize,
}

impl Percentiles {
    fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v[i.min(v.len() - 1)]
        };
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            n: v.len(),
        }
    }
    fn json(self) -> Value {
        json!({"p50": self.p50, "p99": self.p99, "p99.9": self.p999, "n": self.n})
    }
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "learners": self.learners,
            "arrivals": self.arrivals,
            "seconds": self.seconds,
            "events_acked": self.events_acked,
            "events_per_s": self.events_per_s,
            "durable_events_per_s": self.durable_events_per_s,
            "event_to_ack_ms": self.ack_ms.json(),
            "event_to_durable_verdict_ms": self.durable_ms.json(),
            "server_event_to_in_memory_verdict_ms": self.fold_ms.map(Percentiles::json),
            "server_event_to_stored_verdict_ms": self.stored_verdict_ms.map(Percentiles::json),
            "sessions_ended": self.ended,
            "gateway_kib_per_idle_connection": self.gateway_kib_per_idle_connection,
            "worker_kib_per_active_session": self.worker_kib_per_active_session,
            "reference_raw_xadd_pipelined_per_s": self.xadd_per_s,
            "ratio_end_to_end_vs_xadd": self.xadd_per_s.map(|x| self.events_per_s / x),
            "reference_xapi_lrs_statements_per_s": self.lrs_statements_per_s,
            "reference_xapi_lrs_statements_posted": self.lrs_statements,
            "ratio_end_to_end_vs_xapi_lrs": self.lrs_statements_per_s.map(|x| self.events_per_s / x),
        })
    }
}

/// The cumulative buckets `(le, count)` of `proctor_event_latency_seconds` for one stage, from
/// a Prometheus text exposition; `le` is `f64::INFINITY` for `+Inf`.
pub fn latency_buckets(exposition: &str, stage: &str) -> Vec<(f64, f64)> {
    let want = format!("stage=\"{stage}\"");
    let mut out: Vec<(f64, f64)> = exposition
        .lines()
        .filter(|l| l.starts_with("proctor_event_latency_seconds_bucket{") && l.contains(&want))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// p50/p99/p99.9 in ms of the observations between two scrapes of the same histogram, linearly
/// interpolated within a bucket as PromQL's `histogram_quantile` does (a quantile in the `+Inf`
/// bucket reads as the highest finite bound). `None` when nothing was observed.
pub fn histogram_percentiles(before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<Percentiles> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, n - b)
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 {
        return None;
    }
    let q = |q: f64| {
        let rank = q * total;
        let (mut lo, mut below) = (0.0, 0.0);
        for (le, n) in &delta {
            if *n >= rank {
                if le.is_infinite() {
                    return lo * 1000.0;
                }
                let within = if n - below > 0.0 {
                    (rank - below) / (n - below)
                } else {
                    1.0
                };
                return (lo + (le - lo) * within) * 1000.0;
            }
            (lo, below) = (*le, *n);
        }
        lo * 1000.0
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(Percentiles {
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        n: total as usize,
    })
}

async fn scrape(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// `VmRSS` of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url}: {status} {v}");
    Ok(v)
}

/// Creates one session per learner (a class per 80 learners: R12) and returns the start
/// responses.
async fn sessions(args: &Args, http: &reqwest::Client) -> anyhow::Result<Vec<Value>> {
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(&args.credentials).context("read the demo credentials")?,
    )?;
    let s = |k: &str| {
        creds[k]
            .as_str()
            .map(str::to_owned)
            .context("credentials field")
    };
    let tok: Value = http
        .post(format!("{}/oauth/token", args.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &s("client_id")?),
            ("client_secret", &s("client_secret")?),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = tok["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let course = s("course_id")?;
    let lesson = creds["lesson_ids"][0]
        .as_str()
        .context("lesson")?
        .to_owned();
    let run = std::process::id();
    let mut classes = Vec::new();
    for c in 0..args.learners.div_ceil(80) {
        let v = post(http, format!("{}/api/v1/classes", args.base), &token,
            json!({"name": format!("load {c}"), "course_id": course, "planned_total_hours": 30, "planned_online_hours": 10})).await?;
        classes.push(v["id"].as_str().context("class id")?.to_owned());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let started = futures_util::stream::iter(0..args.learners)
        .map(|i| {
            let (http, token, base) = (http.clone(), token.clone(), args.base.clone());
            let (class, lesson) = (classes[i / 80].clone(), lesson.clone());
            async move {
                let n = format!("{:017}", (nanos + i as u128 * 7919 + u128::from(run)) % 100_000_000_000_000_000);
                let l = post(&http, format!("{base}/api/v1/learners"), &token,
                    json!({"external_ref": format!("load-{n}"), "real_name": "压测", "id_number": format!("{n}X")})).await?;
                let e = post(&http, format!("{base}/api/v1/enrolments"), &token,
                    json!({"class_id": class, "learner_id": l["id"]})).await?;
                post(&http, format!("{base}/api/v1/sessions"), &token,
                    json!({"enrolment_id": e["id"], "lesson_id": lesson})).await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<anyhow::Result<Value>>>()
        .await;
    started.into_iter().collect()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(started: &Value) -> anyhow::Result<Ws> {
    let url = format!(
        "{}?access_token={}",
        started["ws_url"].as_str().context("ws_url")?,
        started["learner_token"].as_str().context("learner_token")?
    );
    // tungstenite's default 128 KiB read buffer is zero-filled on every read: with small
    // frames that memset was a tenth of the machine's CPU. Browsers set TCP_NODELAY on
    // WebSockets; so does this client.
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    // The welcome.
    let _ = tokio::time::timeout(Duration::from_secs(10), ws.next()).await?;
    Ok(ws)
}

#[derive(Debug, Default)]
struct LearnerResult {
    acked: u64,
    ack_ms: Vec<f64>,
    durable_ms: Option<f64>,
    ended_at: Option<Instant>,
}

/// The fields of a server message the generator reads (the rest is skipped unparsed).
#[derive(Debug, serde::Deserialize)]
struct ServerMsg<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    seq: Option<u64>,
}

/// What the report calls the run's arrivals (`Report::arrivals`).
fn arrivals(rate: u64, aligned: bool) -> &'static str {
    match (rate, aligned) {
        (0, _) => "unpaced",
        (_, true) => "aligned",
        (_, false) => "spread",
    }
}

/// When learner `i` of `k` sends its first heartbeat: paced learners are spread evenly over
/// one period (`per_event`), so `k` of them at a total rate `R` send about `R / 1000` events
/// in every millisecond rather than `k` at once every period; `aligned` (or no pacing) starts
/// them all at `t0`.
fn first_send(
    t0: Instant,
    per_event: Option<Duration>,
    i: usize,
    k: usize,
    aligned: bool,
) -> Instant {
    match per_event {
        Some(period) if !aligned => {
            let (i, k) = (
                u32::try_from(i).unwrap_or(u32::MAX),
                u32::try_from(k.max(1)).unwrap_or(u32::MAX),
            );
            t0 + period * i / k
        }
        Some(_) | None => t0,
    }
}

/// One learner: heartbeats until `until`, at most `window` unacknowledged, one every
/// `per_event` when that is set, the first at `first_send`; then `terminated`, and wait for
/// `ended`.
async fn learner(
    mut ws: Ws,
    until: Instant,
    window: u64,
    per_event: Option<Duration>,
    first_send: Instant,
) -> LearnerResult {
    let mut r = LearnerResult::default();
    let mut sent_at: std::collections::VecDeque<(u64, Instant)> = Default::default();
    let mut seq = 0u64;
    let mut next_send = first_send;
    // Formatted directly: the client's CPU shares the machine with the server.
    let hb = |seq: u64| {
        format!(
            r#"{{"seq":{seq},"type":"heartbeat","position_ms":0,"rate_permille":1000,"paused":true,"visible":true,"focused":true}}"#
        )
    };
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        if (seq - r.acked) < window && now >= next_send {
            // Every message the window allows and that is due now goes out in one write, as
            // a client pipelines (the SDK resends its outbox the same way): a write per
            // message cost the generator a system call and the loopback's whole receive
            // path per event, most of its CPU.
            while (seq - r.acked) < window && now >= next_send {
                seq += 1;
                if ws.feed(Message::Text(hb(seq).into())).await.is_err() {
                    return r;
                }
                sent_at.push_back((seq, now));
                if let Some(d) = per_event {
                    next_send += d;
                }
            }
            if ws.flush().await.is_err() {
                return r;
            }
            continue;
        }
        let wait = if (seq - r.acked) < window {
            next_send.saturating_duration_since(now)
        } else {
            Duration::from_millis(50)
        };
        match tokio::time::timeout(wait.max(Duration::from_micros(100)), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(v) = serde_json::from_str::<ServerMsg>(&t)
                    && v.kind == "ack"
                {
                    let s = v.seq.unwrap_or(0);
                    while let Some((q, at)) = sent_at.front().copied() {
                        if q > s {
                            break;
                        }
                        sent_at.pop_front();
                        r.ack_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                    r.acked = r.acked.max(s);
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(None) | Ok(Some(Err(_))) => return r,
        }
    }
    // Drain acknowledgements, then end the session and time the durable verdict.
    seq += 1;
    let end = json!({"seq": seq, "type": "terminated", "reason": "ended"}).to_string();
    let t0 = Instant::now();
    if ws.send(Message::Text(end.into())).await.is_err() {
        return r;
    }
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        match msg {
            Message::Text(t) => {
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    continue;
                };
                if v["type"] == "ack" {
                    let s = v["seq"].as_u64().unwrap_or(0);
                    if s < seq {
                        r.acked = r.acked.max(s);
                    }
                }
                if v["type"] == "ended" {
                    r.durable_ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
                    r.ended_at = Some(Instant::now());
                    break;
                }
            }
            Message::Close(_) => break,
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    r
}

/// The bus's physical limit: `n` XADDs of an event-sized entry, pipelined 1000 at a time.
pub async fn xadd_rate(url: &str, n: u64) -> anyhow::Result<f64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let key = format!("proctor-load:{{ref-{}}}:xadd", std::process::id());
    let body = r#"{"type":"heartbeat","position_ms":0,"rate_permille":1000,"paused":true,"visible":true,"focused":true}"#;
    let t0 = Instant::now();
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1000);
        let mut pipe = redis::pipe();
        for i in 0..k {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("s")
                .arg("0198c3a5-load-session")
                .arg("o")
                .arg("client")
                .arg("q")
                .arg(done + i)
                .arg("a")
                .arg(1_700_000_000_000_i64)
                .arg("b")
                .arg(body)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        done += k;
    }
    let secs = t0.elapsed().as_secs_f64();
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<i64>(&mut conn)
        .await?;
    #[allow(clippy::cast_precision_loss)]
    Ok(n as f64 / secs)
}

/// The same events as xAPI statements (one per heartbeat: actor = the learner, verb
/// `experienced`, object = the lesson), posted 100 per request over 8 connections.
pub async fn lrs_rate(url: &str, auth: &str, n: u64) -> anyhow::Result<(f64, u64)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let batches = n.div_ceil(100);
    let t0 = Instant::now();
    let posted = futures_util::stream::iter(0..batches)
        .map(|b| {
            let (http, url) = (http.clone(), format!("{}/statements", url.trim_end_matches('/')));
            let (user, pass) = (user.to_owned(), pass.to_owned());
            async move {
                let stmts: Vec<Value> = (0..100)
                    .map(|i| {
                        json!({
                            "actor": {"objectType": "Agent", "account": {"homePage": "https://proctor.example", "name": format!("learner-{}", (b * 100 + i) % 1000)}},
                            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
                            "object": {"objectType": "Activity", "id": "https://proctor.example/lesson/1"},
                            "result": {"extensions": {"https://proctor.example/position_ms": 0}},
                        })
                    })
                    .collect();
                let r = http
                    .post(url)
                    .basic_auth(user, Some(pass))
                    .json(&stmts)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "LRS answered {}", r.status());
                anyhow::Ok(100u64)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let secs = t0.elapsed().as_secs_f64();
    let mut total = 0;
    for p in posted {
        total += p?;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok((total as f64 / secs, total))
}

/// Runs the whole measurement.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let started = sessions(args, &http).await?;
    let metrics_before = scrape(&http, &args.base).await;
    let gw_before = args.gateway_pid.and_then(rss_kib);
    let socks = futures_util::stream::iter(started.iter())
        .map(open)
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let socks: Vec<Ws> = socks.into_iter().collect::<anyhow::Result<_>>()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gw_after = args.gateway_pid.and_then(rss_kib);
    let wk_before = args.worker_pid.and_then(rss_kib);
    let k = socks.len().max(1);
    #[allow(clippy::cast_precision_loss)]
    let per_event = (args.rate > 0).then(|| Duration::from_secs_f64(k as f64 / args.rate as f64));
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(args.seconds);
    let acked = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let acked = acked.clone();
            let window = args.window;
            let first_send = first_send(t0, per_event, i, k, args.aligned);
            tokio::spawn(async move {
                // Every learner records its ack latencies; the lists are merged at the end.
                let r = learner(ws, until, window, per_event, first_send).await;
                acked.fetch_add(r.acked, Ordering::Relaxed);
                r
            })
        })
        .collect();
    // Worker memory while every session is active.
    let wk_during = if args.worker_pid.is_some() {
        tokio::time::sleep(Duration::from_secs(args.seconds.min(3))).await;
        args.worker_pid.and_then(rss_kib)
    } else {
        None
    };
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    let streamed_for = Duration::from_secs(args.seconds).as_secs_f64();
    let total: u64 = results.iter().map(|r| r.acked).sum();
    let ack_ms: Vec<f64> = results
        .iter()
        .flat_map(|r| r.ack_ms.iter().copied())
        .collect();
    let durable: Vec<f64> = results.iter().filter_map(|r| r.durable_ms).collect();
    let last_stored = results
        .iter()
        .filter_map(|r| r.ended_at)
        .max()
        .map_or(streamed_for, |t| t.duration_since(t0).as_secs_f64());
    #[allow(clippy::cast_precision_loss)]
    let per = |before: Option<u64>, after: Option<u64>| {
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / k as f64)
    };
    // Everything has ended (or timed out): the server's latency histograms are complete.
    let metrics_after = scrape(&http, &args.base).await;
    let server_latency = |stage: &str| {
        let (b, a) = (metrics_before.as_deref()?, metrics_after.as_deref()?);
        histogram_percentiles(&latency_buckets(b, stage), &latency_buckets(a, stage))
    };
    let xadd = match &args.redis_url {
        Some(u) => Some(xadd_rate(u, total.max(100_000)).await?),
        None => None,
    };
    // The reference is best effort: a failing LRS is reported, not fatal to the run.
    let (lrs, lrs_n) = match &args.lrs_url {
        Some(u) => match lrs_rate(u, &args.lrs_auth, total.min(args.lrs_max).max(100)).await {
            Ok((rate, n)) => (Some(rate), n),
            Err(e) => {
                eprintln!("the LRS reference failed: {e:#}");
                (None, 0)
            }
        },
        None => (None, 0),
    };
    #[allow(clippy::cast_precision_loss)]
    Ok(Report {
        lrs_statements_per_s: lrs,
        lrs_statements: lrs_n,
        learners: k,
        arrivals: arrivals(args.rate, args.aligned),
        seconds: streamed_for,
        events_acked: total,
        events_per_s: total as f64 / streamed_for,
        durable_events_per_s: total as f64 / last_stored.max(streamed_for),
        ack_ms: Percentiles::of(ack_ms),
        fold_ms: server_latency("fold"),
        stored_verdict_ms: server_latency("verdict"),
        ended: durable.len(),
        durable_ms: Percentiles::of(durable),
        gateway_kib_per_idle_connection: per(gw_before, gw_after),
        worker_kib_per_active_session: per(wk_before, wk_during),
        xadd_per_s: xadd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# TYPE proctor_event_latency_seconds histogram
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"0.001\"} 10
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"0.005\"} 10
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"+Inf\"} 10
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"0.001\"} 0
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"0.005\"} 0
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"+Inf\"} 0
";
    const AFTER: &str = "\
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"0.001\"} 60
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"0.005\"} 110
proctor_event_latency_seconds_bucket{stage=\"fold\",le=\"+Inf\"} 110
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"0.001\"} 0
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"0.005\"} 0
proctor_event_latency_seconds_bucket{stage=\"verdict\",le=\"+Inf\"} 4
";

    #[test]
    fn quantiles_come_from_the_difference_of_two_scrapes() {
        let p = histogram_percentiles(
            &latency_buckets(BEFORE, "fold"),
            &latency_buckets(AFTER, "fold"),
        );
        let Some(p) = p else {
            panic!("100 observations between the scrapes");
        };
        assert_eq!(p.n, 100);
        // 50 of the 100 are ≤ 1 ms, the other 50 in (1, 5] ms.
        assert!((p.p50 - 1.0).abs() < 1e-9, "{p:?}");
        assert!((p.p99 - (1.0 + 4.0 * 49.0 / 50.0)).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn a_quantile_past_the_last_bound_reads_as_that_bound_and_none_when_empty() {
        let p = histogram_percentiles(
            &latency_buckets(BEFORE, "verdict"),
            &latency_buckets(AFTER, "verdict"),
        );
        assert!(
            p.is_some_and(|p| p.n == 4 && (p.p99 - 5.0).abs() < 1e-9),
            "{p:?}"
        );
        assert!(
            histogram_percentiles(
                &latency_buckets(BEFORE, "fold"),
                &latency_buckets(BEFORE, "fold")
            )
            .is_none()
        );
    }

    #[test]
    fn paced_learners_start_spread_evenly_over_one_period_unless_aligned() {
        let t0 = Instant::now();
        let period = Duration::from_millis(50);
        let k = 1000;
        let starts: Vec<Duration> = (0..k)
            .map(|i| first_send(t0, Some(period), i, k, false) - t0)
            .collect();
        assert_eq!(starts[0], Duration::ZERO);
        assert!(
            starts.windows(2).all(|w| w[0] < w[1]),
            "strictly later, in order"
        );
        assert!(
            *starts.last().expect("k > 0") < period,
            "all within one period"
        );
        // About a K-th of the period apart: 1 000 learners, 50 µs.
        assert_eq!(starts[500], Duration::from_millis(25));
        for i in [0, 1, k - 1] {
            assert_eq!(first_send(t0, Some(period), i, k, true), t0, "aligned");
            assert_eq!(first_send(t0, None, i, k, false), t0, "unpaced");
        }
        assert_eq!(arrivals(20_000, false), "spread");
        assert_eq!(arrivals(20_000, true), "aligned");
        assert_eq!(arrivals(0, false), "unpaced");
        assert_eq!(arrivals(0, true), "unpaced");
    }
}
