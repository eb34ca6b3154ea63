//! Server time. The server clock is the only clock: every event carries the time at which the
//! server received (or generated) it, in milliseconds since the Unix epoch. Client clocks are
//! never read; client positions are video offsets, not times.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as stamped by the server.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub const fn saturating_sub(self, earlier: Millis) -> i64 {
        let d = self.0.saturating_sub(earlier.0);
        if d < 0 { 0 } else { d }
    }

    pub const fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Milliseconds per second, per day: named so that arithmetic on time reads as such.
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const DAY: i64 = 24 * 60 * MINUTE;
