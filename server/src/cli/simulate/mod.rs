//! `proctor simulate`: scripted learners, honest and cheating, driven through a running
//! server's real API and WebSocket. Each scenario enrols a fresh learner, plays its script
//! against the server clock (read from `/readyz`: a simulation needs the server started with
//! `--time-scale`, e.g. 60), then reads the verdict back and checks it against what the
//! rules require. Exit status 0 only if every verdict is the expected one.
//!
//! The simulated player is conservative the way a real one is: it advances the video by a
//! fixed 97 % of each heartbeat interval, so scheduling jitter can only make it lag, never
//! run ahead of the server clock. Cheating scenarios cheat by far more than any tolerance.

use std::path::PathBuf;
use std::process::ExitCode;
mod player;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use player::{Player, PopupPolicy, Script};

use crate::app::demo::DemoCredentials;

/// Options of `proctor simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Platform credentials and demo course, as written by the demo seed.
    #[arg(long, default_value = "./data/demo-credentials.json")]
    pub credentials: PathBuf,
    /// Run only these scenarios (repeatable); default: all.
    #[arg(long = "only")]
    pub only: Vec<String>,
}

/// All scenarios, in the order the table prints them.
pub const SCENARIOS: [&str; 12] = [
    "honest",
    "double_speed",
    "forward_seek",
    "fast_positions",
    "hidden_tab",
    "concurrent_session",
    "missed_popup",
    "late_popup_answer",
    "face_fail_then_pass",
    "out_of_order",
    "online_cap",
    "remainder_39_min",
];

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: String,
    pub passed: bool,
    pub credited_ms: i64,
    pub summary: String,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.credentials).with_context(|| {
        format!(
            "Failed to read {} (start `proctor serve` once to create it)",
            args.credentials.display()
        )
    })?;
    let creds: DemoCredentials =
        serde_json::from_str(&text).context("Failed to parse the credentials file")?;
    let chosen: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s))
        .collect();
    ensure!(
        !chosen.is_empty(),
        "no scenario matches {:?}; known: {}",
        args.only,
        SCENARIOS.join(", ")
    );
    let outcomes = run_scenarios(&args.server, &creds, &chosen).await?;
    println!(
        "{:<22} {:<6} {:>10}  verdict",
        "scenario", "result", "credited"
    );
    for o in &outcomes {
        println!(
            "{:<22} {:<6} {:>9.1}m  {}",
            o.scenario,
            if o.passed { "PASS" } else { "FAIL" },
            o.credited_ms as f64 / 60_000.0,
            o.summary
        );
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    println!("{} passed, {} failed", outcomes.len() - failed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs scenarios concurrently against `server`; the library entry point for tests.
pub async fn run_scenarios(
    server: &str,
    creds: &DemoCredentials,
    which: &[&str],
) -> anyhow::Result<Vec<Outcome>> {
    let sim = Sim::connect(server, creds).await?;
    let runs = which.iter().map(|name| {
        let sim = sim.clone();
        async move {
            match sim.scenario(name).await {
                Ok(o) => o,
                Err(e) => Outcome {
                    scenario: (*name).to_owned(),
                    passed: false,
                    credited_ms: 0,
                    summary: format!("error: {e:#}"),
                },
            }
        }
    });
    Ok(futures_util::future::join_all(runs).await)
}

#[derive(Debug, Clone)]
pub(crate) struct Sim {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    token: String,
    course_id: String,
    lessons: Vec<(String, i64)>,
    pub(crate) scale: f64,
}

fn rule_status<'a>(verdict: &'a Value, rule: &str) -> &'a str {
    verdict["rules"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["rule"] == rule))
        .and_then(|r| r["status"].as_str())
        .unwrap_or("missing")
}

fn uncredited(verdict: &Value, reason: &str) -> i64 {
    verdict["uncredited"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["reason"] == reason))
        .and_then(|r| r["ms"].as_i64())
        .unwrap_or(0)
}

/// Checks accumulate here; a scenario passes when none failed.
#[derive(Debug, Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
}

impl Sim {
    async fn connect(server: &str, creds: &DemoCredentials) -> anyhow::Result<Sim> {
        let base = server.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let ready: Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await?
            .json()
            .await
            .context("GET /readyz")?;
        let scale = ready["time_scale"].as_f64().unwrap_or(1.0);
        ensure!(
            scale >= 20.0,
            "the server clock runs at {scale}× real time; a simulation needs a fast clock: start it with `proctor serve --time-scale 60`"
        );
        let tok: Value = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &creds.client_id),
                ("client_secret", &creds.client_secret),
            ])
            .send()
            .await?
            .error_for_status()
            .context("POST /oauth/token")?
            .json()
            .await?;
        let token = tok["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        let mut sim = Sim {
            http,
            base,
            token,
            course_id: creds.course_id.clone(),
            lessons: vec![],
            scale,
        };
        let course = sim
            .get(&format!("/api/v1/courses/{}", creds.course_id))
            .await?;
        sim.lessons = course["lessons"]
            .as_array()
            .context("course has no lessons")?
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap_or_default().to_owned(),
                    l["duration_ms"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        ensure!(
            sim.lessons.len() >= 3,
            "the simulation needs the three-lesson demo course"
        );
        Ok(sim)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }

    /// POST returning (status, body).
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn created(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self.post(path, &body).await?;
        ensure!(status == 201, "POST {path}: {status} {v}");
        Ok(v)
    }

    /// A fresh learner enrolled in a fresh class; returns the enrolment id.
    async fn enrol(
        &self,
        name: &str,
        total_hours: u32,
        online_hours: u32,
    ) -> anyhow::Result<String> {
        let class = self
            .created(
                "/api/v1/classes",
                json!({"name": format!("sim {name}"), "course_id": self.course_id,
                       "planned_total_hours": total_hours, "planned_online_hours": online_hours}),
            )
            .await?;
        let n: u64 = rand::random::<u64>() % 100_000_000_000_000_000;
        let learner = self
            .created(
                "/api/v1/learners",
                json!({"external_ref": format!("sim-{name}-{n}"), "real_name": format!("学员 {name}"),
                       "id_number": format!("{n:017}X"), "face_consent": true}),
            )
            .await?;
        // The real-name photo, once (the stand-in face check accepts the synthetic image).
        let lid = learner["id"].as_str().context("learner id")?;
        let r = self
            .http
            .post(format!(
                "{}/api/v1/learners/{lid}/face-enrolment?consent_text_version=sim-1&consent_text_sha256={}",
                self.base,
                "0".repeat(64)
            ))
            .bearer_auth(&self.token)
            .header("content-type", "image/png")
            .body(player::png(true, lid))
            .send()
            .await?;
        ensure!(r.status().as_u16() == 201, "face enrolment: {}", r.status());
        let e = self
            .created(
                "/api/v1/enrolments",
                json!({"class_id": class["id"], "learner_id": learner["id"]}),
            )
            .await?;
        Ok(e["id"].as_str().context("enrolment id")?.to_owned())
    }

    async fn start(&self, enrolment: &str, lesson: usize) -> anyhow::Result<(u16, Value)> {
        self.post(
            "/api/v1/sessions",
            &json!({"enrolment_id": enrolment, "lesson_id": self.lessons[lesson].0}),
        )
        .await
    }

    async fn player(&self, enrolment: &str, lesson: usize) -> anyhow::Result<Player> {
        let (status, s) = self.start(enrolment, lesson).await?;
        ensure!(status == 201, "start session: {status} {s}");
        Player::open(self, &s, self.lessons[lesson].1).await
    }

    pub(crate) async fn verdict(&self, session: &str) -> anyhow::Result<Value> {
        self.get(&format!("/api/v1/sessions/{session}/verdict"))
            .await
    }

    async fn scenario(&self, name: &str) -> anyhow::Result<Outcome> {
        let mut c = Checks::default();
        let (credited, summary) = match name {
            "honest" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                p.watch_to_end(Script::default()).await?;
                let duration_ms = p.duration_ms;
                let v = p.finish(self).await?;
                c.check(v["lesson_complete"] == true, "lesson complete");
                for r in [
                    "R1_no_fast_forward",
                    "R2_single_window",
                    "R3_popup_check",
                    "R4_face_liveness",
                ] {
                    c.check(rule_status(&v, r) == "held", format!("{r} held"));
                }
                c.check(v["counts"] == true, "counts");
                c.check(
                    v["credited_ms"].as_i64().unwrap_or(0) >= duration_ms * 9 / 10,
                    "≥ 90 % of the lesson credited",
                );
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    "complete, all rules held".to_owned(),
                )
            }
            "double_speed" | "fast_positions" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                let script = if name == "double_speed" {
                    Script {
                        rate_permille: 2000,
                        speed: 2.0,
                        cheat_from_ms: 60_000,
                        ..Script::default()
                    }
                } else {
                    Script {
                        speed: 1.5,
                        cheat_from_ms: 60_000,
                        ..Script::default()
                    }
                };
                p.watch_until(script, p.duration_ms).await?;
                let v = p.finish(self).await?;
                c.check(
                    rule_status(&v, "R1_no_fast_forward") == "violated",
                    "R1 violated",
                );
                let wall = v["wall_ms"].as_i64().unwrap_or(0);
                let credited = v["credited_ms"].as_i64().unwrap_or(0);
                c.check(
                    credited * 10 < wall * 8,
                    "no extra credit: credited < 80 % of wall time",
                );
                c.check(v["lesson_complete"] == false, "lesson not complete");
                (
                    credited,
                    format!(
                        "R1 violated; {:.1}m credited of {:.1}m",
                        credited as f64 / 6e4,
                        wall as f64 / 6e4
                    ),
                )
            }
            "forward_seek" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                p.watch_until(Script::default(), 60_000).await?;
                p.seek(8 * 60_000).await?;
                p.watch_to_end(Script::default()).await?;
                let v = p.finish(self).await?;
                c.check(
                    rule_status(&v, "R1_no_fast_forward") == "violated",
                    "R1 violated",
                );
                c.check(
                    v["lesson_complete"] == false,
                    "the skipped span is not covered",
                );
                let credited = v["credited_ms"].as_i64().unwrap_or(0);
                c.check(credited < 6 * 60_000, "the skipped 7 minutes earn nothing");
                (credited, "R1 violated; skipped span uncredited".into())
            }
            "hidden_tab" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                p.watch_until(Script::default(), 120_000).await?;
                p.watch_until(
                    Script {
                        visible: false,
                        ..Script::default()
                    },
                    180_000,
                )
                .await?;
                p.watch_to_end(Script::default()).await?;
                let v = p.finish(self).await?;
                c.check(
                    uncredited(&v, "page_hidden") >= 45_000,
                    "≥ 45 s uncredited as page_hidden",
                );
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    format!(
                        "{} s hidden uncredited",
                        uncredited(&v, "page_hidden") / 1000
                    ),
                )
            }
            "concurrent_session" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                p.watch_until(Script::default(), 60_000).await?;
                let (status, body) = self.start(&e, 0).await?;
                c.check(
                    status == 409 && body["rule"] == "R2_single_window",
                    format!("second session refused by R2 (got {status})"),
                );
                p.watch_until(Script::default(), 120_000).await?;
                let v = p.finish(self).await?;
                c.check(
                    rule_status(&v, "R2_single_window") == "violated",
                    "R2 attempt recorded in the first session",
                );
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    "second session refused (R2)".into(),
                )
            }
            "missed_popup" | "late_popup_answer" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(true).await?;
                let script = Script {
                    popup: if name == "missed_popup" {
                        PopupPolicy::Ignore
                    } else {
                        PopupPolicy::Late
                    },
                    ..Script::default()
                };
                p.watch_until(script, 6 * 60_000).await?;
                let v = p.finish(self).await?;
                c.check(
                    rule_status(&v, "R3_popup_check") == "violated",
                    "R3 violated",
                );
                c.check(
                    uncredited(&v, "popup_missed") > 0,
                    "time since the last confirmed check voided",
                );
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    format!(
                        "{} s voided as popup_missed",
                        uncredited(&v, "popup_missed") / 1000
                    ),
                )
            }
            "face_fail_then_pass" => {
                let e = self.enrol(name, 30, 10).await?;
                let mut p = self.player(&e, 0).await?;
                p.face(false).await?;
                p.watch_until(Script::default(), 30_000).await?;
                p.face(true).await?;
                p.watch_until(Script::default(), 150_000).await?;
                let v = p.finish(self).await?;
                c.check(
                    uncredited(&v, "face_check_failed") > 0,
                    "no credit while the face check failed",
                );
                c.check(
                    v["credited_ms"].as_i64().unwrap_or(0) > 0,
                    "credit after the passed check",
                );
                c.check(v["flagged_for_review"] == true, "flagged for a reviewer");
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    "credit only after the passed check".into(),
                )
            }
            "out_of_order" => {
                let e = self.enrol(name, 30, 10).await?;
                let (status, body) = self.start(&e, 1).await?;
                c.check(
                    status == 409 && body["rule"] == "R5_sequential_lessons",
                    format!("lesson 2 before 1 refused by R5 (got {status})"),
                );
                let summary = self.get(&format!("/api/v1/enrolments/{e}/summary")).await?;
                let recorded = summary["refusals"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x["rule"] == "R5_sequential_lessons"));
                c.check(recorded, "the refusal is recorded");
                (0, "lesson 2 refused before lesson 1 (R5)".into())
            }
            "online_cap" | "remainder_39_min" => {
                // online_cap: 3 planned hours → cap 1 课时; the learner earns 2.
                // remainder: 12 + 27 minutes = 39 minutes, which is no 课时.
                let (total, online) = if name == "online_cap" {
                    (3, 1)
                } else {
                    (30, 10)
                };
                let e = self.enrol(name, total, online).await?;
                let plan: Vec<(usize, Option<i64>)> = if name == "online_cap" {
                    vec![(0, None), (1, None), (2, None)]
                } else {
                    vec![(0, None), (1, Some(27 * 60_000))]
                };
                for (lesson, until) in plan {
                    let mut p = self.player(&e, lesson).await?;
                    p.face(true).await?;
                    match until {
                        None => p.watch_to_end(Script::default()).await?,
                        Some(ms) => p.watch_until(Script::default(), ms).await?,
                    }
                    p.finish(self).await?;
                }
                let s = self.get(&format!("/api/v1/enrolments/{e}/summary")).await?;
                let v = &s["verdict"];
                let hours = v["lesson_hours"].as_i64().unwrap_or(-1);
                if name == "online_cap" {
                    c.check(
                        hours == 1,
                        format!("1 课时 counts under the cap (got {hours})"),
                    );
                    c.check(
                        uncredited(v, "online_cap_reached") > 0,
                        "time beyond the cap is uncredited",
                    );
                } else {
                    c.check(hours == 0, format!("39 minutes are no 课时 (got {hours})"));
                    c.check(
                        uncredited(v, "incomplete_lesson_hour") > 0,
                        "the remainder is reason-coded",
                    );
                }
                (
                    v["credited_ms"].as_i64().unwrap_or(0),
                    format!("{hours} 课时"),
                )
            }
            other => bail!("unknown scenario {other}"),
        };
        let passed = c.0.is_empty();
        let summary = if passed {
            summary
        } else {
            format!("{summary}; FAILED: {}", c.0.join("; "))
        };
        Ok(Outcome {
            scenario: name.to_owned(),
            passed,
            credited_ms: credited,
            summary,
        })
    }
}
