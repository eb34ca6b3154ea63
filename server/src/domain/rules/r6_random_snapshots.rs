//! R6 每课时无随机保留影像照片: each 课时 needs `snapshots.per_lesson_hour` snapshots taken
//! at server-chosen moments inside its server-time range. Invariant: a snapshot counts for at
//! most one 课时 (the first whose range holds it).

use crate::domain::time::Millis;

/// For each `(from, to)` range (in time order), the ids of the snapshots it holds.
/// `snapshots` are `(at, id)` sorted by time.
pub fn assign(ranges: &[(Millis, Millis)], snapshots: &[(Millis, String)]) -> Vec<Vec<String>> {
    let mut used = vec![false; snapshots.len()];
    ranges
        .iter()
        .map(|&(from, to)| {
            let mut ids = Vec::new();
            for (i, (at, id)) in snapshots.iter().enumerate() {
                if !used[i] && from <= *at && *at <= to {
                    used[i] = true;
                    ids.push(id.clone());
                }
            }
            ids
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_counts_once() {
        let snaps = vec![
            (Millis(10), "a".to_owned()),
            (Millis(20), "b".to_owned()),
            (Millis(35), "c".to_owned()),
        ];
        let got = assign(&[(Millis(0), Millis(20)), (Millis(20), Millis(40))], &snaps);
        assert_eq!(
            got,
            vec![vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
        );
    }
}
