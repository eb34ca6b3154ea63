//! R1 快进播放: credit only for video the server saw advance at ≤ `max_rate` of server time.
//! Holds the anchor arithmetic and the coverage (merged ms interval) algebra. Invariant:
//! coverage lists are sorted, merged, non-empty intervals within `[0, duration]`.

use crate::domain::profile::Profile;
use crate::domain::time::Millis;

/// The profile's maximum playback rate in per-mille (1.0× = 1000).
pub fn max_rate_permille(profile: &Profile) -> i64 {
    // Rates are small positive numbers; rounding to per-mille is exact for 1.0, 1.25, ….
    #[allow(clippy::cast_possible_truncation)]
    let r = (profile.fast_forward.max_rate * 1000.0).round() as i64;
    r
}

/// Whether a reported rate exceeds the maximum.
pub fn rate_exceeds(profile: &Profile, rate_permille: i32) -> bool {
    i64::from(rate_permille) > max_rate_permille(profile)
}

/// The furthest position a claim may report at `now`: from the anchor `(t_a, p_a)` set when
/// playback (re)started, `p_a + (now − t_a) × max_rate + tolerance`; without an anchor (not
/// playing) the position may not move beyond `position` + the minimum tolerance.
pub fn allowed_position(
    profile: &Profile,
    anchor: Option<(Millis, i64)>,
    position: i64,
    now: Millis,
) -> i64 {
    match anchor {
        Some((t_a, p_a)) => {
            let elapsed = now.saturating_sub(t_a);
            p_a + elapsed * max_rate_permille(profile) / 1000 + profile.drift_tolerance_ms(elapsed)
        }
        None => position + profile.drift_tolerance_ms(0),
    }
}

/// A claim is fast-forward when it is beyond what the anchor allows AND beyond the furthest
/// watched point (jumping around inside covered video earns nothing but is not skipping).
pub fn is_fast_forward(profile: &Profile, allowed: i64, furthest: i64, claim: i64) -> bool {
    claim > allowed && claim > furthest + profile.fast_forward.drift_tolerance_ms
}

/// A seek is a violation when it lands beyond the furthest watched point + tolerance.
pub fn is_forward_seek(profile: &Profile, furthest: i64, to: i64) -> bool {
    to > furthest + profile.fast_forward.drift_tolerance_ms
}

/// Adds `[a, b)` to a merged coverage list.
pub fn add(cov: &mut Vec<[i64; 2]>, a: i64, b: i64) {
    if b <= a {
        return;
    }
    let mut out: Vec<[i64; 2]> = Vec::with_capacity(cov.len() + 1);
    let (mut lo, mut hi) = (a, b);
    let mut placed = false;
    for &[x, y] in cov.iter() {
        if y < lo {
            out.push([x, y]);
        } else if x > hi {
            if !placed {
                out.push([lo, hi]);
                placed = true;
            }
            out.push([x, y]);
        } else {
            lo = lo.min(x);
            hi = hi.max(y);
        }
    }
    if !placed {
        out.push([lo, hi]);
    }
    *cov = out;
}

/// Adds to `cov` the parts of `[a, b)` that `prior` does not cover.
pub fn add_outside(cov: &mut Vec<[i64; 2]>, prior: &[[i64; 2]], a: i64, b: i64) {
    let mut cur = a;
    for &[x, y] in prior {
        if y <= cur || x >= b {
            continue;
        }
        add(cov, cur, x.min(b));
        cur = cur.max(y);
    }
    add(cov, cur, b);
}

/// Normalises arbitrary intervals into a merged list clipped to `[0, duration]`.
pub fn normalise(intervals: &[[i64; 2]], duration: i64) -> Vec<[i64; 2]> {
    let mut cov = Vec::new();
    for &[a, b] in intervals {
        add(&mut cov, a.max(0), b.min(duration));
    }
    cov
}

/// Total length of a merged list.
pub fn total(cov: &[[i64; 2]]) -> i64 {
    cov.iter().map(|[a, b]| b - a).sum()
}

/// Length of `[a, b)` covered by a merged list.
pub fn covered_in(cov: &[[i64; 2]], a: i64, b: i64) -> i64 {
    cov.iter().map(|&[x, y]| (y.min(b) - x.max(a)).max(0)).sum()
}

/// Length of the union of two merged lists.
pub fn union_total(a: &[[i64; 2]], b: &[[i64; 2]]) -> i64 {
    let mut u = a.to_vec();
    for &[x, y] in b {
        add(&mut u, x, y);
    }
    total(&u)
}

/// Length of `[a, b)` not covered by either list.
pub fn uncovered_in(x: &[[i64; 2]], y: &[[i64; 2]], a: i64, b: i64) -> i64 {
    if b <= a {
        return 0;
    }
    let mut u: Vec<[i64; 2]> = Vec::new();
    for &[p, q] in x.iter().chain(y.iter()) {
        add(&mut u, p.max(a), q.min(b));
    }
    (b - a) - total(&u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::{DEFAULT_PROFILE, Profile};

    #[test]
    fn coverage_merges_and_measures() {
        let mut c = vec![];
        add(&mut c, 10, 20);
        add(&mut c, 30, 40);
        add(&mut c, 20, 30);
        assert_eq!(c, vec![[10, 40]]);
        add(&mut c, 0, 5);
        assert_eq!(c, vec![[0, 5], [10, 40]]);
        assert_eq!(total(&c), 35);
        assert_eq!(covered_in(&c, 0, 15), 10);
        assert_eq!(uncovered_in(&c, &[[5, 7]], 0, 15), 3);
        let mut fresh = vec![];
        add_outside(&mut fresh, &[[5, 10], [12, 14]], 0, 13);
        assert_eq!(fresh, vec![[0, 5], [10, 12]]);
        assert_eq!(normalise(&[[-5, 3], [8, 100]], 50), vec![[0, 3], [8, 50]]);
    }

    #[test]
    fn anchor_allows_real_time_plus_tolerance_only() {
        let p = Profile::latest(DEFAULT_PROFILE).expect("profile");
        let allowed = allowed_position(&p, Some((Millis(0), 1_000)), 0, Millis(5_000));
        assert_eq!(allowed, 1_000 + 5_000 + 500);
        assert!(!is_fast_forward(&p, allowed, 0, 6_500));
        assert!(is_fast_forward(&p, allowed, 0, 6_501));
        assert!(
            !is_fast_forward(&p, allowed, 10_000, 11_000),
            "inside covered ground is not skipping"
        );
        assert!(is_forward_seek(&p, 10_000, 12_001));
        assert!(!is_forward_seek(&p, 10_000, 12_000));
        assert!(rate_exceeds(&p, 1001) && !rate_exceeds(&p, 1000));
    }
}
