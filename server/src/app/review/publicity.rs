//! Publicity (公示, R17): an effective decision is publicly listed for the profile's
//! `review.publicity_days` (calendar days, or working days when `publicity_working_days`)
//! before it is final. Days are counted in China Standard Time (UTC+8); public holidays are not
//! modelled, so a working-day period counts Monday to Friday.

use crate::domain::Millis;

const DAY_MS: i64 = 86_400_000;
const CST_MS: i64 = 8 * 3_600_000;

/// When the publicity period of a decision effective at `at` ends: the end of the
/// `days`-th full (working) day after the day it took effect, in UTC+8.
pub fn publicity_end(at: Millis, days: u32, working_days: bool) -> Millis {
    let local_day = (at.0 + CST_MS).div_euclid(DAY_MS);
    let mut day = local_day;
    let mut counted = 0;
    while counted < days {
        day += 1;
        // 1970-01-01 was a Thursday: weekday 0 = Monday.
        let weekday = (day + 3).rem_euclid(7);
        if !working_days || weekday < 5 {
            counted += 1;
        }
    }
    Millis((day + 1) * DAY_MS - CST_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-20 10:00 CST is a Friday.
    const FRI_10H: Millis = Millis(1_795_140_000_000);

    #[test]
    fn calendar_and_working_days() {
        let day = |m: Millis| (m.0 + CST_MS).div_euclid(DAY_MS);
        let start = day(FRI_10H);
        assert_eq!((start + 3).rem_euclid(7), 4, "the fixture is a Friday");
        // Five calendar days: ends at the end of Wednesday 25th (CST).
        let end = publicity_end(FRI_10H, 5, false);
        assert_eq!(
            day(end) - start,
            6,
            "the end is the first instant after day 5"
        );
        assert_eq!(
            (end.0 + CST_MS).rem_euclid(DAY_MS),
            0,
            "it ends at midnight CST"
        );
        // Three working days from a Friday: Mon, Tue, Wed.
        let w = publicity_end(FRI_10H, 3, true);
        assert_eq!(day(w) - start, 6);
        // Zero days: final at the end of the day it took effect.
        assert_eq!(day(publicity_end(FRI_10H, 0, false)) - start, 1);
    }
}
