//! A realistic session log for the benchmarks: an honest learner watching a whole 45-minute
//! lesson. Mirrors `server/src/domain/test_support.rs` (which is `#[cfg(test)]` and so out of
//! reach of a bench): session started, face check passed after 1 s, play 1 s later, a
//! heartbeat every 5 s at 1.0×, a pop-up every 3.5 min of watched time answered in 5 s (the
//! player paused meanwhile), two snapshots answered in 1 s, and `completed` at the end.
//! Per-origin sequence numbers strictly increase and the log is in canonical order
//! ([`Event::order_key`]), as the gateway and the worker stamp it, so `apply` folds every event.

use proctor::domain::events::FaceMethod;
use proctor::domain::profile::DEFAULT_PROFILE;
use proctor::domain::{
    ChallengeKind, Event, EventBody, LearnerId, LessonId, Millis, Origin, Profile, SessionContext,
    SessionId, TerminationReason,
};

/// Server time of the first event.
pub const T0: i64 = 1_700_000_000_000;
/// A 45-minute lesson.
pub const LESSON_MS: i64 = 45 * 60 * 1_000;
/// Heartbeat period.
pub const HEARTBEAT_MS: i64 = 5_000;
/// Watched time between pop-ups (the tests' 3.5 min; the profile's `max_gap_ms` is 5 min).
pub const POPUP_EVERY_MS: i64 = 210_000;
/// How long the learner takes to answer a pop-up.
pub const POPUP_ANSWER_MS: i64 = 5_000;

pub fn profile() -> Profile {
    Profile::latest(DEFAULT_PROFILE).expect("the default profile loads")
}

pub fn ctx() -> SessionContext {
    SessionContext {
        session_id: SessionId::from("0192f0c4-7a39-7cc1-9e2b-3f4d5a6b7c8d"),
        learner_id: LearnerId::from("0192f0c4-7a39-7cc1-9e2b-000000000001"),
        lesson_id: LessonId::from("0192f0c4-7a39-7cc1-9e2b-000000000002"),
        lesson_duration_ms: LESSON_MS,
        prior_coverage: vec![],
    }
}

struct Builder {
    t: i64,
    pos: i64,
    playing: bool,
    events: Vec<Event>,
    server_seq: u64,
    client_seq: u64,
    nonces: u32,
    since_popup: i64,
    snapshot_at: Vec<i64>,
}

impl Builder {
    fn server(&mut self, body: EventBody) {
        // A server event sorts before a client event of the same millisecond, so the worker
        // stamps it 1 ms later (`SessionFold::next_server_at`); so does the builder.
        if self
            .events
            .last()
            .is_some_and(|e| e.origin == Origin::Client && e.at.0 >= self.t)
        {
            self.wait(1);
        }
        self.server_seq += 1;
        self.events.push(Event {
            origin: Origin::Server,
            seq: self.server_seq,
            at: Millis(self.t),
            body,
        });
    }

    fn client(&mut self, body: EventBody) {
        self.client_seq += 1;
        self.events.push(Event {
            origin: Origin::Client,
            seq: self.client_seq,
            at: Millis(self.t),
            body,
        });
    }

    /// Server time passes; an honest player at 1.0× advances by the same amount.
    fn wait(&mut self, ms: i64) {
        self.t += ms;
        if self.playing {
            self.pos += ms;
        }
    }

    fn play(&mut self) {
        self.playing = true;
        self.client(EventBody::Played {
            position_ms: self.pos,
        });
    }

    fn pause(&mut self) {
        self.playing = false;
        self.client(EventBody::Paused {
            position_ms: self.pos,
        });
    }

    fn heartbeat(&mut self) {
        self.client(EventBody::Heartbeat {
            position_ms: self.pos,
            rate_permille: 1000,
            paused: !self.playing,
            visible: true,
            focused: true,
            played: vec![],
        });
    }

    fn issue(&mut self, kind: ChallengeKind, prefix: &str) -> String {
        self.nonces += 1;
        let nonce = format!("{prefix}-{:08x}", self.nonces.wrapping_mul(2_654_435_761));
        self.server(EventBody::ChallengeIssued {
            nonce: nonce.clone(),
            kind,
            deadline: Millis(self.t + 60_000),
            expected: (kind == ChallengeKind::Popup).then(|| "42".to_owned()),
        });
        nonce
    }

    fn popup(&mut self) {
        let nonce = self.issue(ChallengeKind::Popup, "popup");
        self.pause();
        self.wait(POPUP_ANSWER_MS);
        self.client(EventBody::ChallengeAnswered {
            nonce,
            answer: "42".to_owned(),
        });
        self.play();
        self.since_popup = 0;
    }

    fn snapshot(&mut self) {
        let nonce = self.issue(ChallengeKind::Snapshot, "snap");
        self.wait(1_000);
        self.server(EventBody::SnapshotStored {
            nonce,
            snapshot_id: format!("img-{}", self.t),
            sha256: "ab".repeat(32),
            analysis: None,
        });
        self.heartbeat();
    }
}

/// The honest 45-minute log, in canonical order.
pub fn honest_45min() -> Vec<Event> {
    let mut b = Builder {
        t: T0,
        pos: 0,
        playing: false,
        events: Vec::with_capacity(700),
        server_seq: 0,
        client_seq: 0,
        nonces: 0,
        since_popup: 0,
        snapshot_at: vec![LESSON_MS / 4, LESSON_MS * 3 / 4],
    };
    b.server(EventBody::SessionStarted);
    b.wait(1_000);
    b.server(EventBody::FaceChecked {
        check_id: format!("fc-{}", b.t),
        nonce: None,
        method: FaceMethod::Face,
        passed: true,
        match_permille: Some(870),
        liveness_permille: Some(990),
        detail: "model-v1".to_owned(),
    });
    b.wait(1_000);
    b.play();
    while b.pos < LESSON_MS {
        let step = HEARTBEAT_MS.min(LESSON_MS - b.pos);
        let before = b.pos;
        b.wait(step);
        b.heartbeat();
        b.since_popup += step;
        if let Some(i) = b.snapshot_at.iter().position(|&p| before < p && p <= b.pos) {
            b.snapshot_at.remove(i);
            b.snapshot();
        }
        if b.since_popup >= POPUP_EVERY_MS && b.pos < LESSON_MS {
            b.popup();
        }
    }
    let position_ms = Some(b.pos);
    b.server(EventBody::Terminated {
        reason: TerminationReason::Completed,
        position_ms,
    });
    assert!(
        b.events.is_sorted_by_key(Event::order_key),
        "the log is in canonical order"
    );
    b.events
}
