//! The learner WebSocket protocol: what the server sends. Client messages are domain
//! [`EventBody`](crate::domain::EventBody) client verbs plus a `seq` (see docs/protocol.md).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::domain::{ChallengeKind, Millis, TerminationReason};

/// Messages pushed to the learner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First message on every connection: where to resume from.
    Welcome {
        session_id: String,
        /// Highest client sequence number already accepted; resend everything after it.
        last_seq: u64,
        server_time: Millis,
        /// 1 in production. Above 1, the server clock runs faster than real time (demo/test).
        time_scale: f64,
        heartbeat_interval_ms: i64,
        lesson_duration_ms: i64,
        /// Challenges still waiting for an answer (sent again after a reconnect).
        outstanding: Vec<ChallengeMsg>,
    },
    /// The message with this sequence number is accepted, and so every one before it
    /// (acceptance is in order; the socket sends only the last of a run of them), or it was
    /// accepted before (`duplicate`).
    Ack { seq: u64, duplicate: bool },
    /// A sequence number was skipped: resend from `expected`. The message was not accepted.
    Gap { expected: u64, got: u64 },
    /// A check the server chose to run now.
    Challenge(ChallengeMsg),
    /// Credit as the server sees it.
    Credit {
        credited_ms: i64,
        provisional_ms: i64,
        lesson_coverage_ms: i64,
        lesson_complete: bool,
    },
    /// Something the learner did earned no credit, and why.
    Warning {
        rule: String,
        code: String,
        message: String,
    },
    /// A message was accepted into the log but is not valid as an answer (e.g. a wrong nonce).
    Error {
        seq: u64,
        code: String,
        detail: String,
    },
    /// A fresh learner token, before the current one expires.
    Token { token: String, expires_at: u64 },
    /// The session ended; the socket closes next.
    Ended { reason: TerminationReason },
}

/// A challenge as pushed to the learner. The expected pop-up answer is one of `choices`; for
/// an active liveness challenge `choices` are the pose steps in order (`turn_left`,
/// `turn_right`, `face_camera`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChallengeMsg {
    pub nonce: String,
    pub kind: ChallengeKind,
    pub deadline: Millis,
    pub deadline_in_ms: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// What to show: for a pop-up, the code to pick; otherwise a short instruction.
    pub prompt: String,
}

impl ChallengeMsg {
    /// The message a challenge is pushed as (on issue, and again to a reconnecting socket); pop-ups get the expected code among two decoys.
    pub fn new(
        nonce: String,
        kind: ChallengeKind,
        deadline: Millis,
        expected: Option<String>,
        now: Millis,
    ) -> Self {
        let mut rng = rand::rng();
        let (choices, prompt) = match (kind, expected) {
            (ChallengeKind::Popup, Some(code)) => {
                let mut c = vec![code.clone()];
                while c.len() < 3 {
                    let d = format!("{:04}", rng.random_range(0..10_000));
                    if !c.contains(&d) {
                        c.push(d);
                    }
                }
                let at = rng.random_range(0..c.len());
                c.swap(0, at);
                (
                    c,
                    format!("请选择 {code} 继续学习 / Pick {code} to continue"),
                )
            }
            (ChallengeKind::Popup, None) => (vec![], "Confirm you are here".into()),
            (ChallengeKind::Snapshot, _) => (vec![], "Taking a photo for your study record".into()),
            (ChallengeKind::FaceRecheck, _) => {
                (vec![], "Please look at the camera for a face check".into())
            }
            (ChallengeKind::Liveness, steps) => {
                crate::app::liveness::steps_and_prompt(steps.as_deref())
            }
        };
        ChallengeMsg {
            nonce,
            kind,
            deadline,
            deadline_in_ms: deadline.0 - now.0,
            choices,
            prompt,
        }
    }
}

/// WebSocket close codes (4000–4999 are the application's).
pub mod close {
    /// A message was not valid JSON, had unknown fields or an unknown or server-only type.
    pub const MALFORMED: u16 = 4400;
    /// A newer connection for the same session replaced this one.
    pub const REPLACED: u16 = 4409;
    /// The session has ended: no more events are accepted.
    pub const SESSION_ENDED: u16 = 4410;
    /// The service cannot accept events right now (store or bus down); reconnect later.
    pub const BACKPRESSURE: u16 = 4503;
}
