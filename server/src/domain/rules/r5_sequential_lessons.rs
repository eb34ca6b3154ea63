//! R5 不按内容先后顺序: lesson k only after lessons 1..k−1 are complete. Used by admission
//! (refuse to start) and the enrolment fold (credit of an out-of-order session is void).
//! Invariant: positions are 1-based; the answer is sorted and de-duplicated.

use crate::domain::time::Millis;

/// Positions before `position` that are not in `completed`, ascending.
pub fn missing_before(position: u32, completed: &[u32]) -> Vec<u32> {
    (1..position).filter(|k| !completed.contains(k)).collect()
}

/// Whether a session started at `started_at` was in order, given when each earlier lesson
/// (positions 1..k−1, in order) was completed (`None`: never).
pub fn in_order(earlier_completed_at: &[Option<Millis>], started_at: Millis) -> bool {
    earlier_completed_at
        .iter()
        .all(|c| matches!(c, Some(t) if *t <= started_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lessons_are_listed() {
        assert_eq!(missing_before(1, &[]), Vec::<u32>::new());
        assert_eq!(missing_before(4, &[1, 3]), vec![2]);
        assert!(in_order(&[Some(Millis(5))], Millis(5)));
        assert!(!in_order(&[Some(Millis(6))], Millis(5)));
        assert!(!in_order(&[None], Millis(5)));
    }
}
