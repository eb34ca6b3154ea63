//! Test-only builders for session logs and contexts: an honest learner and the pieces to
//! script a dishonest one. Invariant: the builder stamps strictly per-origin increasing
//! sequence numbers and non-decreasing server times, as the gateway does.

use super::events::{ChallengeKind, Event, EventBody, FaceMethod, Origin, TerminationReason};
use super::ids::{LearnerId, LessonId, SessionId};
use super::profile::{DEFAULT_PROFILE, Profile};
use super::session::{SessionContext, SessionFold};
use super::time::Millis;
use super::verdict::SessionVerdict;

pub const T0: i64 = 1_700_000_000_000;
pub const ANSWER: &str = "42";

pub fn henan() -> Profile {
    Profile::latest(DEFAULT_PROFILE).expect("default profile")
}

pub fn ctx(session: &str, lesson: &str, duration_ms: i64) -> SessionContext {
    SessionContext {
        session_id: SessionId::from(session),
        learner_id: LearnerId::from("learner-1"),
        lesson_id: LessonId::from(lesson),
        lesson_duration_ms: duration_ms,
        prior_coverage: vec![],
    }
}

/// Scripts a session log. `pos` is the player's real position; `wait` advances it while
/// playing at `rate` (an honest player); a dishonest script sets `pos` itself.
#[derive(Debug, Clone)]
pub struct LogBuilder {
    pub t: i64,
    pub pos: i64,
    pub rate: i32,
    pub playing: bool,
    pub visible: bool,
    pub focused: bool,
    pub events: Vec<Event>,
    server_seq: u64,
    client_seq: u64,
    nonces: u32,
    /// Auto pop-up every this much watched time in `watch` (`None`: never).
    pub popup_every: Option<i64>,
    since_popup: i64,
    /// Positions at which `watch` issues a snapshot request, answered 1 s later.
    pub snapshot_at: Vec<i64>,
}

impl LogBuilder {
    pub fn new(t0: i64) -> Self {
        LogBuilder {
            t: t0,
            pos: 0,
            rate: 1000,
            playing: false,
            visible: true,
            focused: true,
            events: vec![],
            server_seq: 0,
            client_seq: 0,
            nonces: 0,
            popup_every: Some(210_000),
            since_popup: 0,
            snapshot_at: vec![],
        }
    }

    pub fn server(&mut self, body: EventBody) -> &mut Self {
        self.server_seq += 1;
        self.events.push(Event {
            origin: Origin::Server,
            seq: self.server_seq,
            at: Millis(self.t),
            body,
        });
        self
    }

    pub fn client(&mut self, body: EventBody) -> &mut Self {
        self.client_seq += 1;
        self.events.push(Event {
            origin: Origin::Client,
            seq: self.client_seq,
            at: Millis(self.t),
            body,
        });
        self
    }

    /// Lets server time pass; an honest player advances.
    pub fn wait(&mut self, ms: i64) -> &mut Self {
        self.t += ms;
        if self.playing {
            self.pos += ms * i64::from(self.rate) / 1000;
        }
        self
    }

    pub fn nonce(&mut self, kind: &str) -> String {
        self.nonces += 1;
        format!("{kind}-{}", self.nonces)
    }

    pub fn start(&mut self) -> &mut Self {
        self.server(EventBody::SessionStarted)
    }

    pub fn face(&mut self, passed: bool, method: FaceMethod, nonce: Option<String>) -> &mut Self {
        let check_id = format!("fc-{}", self.t);
        self.server(EventBody::FaceChecked {
            check_id,
            nonce,
            method,
            passed,
            match_permille: Some(if passed { 870 } else { 310 }),
            liveness_permille: Some(990),
            detail: "model-v1".to_owned(),
        })
    }

    pub fn play(&mut self) -> &mut Self {
        self.playing = true;
        let p = self.pos;
        self.client(EventBody::Played { position_ms: p })
    }

    pub fn pause(&mut self) -> &mut Self {
        self.playing = false;
        let p = self.pos;
        self.client(EventBody::Paused { position_ms: p })
    }

    pub fn heartbeat(&mut self) -> &mut Self {
        let body = EventBody::Heartbeat {
            position_ms: self.pos,
            rate_permille: self.rate,
            paused: !self.playing,
            visible: self.visible,
            focused: self.focused,
            played: vec![],
        };
        self.client(body)
    }

    pub fn issue(&mut self, kind: ChallengeKind, deadline_ms: i64) -> String {
        let nonce = self.nonce(match kind {
            ChallengeKind::Popup => "popup",
            ChallengeKind::Snapshot => "snap",
            ChallengeKind::FaceRecheck => "face",
            ChallengeKind::Liveness => "live",
        });
        let expected = (kind == ChallengeKind::Popup).then(|| ANSWER.to_owned());
        let deadline = Millis(self.t + deadline_ms);
        self.server(EventBody::ChallengeIssued {
            nonce: nonce.clone(),
            kind,
            deadline,
            expected,
        });
        nonce
    }

    pub fn answer(&mut self, nonce: &str, answer: &str) -> &mut Self {
        self.client(EventBody::ChallengeAnswered {
            nonce: nonce.to_owned(),
            answer: answer.to_owned(),
        })
    }

    /// A pop-up the learner answers correctly after `after_ms` (the player pauses meanwhile).
    pub fn popup(&mut self, after_ms: i64) -> &mut Self {
        let n = self.issue(ChallengeKind::Popup, 60_000);
        let was_playing = self.playing;
        if was_playing {
            self.pause();
        }
        self.wait(after_ms).answer(&n, ANSWER);
        if was_playing {
            self.play();
        }
        self.since_popup = 0;
        self
    }

    /// A snapshot request answered 1 s later.
    pub fn snapshot(&mut self) -> &mut Self {
        let n = self.issue(ChallengeKind::Snapshot, 60_000);
        self.wait(1_000);
        let snapshot_id = format!("img-{}", self.t);
        self.server(EventBody::SnapshotStored {
            nonce: n,
            snapshot_id,
            sha256: "ab".repeat(32),
            analysis: None,
        })
    }

    /// Plays for `ms` of server time with heartbeats every 5 s (and the scheduled pop-ups and
    /// snapshots), stopping at `until_pos` if the video ends first.
    pub fn watch(&mut self, ms: i64, until_pos: i64) -> &mut Self {
        let mut left = ms;
        while left > 0 && self.pos < until_pos {
            let step = left
                .min(5_000)
                .min((until_pos - self.pos) * 1000 / i64::from(self.rate.max(1)));
            let step = step.max(1);
            let before = self.pos;
            self.wait(step).heartbeat();
            left -= step;
            self.since_popup += step;
            if let Some(i) = self
                .snapshot_at
                .iter()
                .position(|&p| before < p && p <= self.pos)
            {
                self.snapshot_at.remove(i);
                self.snapshot();
                self.heartbeat();
            }
            if self
                .popup_every
                .is_some_and(|every| self.since_popup >= every)
                && self.pos < until_pos
            {
                self.popup(5_000);
            }
        }
        self
    }

    pub fn end(&mut self, reason: TerminationReason) -> &mut Self {
        let p = self.pos;
        self.server(EventBody::Terminated {
            reason,
            position_ms: Some(p),
        })
    }

    /// Session started, face check passed after 1 s, playback 1 s later.
    pub fn opening(t0: i64) -> Self {
        let mut b = LogBuilder::new(t0);
        b.start()
            .wait(1_000)
            .face(true, FaceMethod::Face, None)
            .wait(1_000)
            .play();
        b
    }
}

/// An honest learner watching a whole lesson, with snapshots at the given positions.
pub fn honest(t0: i64, duration_ms: i64, snapshot_at: &[i64]) -> LogBuilder {
    let mut b = LogBuilder::opening(t0);
    b.snapshot_at = snapshot_at.to_vec();
    b.watch(i64::MAX / 2, duration_ms)
        .end(TerminationReason::Completed);
    b
}

pub fn fold(ctx: SessionContext, b: &LogBuilder) -> SessionVerdict {
    SessionFold::replay(henan(), ctx, b.events.clone())
}
