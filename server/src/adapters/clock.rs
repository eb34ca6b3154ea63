//! Server clocks: the system clock, optionally scaled for demos and tests. A scaled clock is
//! monotonic (derived from `Instant`) and announced at start-up and to every learner socket.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::domain::Millis;
use crate::ports::Clock;

/// Real time × `scale`, anchored at the moment the clock was made.
#[derive(Debug)]
pub struct SystemClock {
    origin_wall: i64,
    origin: Instant,
    scale: f64,
}

impl SystemClock {
    pub fn new(scale: f64) -> SystemClock {
        let origin_wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        SystemClock {
            origin_wall,
            origin: Instant::now(),
            scale: if scale > 0.0 { scale } else { 1.0 },
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        // Truncation to whole milliseconds is intended.
        #[allow(clippy::cast_possible_truncation)]
        Millis(self.origin_wall + elapsed as i64)
    }

    fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster_and_never_backwards() {
        let c = SystemClock::new(100.0);
        let a = c.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = c.now();
        assert!(
            b.0 - a.0 >= 1_900,
            "100× clock advanced only {} ms in 20 ms",
            b.0 - a.0
        );
        assert!(
            SystemClock::new(0.0).scale() > 0.0,
            "a zero scale falls back to real time"
        );
    }
}
