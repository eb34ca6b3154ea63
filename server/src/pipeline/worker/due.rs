//! Sessions whose stored verdict is behind their fold, ordered by when their next verdict is
//! due, so the loop's frequent check costs the number of due sessions, not of dirty ones.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(super) struct DueSet {
    at: HashMap<String, i64>,
    order: BTreeSet<(i64, String)>,
}

impl DueSet {
    pub(super) fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    pub(super) fn contains(&self, sid: &str) -> bool {
        self.at.contains_key(sid)
    }

    pub(super) fn clear(&mut self) {
        self.at.clear();
        self.order.clear();
    }

    /// Marks a session due at `due` (wall-clock µs), or keeps its earlier due time.
    pub(super) fn mark(&mut self, sid: &str, due: i64) {
        match self.at.get_mut(sid) {
            Some(at) if *at <= due => {}
            Some(at) => {
                self.order.remove(&(*at, sid.to_owned()));
                *at = due;
                self.order.insert((due, sid.to_owned()));
            }
            None => {
                self.at.insert(sid.to_owned(), due);
                self.order.insert((due, sid.to_owned()));
            }
        }
    }

    /// Removes and returns the sessions due by `now` (every one when `all`), earliest first,
    /// except those `hold` keeps back: they stay, with their due time.
    pub(super) fn take_due(
        &mut self,
        now: i64,
        all: bool,
        hold: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let due: Vec<(i64, String)> = self
            .order
            .iter()
            .take_while(|(at, _)| all || *at <= now)
            .filter(|(_, sid)| !hold(sid))
            .cloned()
            .collect();
        for key in &due {
            self.order.remove(key);
            self.at.remove(&key.1);
        }
        due.into_iter().map(|(_, sid)| sid).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::DueSet;

    #[test]
    fn takes_what_is_due_earliest_first_and_keeps_the_earlier_mark() {
        let mut d = DueSet::default();
        d.mark("b", 20);
        d.mark("a", 30);
        d.mark("a", 10); // earlier: moves up
        d.mark("b", 40); // later: ignored
        d.mark("c", 50);
        assert_eq!(d.take_due(25, false, |_| false), vec!["a", "b"]);
        assert!(d.contains("c") && !d.contains("a"));
        assert_eq!(d.take_due(25, false, |_| false), Vec::<String>::new());
    }

    #[test]
    fn held_sessions_stay_and_all_takes_the_rest() {
        let mut d = DueSet::default();
        d.mark("a", 10);
        d.mark("b", 10);
        d.mark("c", 99);
        assert_eq!(d.take_due(50, false, |s| s == "a"), vec!["b"]);
        assert!(d.contains("a"));
        assert_eq!(d.take_due(0, true, |_| false), vec!["a", "c"]);
        assert!(d.is_empty());
        d.mark("x", 5);
        d.clear();
        assert!(d.is_empty() && d.take_due(100, false, |_| false).is_empty());
    }
}
