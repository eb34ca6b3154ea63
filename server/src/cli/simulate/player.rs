//! The simulated learner's player: a WebSocket client that plays a script of playback
//! behaviour against the server clock, answers (or ignores) challenges, and uploads stand-in
//! images for face checks and snapshots.

use std::time::Duration;

use anyhow::{Context, ensure};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::Sim;

/// How the simulated learner treats pop-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum PopupPolicy {
    /// Pause, answer within a few seconds, resume.
    #[default]
    Answer,
    /// Keep playing and never answer.
    Ignore,
    /// Pause and answer after the deadline.
    Late,
}

/// One stretch of playback behaviour.
#[derive(Debug, Clone, Copy)]
pub(super) struct Script {
    /// Reported playback rate.
    pub rate_permille: i32,
    /// Video advance per server second once cheating starts.
    pub speed: f64,
    /// Server-time offset in the stretch after which `speed` applies.
    pub cheat_from_ms: i64,
    pub visible: bool,
    pub popup: PopupPolicy,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            rate_permille: 1000,
            speed: 0.97,
            cheat_from_ms: 0,
            visible: true,
            popup: PopupPolicy::Answer,
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) struct Player {
    ws: Ws,
    http: reqwest::Client,
    base: String,
    session_id: String,
    token: String,
    seq: u64,
    position_ms: i64,
    pub duration_ms: i64,
    /// The playback rate last reported.
    rate_permille: i32,
    hb_ms: i64,
    scale: f64,
    ended: bool,
    /// Open challenges: (nonce, kind, code, received at server-ms offset).
    pending: Vec<(String, String, Option<String>, i64)>,
    /// Server milliseconds of playback simulated so far in this session.
    clock_ms: i64,
}

/// A synthetic image for the stand-in; `salt` makes each one a different picture (a camera
/// never sends the same frame twice, and R6 treats a repeated picture as reuse).
pub(super) fn png(bright: bool, salt: &str) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(std::iter::repeat_n(if bright { 180u8 } else { 0u8 }, 512));
    if bright {
        v.extend(salt.bytes());
    }
    v
}

impl Player {
    pub(super) async fn open(
        sim: &Sim,
        started: &Value,
        duration_ms: i64,
    ) -> anyhow::Result<Player> {
        let token = started["learner_token"]
            .as_str()
            .context("learner_token")?
            .to_owned();
        let url = format!(
            "{}?access_token={token}",
            started["ws_url"].as_str().context("ws_url")?
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .context("WebSocket connect")?;
        let welcome = next_json(&mut ws).await?.context("no welcome")?;
        ensure!(
            welcome["type"] == "welcome",
            "expected welcome, got {welcome}"
        );
        let mut p = Player {
            ws,
            http: sim.http.clone(),
            base: sim.base.clone(),
            session_id: started["session_id"]
                .as_str()
                .context("session_id")?
                .to_owned(),
            token,
            seq: welcome["last_seq"].as_u64().unwrap_or(0),
            position_ms: 0,
            duration_ms,
            rate_permille: 1000,
            hb_ms: welcome["heartbeat_interval_ms"].as_i64().unwrap_or(5000),
            scale: sim.scale,
            ended: false,
            pending: vec![],
            clock_ms: 0,
        };
        p.send(json!({"type": "initialized", "duration_ms": duration_ms}))
            .await?;
        Ok(p)
    }

    async fn send(&mut self, mut body: Value) -> anyhow::Result<()> {
        self.seq += 1;
        body["seq"] = json!(self.seq);
        self.ws
            .send(Message::Text(body.to_string().into()))
            .await
            .context("send")?;
        Ok(())
    }

    /// Sleeps `server_ms` of server time, handling server messages meanwhile.
    async fn wait(&mut self, server_ms: i64) -> anyhow::Result<()> {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let real = Duration::from_micros((server_ms as f64 * 1000.0 / self.scale) as u64);
        let deadline = tokio::time::Instant::now() + real;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Ok(()),
                msg = next_json(&mut self.ws) => match msg? {
                    Some(m) => self.on_message(&m),
                    None => { self.ended = true; return Ok(()); }
                },
            }
        }
    }

    fn on_message(&mut self, m: &Value) {
        match m["type"].as_str() {
            Some("challenge") => {
                let code = m["prompt"].as_str().and_then(|p| {
                    p.split_whitespace()
                        .find(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
                });
                self.pending.push((
                    m["nonce"].as_str().unwrap_or_default().to_owned(),
                    m["kind"].as_str().unwrap_or_default().to_owned(),
                    code.map(str::to_owned),
                    self.clock_ms,
                ));
            }
            Some("ended") => self.ended = true,
            _ => {}
        }
    }

    pub(super) async fn face(&mut self, bright: bool) -> anyhow::Result<()> {
        self.upload("face-checks", None, bright).await
    }

    async fn upload(
        &mut self,
        what: &str,
        nonce: Option<&str>,
        bright: bool,
    ) -> anyhow::Result<()> {
        let mut url = format!("{}/api/v1/sessions/{}/{what}", self.base, self.session_id);
        if let Some(n) = nonce {
            url.push_str(&format!("?nonce={n}"));
        }
        let r = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "image/png")
            .body(png(
                bright,
                &format!("{}{}", self.session_id, nonce.unwrap_or("start")),
            ))
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "upload {what}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        Ok(())
    }

    async fn heartbeat(&mut self, s: &Script, paused: bool) -> anyhow::Result<()> {
        self.send(json!({"type": "heartbeat", "position_ms": self.position_ms, "rate_permille": self.rate_permille,
            "paused": paused, "visible": s.visible, "focused": s.visible})).await
    }

    /// Reports a rate change the way a player does, when the script's cheating begins or ends.
    async fn set_rate(&mut self, rate_permille: i32) -> anyhow::Result<()> {
        if rate_permille != self.rate_permille {
            self.rate_permille = rate_permille;
            self.send(json!({"type": "rate_changed", "position_ms": self.position_ms, "rate_permille": rate_permille}))
                .await?;
        }
        Ok(())
    }

    pub(super) async fn seek(&mut self, to_ms: i64) -> anyhow::Result<()> {
        let from = self.position_ms;
        self.position_ms = to_ms.min(self.duration_ms);
        self.send(json!({"type": "seeked", "from_ms": from, "to_ms": self.position_ms}))
            .await
    }

    /// Answers or ignores open challenges per the script. Returns true while a pop-up keeps
    /// playback paused.
    async fn handle_challenges(&mut self, s: &Script) -> anyhow::Result<bool> {
        let mut paused = false;
        let pending = std::mem::take(&mut self.pending);
        for (nonce, kind, code, at) in pending {
            match kind.as_str() {
                "snapshot" => self.upload("snapshots", Some(&nonce), true).await?,
                "face_recheck" => self.upload("face-checks", Some(&nonce), true).await?,
                _ => match s.popup {
                    PopupPolicy::Ignore => {}
                    PopupPolicy::Answer if self.clock_ms - at >= 3_000 => {
                        self.send(json!({"type": "challenge_answered", "nonce": nonce, "answer": code.unwrap_or_default()})).await?;
                    }
                    PopupPolicy::Late if self.clock_ms - at >= 75_000 => {
                        self.send(json!({"type": "challenge_answered", "nonce": nonce, "answer": code.unwrap_or_default()})).await?;
                    }
                    PopupPolicy::Answer | PopupPolicy::Late => {
                        paused = true;
                        self.pending.push((nonce, kind, code, at));
                    }
                },
            }
        }
        Ok(paused)
    }

    pub(super) async fn watch_to_end(&mut self, s: Script) -> anyhow::Result<()> {
        self.watch_until(s, i64::MAX).await
    }

    /// Plays until the video position reaches `until_ms` (or the end of the video).
    pub(super) async fn watch_until(&mut self, s: Script, until_ms: i64) -> anyhow::Result<()> {
        let start_clock = self.clock_ms;
        let mut playing = false;
        while !self.ended && self.position_ms < until_ms.min(self.duration_ms) {
            let paused = self.handle_challenges(&s).await?;
            if paused && playing {
                self.send(json!({"type": "paused", "position_ms": self.position_ms}))
                    .await?;
                playing = false;
            } else if !paused && !playing {
                self.send(json!({"type": "played", "position_ms": self.position_ms}))
                    .await?;
                playing = true;
            }
            self.wait(self.hb_ms).await?;
            self.clock_ms += self.hb_ms;
            // The server ended the session or closed the socket meanwhile (a lease expired on a
            // slow machine, say): nothing more can be sent; the verdict says what counted.
            if self.ended {
                break;
            }
            // A pop-up pauses playback at once, and playback resumes from the last position
            // reported to the server (docs/protocol.md): video played while the check was
            // pending earns nothing, so it must be watched again.
            let popup_arrived =
                s.popup != PopupPolicy::Ignore && self.pending.iter().any(|p| p.1 == "popup");
            let cheating = self.clock_ms - start_clock > s.cheat_from_ms;
            self.set_rate(if cheating { s.rate_permille } else { 1000 })
                .await?;
            if playing && !popup_arrived {
                let speed = if cheating { s.speed } else { 0.97 };
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let step = (self.hb_ms as f64 * speed) as i64;
                self.position_ms = (self.position_ms + step)
                    .min(self.duration_ms)
                    .min(until_ms);
            }
            self.heartbeat(&s, !playing).await?;
        }
        if playing && !self.ended {
            self.send(json!({"type": "paused", "position_ms": self.position_ms}))
                .await?;
        }
        Ok(())
    }

    /// Ends the session and returns its verdict.
    pub(super) async fn finish(mut self, sim: &Sim) -> anyhow::Result<Value> {
        if !self.ended {
            self.send(
                json!({"type": "terminated", "reason": "ended", "position_ms": self.position_ms}),
            )
            .await?;
            let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
            while !self.ended && tokio::time::Instant::now() < give_up {
                match tokio::time::timeout(Duration::from_secs(10), next_json(&mut self.ws)).await {
                    Ok(Ok(Some(m))) => self.on_message(&m),
                    _ => break,
                }
            }
        }
        sim.verdict(&self.session_id).await
    }
}

/// The next JSON text message; `None` when the socket closed.
async fn next_json(ws: &mut Ws) -> anyhow::Result<Option<Value>> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}
