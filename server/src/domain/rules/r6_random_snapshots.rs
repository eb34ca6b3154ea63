//! R6 每课时无随机保留影像照片: each 课时 needs `snapshots.per_lesson_hour` snapshots taken
//! at server-chosen moments inside its server-time range. Invariant: a snapshot counts for at
//! most one 课时 (the first whose range holds it).

use crate::domain::events::SnapshotAnalysis;
use crate::domain::time::Millis;
use crate::domain::verdict::Reason;

/// Whether a snapshot is a valid retained photo: `None` when it is, else the reason code and
/// why. An unanalysed snapshot (models unavailable) counts; reviewers see it unanalysed. The
/// analysis's results were decided by the service and logged; this only reads them.
pub fn refusal(analysis: Option<&SnapshotAnalysis>) -> Option<(Reason, String)> {
    let a = analysis?;
    if let Some(other) = &a.same_picture_as {
        return Some((
            Reason::ReusedPicture,
            format!("the picture (dHash {}) reuses snapshot {other}", a.dhash),
        ));
    }
    if a.one_live_matching_face == Some(false) {
        return Some((
            Reason::UnusableSnapshot,
            format!(
                "not exactly one live face of the enrolled learner (faces {}, match {}‰, P(real) {}‰)",
                a.faces,
                a.match_permille.map_or("-".into(), |m| m.to_string()),
                a.liveness_permille.map_or("-".into(), |m| m.to_string()),
            ),
        ));
    }
    None
}

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
    fn only_one_live_matching_fresh_picture_counts() {
        let ok = SnapshotAnalysis {
            faces: 1,
            match_permille: Some(700),
            liveness_permille: Some(950),
            dhash: "00ff00ff00ff00ff".into(),
            same_picture_as: None,
            one_live_matching_face: Some(true),
            detail: String::new(),
        };
        assert_eq!(refusal(None), None);
        assert_eq!(refusal(Some(&ok)), None);
        let legacy = SnapshotAnalysis {
            one_live_matching_face: None,
            ..ok.clone()
        };
        assert_eq!(refusal(Some(&legacy)), None);
        let bad = SnapshotAnalysis {
            faces: 2,
            one_live_matching_face: Some(false),
            ..ok.clone()
        };
        assert_eq!(
            refusal(Some(&bad)).map(|r| r.0),
            Some(Reason::UnusableSnapshot)
        );
        let reused = SnapshotAnalysis {
            same_picture_as: Some("snap-1".into()),
            ..ok
        };
        let (code, why) = refusal(Some(&reused)).expect("refused");
        assert_eq!(code, Reason::ReusedPicture);
        assert!(why.contains("snap-1"));
    }

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
