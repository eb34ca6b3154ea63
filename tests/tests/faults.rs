//! Fault tests of the production pipeline (PostgreSQL + Redis Streams, separate gateway and
//! worker processes). They run in the test command's PostgreSQL + Redis pass
//! (`PROCTOR_TEST_BUS=redis`); in the embedded pass there is no worker process to kill.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::StreamExt;
use proctor::domain::{EventBody, TerminationReason};
use proctor_e2e::{demo_token, proctor_bin};
use serde_json::{Value, json};

/// Sessions streaming while the worker dies (the issue's figure); `PROCTOR_FAULT_SESSIONS`
/// overrides it for local debugging.
fn sessions() -> usize {
    std::env::var("PROCTOR_FAULT_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}
const EVENTS_PER_SESSION: u64 = 12;

/// The fault tests each load the 2-core machine fully: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Proc(tokio::process::Child);

/// A process of the fleet; its clock runs `scale` times fast.
fn spawn(
    role: &str,
    port: u16,
    dir: &std::path::Path,
    db: &str,
    redis: &str,
    ns: &str,
    scale: u32,
) -> Proc {
    let child = tokio::process::Command::new(proctor_bin().expect("binary"))
        .args([
            "serve",
            "--role",
            role,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .args([
            "--redis-url",
            redis,
            "--redis-namespace",
            ns,
            "--time-scale",
            &scale.to_string(),
            "--partitions",
            "4",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn proctor");
    Proc(child)
}

async fn ready(http: &reqwest::Client, port: u16) {
    for _ in 0..400 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process on port {port} never became ready");
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v} for {body}");
    v
}

/// One learner: start a session, stream `events` - 1 heartbeats 100 ms apart and end it;
/// returns (session, last acked seq).
async fn learner(
    http: reqwest::Client,
    base: String,
    token: String,
    course: String,
    lesson: String,
    events: u64,
) -> (String, u64) {
    // A class holds at most 80 learners (R12): one class each.
    let c = post(
        &http,
        format!("{base}/api/v1/classes"),
        &token,
        json!({"name": "faults", "course_id": course, "planned_total_hours": 30, "planned_online_hours": 10}),
    )
    .await;
    let class = c["id"].as_str().expect("class").to_owned();
    let n = proctor_e2e::rand_digits();
    let l = post(
        &http,
        format!("{base}/api/v1/learners"),
        &token,
        json!({"external_ref": n, "real_name": "r", "id_number": format!("{n}X")}),
    )
    .await;
    let e = post(
        &http,
        format!("{base}/api/v1/enrolments"),
        &token,
        json!({"class_id": class, "learner_id": l["id"]}),
    )
    .await;
    let s = post(
        &http,
        format!("{base}/api/v1/sessions"),
        &token,
        json!({"enrolment_id": e["id"], "lesson_id": lesson}),
    )
    .await;
    let sid = s["session_id"].as_str().expect("sid").to_owned();
    let url = format!(
        "{}?access_token={}",
        s["ws_url"].as_str().expect("url"),
        s["learner_token"].as_str().expect("t")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let mut acked = 0;
    for seq in 1..=events {
        let body = if seq == events {
            json!({"seq": seq, "type": "terminated", "reason": "ended"})
        } else {
            json!({"seq": seq, "type": "heartbeat", "position_ms": 0, "rate_permille": 1000, "paused": true, "visible": true, "focused": true})
        };
        if let Err(e) = ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                body.to_string().into(),
            ))
            .await
        {
            panic!("session {sid}: the socket closed before event {seq} of {events}: {e}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Read acknowledgements until the server ends the session (or the socket goes quiet).
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "ack" {
                acked = acked.max(v["seq"].as_u64().unwrap_or(0));
            }
            if v["type"] == "ended" {
                break;
            }
        }
    }
    (sid, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(f) = Fleet::start("fault", 10).await else {
        return;
    };
    let mut worker_a = f.worker().await;

    // Learners stream in waves of 100 connections; the worker dies part way through.
    let finished = AtomicUsize::new(0);
    let finished_at_kill = AtomicUsize::new(0);
    let learners = futures_util::stream::iter(0..sessions())
        .map(|_| {
            let run = f.learner(EVENTS_PER_SESSION);
            let finished = &finished;
            async move {
                let r = run.await;
                finished.fetch_add(1, Ordering::SeqCst);
                r
            }
        })
        .buffer_unordered(100);
    let killer = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        finished_at_kill.store(finished.load(Ordering::SeqCst), Ordering::SeqCst);
        worker_a.0.start_kill().expect("kill -9 worker A");
        let _ = worker_a.0.wait().await;
        f.spawn_worker(free_port())
    };
    let (results, _worker_b): (Vec<(String, u64)>, Proc) =
        tokio::join!(learners.collect::<Vec<_>>(), killer);
    assert_eq!(results.len(), sessions());
    let at_kill = finished_at_kill.load(Ordering::SeqCst);
    assert!(
        at_kill < sessions(),
        "the worker must die while sessions still stream ({at_kill} had finished)"
    );

    f.assert_logs_match_replays(&results).await;
}

/// A gateway on a fresh Redis namespace (and database), signed in as the demo platform;
/// workers are added by the test.
struct Fleet {
    dir: tempfile::TempDir,
    db: String,
    redis: String,
    ns: String,
    http: reqwest::Client,
    base: String,
    token: String,
    course_id: String,
    lesson: String,
    /// How many times fast the processes' clocks run.
    scale: u32,
    _gateway: Proc,
}

impl Fleet {
    /// `None` (after saying why) outside the PostgreSQL + Redis pass.
    async fn start(prefix: &str, scale: u32) -> Option<Fleet> {
        let Some(redis) = proctor_e2e::test_redis_url() else {
            eprintln!(
                "fault tests run in the PostgreSQL + Redis pass of scripts/test (PROCTOR_TEST_BUS=redis)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let db = proctor_e2e::test_database_url().await.unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("proctor.db").display()
            )
        });
        let ns = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let gw_port = free_port();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http");
        let gateway = spawn("gateway", gw_port, dir.path(), &db, &redis, &ns, scale);
        ready(&http, gw_port).await;
        let base = format!("http://127.0.0.1:{gw_port}");
        let (creds, token) = demo_token(&http, &base, dir.path()).await;
        Some(Fleet {
            course_id: creds["course_id"].as_str().expect("course").to_owned(),
            lesson: creds["lesson_ids"][0].as_str().expect("lesson").to_owned(),
            dir,
            db,
            redis,
            ns,
            http,
            base,
            token,
            scale,
            _gateway: gateway,
        })
    }

    fn spawn_worker(&self, port: u16) -> Proc {
        spawn(
            "worker",
            port,
            self.dir.path(),
            &self.db,
            &self.redis,
            &self.ns,
            self.scale,
        )
    }

    /// One learner on this fleet (`learner`), not tied to the fleet's lifetime.
    fn learner(&self, events: u64) -> impl std::future::Future<Output = (String, u64)> + use<> {
        learner(
            self.http.clone(),
            self.base.clone(),
            self.token.clone(),
            self.course_id.clone(),
            self.lesson.clone(),
            events,
        )
    }

    /// A worker, once it is ready.
    async fn worker(&self) -> Proc {
        let port = free_port();
        let p = self.spawn_worker(port);
        ready(&self.http, port).await;
        p
    }

    /// Every acknowledged event is stored exactly once, and every stored verdict is exactly
    /// what a clean replay of its log gives (no credit lost or doubled).
    async fn assert_logs_match_replays(&self, results: &[(String, u64)]) {
        proctor_e2e::assert_stored_logs_match_replays(
            &self.store().await,
            &self.http,
            &self.base,
            &self.token,
            results,
            Duration::from_secs(60),
        )
        .await;
    }

    async fn store(&self) -> proctor::adapters::store::Store {
        proctor::adapters::store::Store::connect(&self.db)
            .await
            .expect("store")
    }
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.0.id().expect("a running worker has a pid");
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Two workers racing for the same partitions: worker A is paused (SIGSTOP) past its lease,
/// worker B takes its partitions over and reclaims its unacknowledged entries, then A is
/// resumed in the middle of whatever it was doing (a zombie owner until its next renewal
/// fails) — twice, so both directions race. Nothing is counted twice: every client event is
/// stored once and every stored verdict equals a replay of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_for_a_partition_count_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let Some(f) = Fleet::start("race", 10).await else {
        return;
    };
    let worker_a = f.worker().await;
    let worker_b = f.worker().await;

    let learners = futures_util::stream::iter(0..200)
        .map(|_| f.learner(EVENTS_PER_SESSION))
        .buffer_unordered(50);
    let racer = async {
        for (paused, other) in [(&worker_a, &worker_b), (&worker_b, &worker_a)] {
            tokio::time::sleep(Duration::from_secs(2)).await;
            signal(paused, "-STOP");
            // Past the lease TTL (3 s) and the membership window (2.5 s): the other worker
            // owns every partition now.
            tokio::time::sleep(Duration::from_secs(6)).await;
            signal(paused, "-CONT");
            let _ = other;
        }
    };
    let (results, ()): (Vec<(String, u64)>, ()) = tokio::join!(learners.collect::<Vec<_>>(), racer);
    assert_eq!(results.len(), 200);

    f.assert_logs_match_replays(&results).await;
}

/// The owner of each of the fleet's 4 partitions (`None` where none holds its lease).
async fn owners(redis: &mut proctor::adapters::redis::RedisConn) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for p in 0..4 {
        let key = redis.owner_key(p);
        let owner: Option<String> = redis
            .query(redis::cmd("GET").arg(key))
            .await
            .expect("GET owner");
        out.push(owner);
    }
    out
}

/// A worker held up by its store keeps its partitions: the reader renews their leases while
/// it waits for the worker to take the next batch, rather than letting them lapse after the
/// TTL (3 s) and the worker rebuild every session from the log when it takes them back.
/// Worker A is killed while the event table is locked; worker B takes the partitions over and
/// its session adoption then waits on the lock while learners keep streaming, so every
/// reader has batches its worker cannot take. B still owns every partition 8 s later; once
/// the lock goes, nothing is lost or counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_held_up_by_its_store_keeps_its_partitions() {
    let _serial = SERIAL.lock().await;
    let Some(f) = Fleet::start("keep", 1).await else {
        return;
    };
    assert!(
        f.db.starts_with("postgres"),
        "this test locks PostgreSQL's event table; the Redis pass runs on PostgreSQL ({})",
        f.db
    );
    let mut worker_a = f.worker().await;
    let mut redis = proctor::adapters::redis::RedisConn::connect(
        &proctor::adapters::redis::RedisTarget::parse(&f.redis),
        &f.ns,
    )
    .await
    .expect("Redis");

    // 40 learners stream for 12 s (10 events/s each), into the lock (held about 12 s).
    let learners = futures_util::stream::iter(0..40)
        .map(|_| f.learner(120))
        .buffer_unordered(40);
    let holdup = async {
        // Every session is created and streaming (they write to the event table).
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&f.db)
            .await
            .expect("PostgreSQL");
        sqlx::query("BEGIN")
            .execute(&mut lock)
            .await
            .expect("BEGIN");
        sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            .execute(&mut lock)
            .await
            .expect("LOCK");
        let of_a = owners(&mut redis).await;
        worker_a.0.start_kill().expect("kill -9 worker A");
        let _ = worker_a.0.wait().await;
        let worker_b = f.worker().await;
        // B takes every partition once A's leases lapse.
        let mut taken = Vec::new();
        for _ in 0..100 {
            taken = owners(&mut redis).await;
            if taken.iter().all(|o| o.is_some() && !of_a.contains(o)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            taken.iter().all(|o| o.is_some() && !of_a.contains(o)),
            "worker B never owned every partition: {taken:?}, A's {of_a:?}"
        );
        // Its adoption waits on the lock; its readers keep the leases for it.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let later = owners(&mut redis).await;
        sqlx::query("COMMIT")
            .execute(&mut lock)
            .await
            .expect("COMMIT");
        assert_eq!(
            later, taken,
            "a worker waiting on its store lost its partitions' leases"
        );
        worker_b
    };
    let (results, _worker_b): (Vec<(String, u64)>, Proc) =
        tokio::join!(learners.collect::<Vec<_>>(), holdup);
    assert_eq!(results.len(), 40);

    f.assert_logs_match_replays(&results).await;
}

/// A worker behind its partition ends no session for silence: it judges a session's lease
/// (R2: 30 s without a client event) only up to where it has read everything on the bus.
/// The only worker is paused (SIGSTOP) for 6 s, 60 s on the fleet's 10x clock, while 40
/// learners stream on through the gateway; once it wakes, their events wait on the bus behind
/// its partitions' reclaimed entries. Judged by its clock against the newest event it had
/// folded, every session had been silent past its lease and ended, and the learners' sockets
/// were closed under them. Every session here ends the learner's way ("ended"), with no
/// lease expiry in its log, and every log matches its replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_behind_its_partition_ends_no_session_for_silence() {
    let _serial = SERIAL.lock().await;
    let Some(f) = Fleet::start("behind", 10).await else {
        return;
    };
    let worker = f.worker().await;
    // 40 learners stream 12 s (10 events/s each); the worker sleeps through 6 s of it.
    let learners = futures_util::stream::iter(0..40)
        .map(|_| f.learner(120))
        .buffer_unordered(40);
    let pause = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        signal(&worker, "-STOP");
        tokio::time::sleep(Duration::from_secs(6)).await;
        signal(&worker, "-CONT");
    };
    let (results, ()): (Vec<(String, u64)>, ()) = tokio::join!(learners.collect::<Vec<_>>(), pause);
    assert_eq!(results.len(), 40);

    f.assert_logs_match_replays(&results).await;
    let store = f.store().await;
    for (sid, _) in &results {
        let events = store.events(sid).await.expect("events");
        let ends: Vec<&EventBody> = events
            .iter()
            .map(|e| &e.body)
            .filter(|b| matches!(b, EventBody::Terminated { .. }))
            .collect();
        assert!(
            matches!(
                ends.as_slice(),
                [EventBody::Terminated {
                    reason: TerminationReason::Ended,
                    ..
                }]
            ),
            "session {sid} ended so: {ends:?}"
        );
    }
}
