//! R8 每课时不低于40分钟: credited time converts to 课时 only in whole units of
//! `lesson_hour.minutes`. Invariant: the units plus the remainder add up to the input.

use crate::domain::time::Millis;

/// Cuts credited spans (server time, sorted, disjoint) into whole units of `unit_ms` of
/// credited time. Returns each unit's `(from, to)` server-time range and the remainder ms.
pub fn cut(spans: &[(Millis, Millis)], unit_ms: i64) -> (Vec<(Millis, Millis)>, i64) {
    let mut units = Vec::new();
    let mut acc = 0_i64;
    let mut start: Option<Millis> = None;
    for &(from, to) in spans {
        let mut cur = from;
        while cur < to {
            let st = *start.get_or_insert(cur);
            let take = (unit_ms - acc).min(to.0 - cur.0);
            acc += take;
            cur = cur.plus(take);
            if acc == unit_ms {
                units.push((st, cur));
                acc = 0;
                start = None;
            }
        }
    }
    (units, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_units_and_a_remainder() {
        let (u, rest) = cut(&[(Millis(0), Millis(30)), (Millis(100), Millis(125))], 20);
        assert_eq!(u, vec![(Millis(0), Millis(20)), (Millis(20), Millis(110))]);
        assert_eq!(rest, 15);
        let (u, rest) = cut(&[(Millis(0), Millis(39))], 40);
        assert!(u.is_empty());
        assert_eq!(rest, 39);
    }
}
