//! The set of server sequence numbers a fold has seen, as sorted runs. Server events have
//! two writers that draw from one counter, so they arrive almost in order and the set is
//! one or two runs (a `BTreeSet` of a 45-minute lesson's ~20 numbers held ~400 B in nodes).
//! A number reserved but never stored leaves a gap, which only splits a run.

/// Disjoint, non-adjacent inclusive runs `[first, last]`, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SeqSet {
    runs: Vec<[u64; 2]>,
}

impl SeqSet {
    /// The index of the first run that starts after `seq`.
    fn after(&self, seq: u64) -> usize {
        self.runs.partition_point(|r| r[0] <= seq)
    }

    /// The highest number in the set (0 when empty).
    pub(super) fn max(&self) -> u64 {
        self.runs.last().map_or(0, |r| r[1])
    }

    pub(super) fn contains(&self, seq: u64) -> bool {
        let i = self.after(seq);
        i > 0 && self.runs[i - 1][1] >= seq
    }

    /// Adds `seq`, merging it into the runs it touches. Returns whether it was new.
    pub(super) fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        let i = self.after(seq);
        let joins_left = i > 0 && self.runs[i - 1][1].checked_add(1) == Some(seq);
        let joins_right = i < self.runs.len() && seq.checked_add(1) == Some(self.runs[i][0]);
        match (joins_left, joins_right) {
            (true, true) => {
                self.runs[i - 1][1] = self.runs[i][1];
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1][1] = seq,
            (false, true) => self.runs[i][0] = seq,
            (false, false) => {
                // Usually the only run: allocated for one.
                if self.runs.capacity() == 0 {
                    self.runs.reserve_exact(1);
                }
                self.runs.insert(i, [seq, seq]);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::SeqSet;

    #[test]
    fn behaves_as_a_set_and_keeps_runs_merged() {
        // Every order of a small shuffled sequence with gaps and repeats.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2_000 {
            let mut set = SeqSet::default();
            let mut model = BTreeSet::new();
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let seq = seed % 30;
                assert_eq!(set.insert(seq), model.insert(seq), "insert {seq}");
                assert_eq!(set.max(), model.last().copied().unwrap_or(0), "max");
                for probe in 0..32 {
                    assert_eq!(set.contains(probe), model.contains(&probe), "{probe}");
                }
                for w in set.runs.windows(2) {
                    assert!(w[0][1] + 1 < w[1][0], "runs stay apart: {:?}", set.runs);
                }
            }
        }
        let mut set = SeqSet::default();
        for seq in 1..=20 {
            set.insert(seq);
        }
        assert_eq!(set.runs, vec![[1, 20]], "in-order numbers are one run");
    }
}
