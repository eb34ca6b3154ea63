//! A worker's live sessions and which of them are due a verdict. Each session id is held
//! once, in its fold's context: the index holds slot numbers and hashes the id it finds
//! there, and the due order is a min-heap of `(due time, slot)`. Invariants: a slot is in
//! the index exactly while it holds a session; a session is due exactly while its `due` is
//! not `NOT_DUE`, and then the heap holds `(due, slot)`. The heap may also hold stale
//! entries (a session marked earlier since, let go, or its slot reused): an entry counts
//! only while it matches its slot's session, so a freed slot is never due and a reused one
//! starts clean. Stale entries leave the heap when their time comes. Public so that the
//! `fold_memory` bench measures the table the worker keeps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::domain::schedule::ChallengePlan;
use crate::domain::{Millis, RecordCounts, SessionFold};

/// `Live::due` of a session whose stored verdict is not behind its fold.
const NOT_DUE: i64 = i64::MAX;

/// Per-session worker state. Not evidence: everything that decides credit is in the fold,
/// which is rebuilt from the log when missing.
#[derive(Debug)]
pub struct Live {
    pub(super) fold: SessionFold,
    pub(super) plan: ChallengePlan,
    pub(super) last_client_at: Millis,
    pub(super) pushed: (i64, i64, i64, bool),
    /// Findings already pushed as warnings, per rule (`RuleId::ALL` order; absolute counts).
    pub(super) findings_seen: [u32; 8],
    /// Which fold this is: a re-fold starts a new one, and a stored verdict releases records
    /// only from the fold that handed them over.
    pub(super) epoch: u32,
    /// The closed records already handed to the writer (their release waits for the store).
    pub(super) sent: RecordCounts,
    /// The platform's name (one copy per worker): the `platform` label of
    /// `proctor_violations_total`.
    pub(super) platform: Arc<str>,
    /// When the gateway accepted the oldest event not yet covered by a stored verdict
    /// (wall-clock µs; 0: none). For `proctor_event_latency_seconds{stage="verdict"}`.
    pub(super) uncovered_since_us: i64,
    /// When this session's last verdict was handed to the writer (wall-clock µs; 0: never).
    pub(super) last_verdict_us: i64,
    /// When its next verdict is due (wall-clock µs), or `NOT_DUE`. Kept by the table.
    due: i64,
}

impl Live {
    /// A session as loaded: nothing pushed, handed over or due yet.
    pub fn new(fold: SessionFold, plan: ChallengePlan, platform: Arc<str>, epoch: u32) -> Live {
        let v = fold.verdict();
        Live {
            last_client_at: fold.last_event_at(),
            pushed: (
                v.credited_ms,
                v.provisional_ms,
                v.lesson_coverage_ms,
                v.lesson_complete,
            ),
            findings_seen: fold.closed().findings,
            fold,
            plan,
            epoch,
            sent: RecordCounts::default(),
            platform,
            uncovered_since_us: 0,
            last_verdict_us: 0,
            due: NOT_DUE,
        }
    }

    pub(super) fn session_id(&self) -> &str {
        self.fold.context().session_id.as_str()
    }
}

/// The live sessions, by id, with their due order.
#[derive(Debug, Default)]
pub struct LiveTable {
    /// Boxed: a free slot is a null pointer, not ~700 B.
    slots: Vec<Option<Box<Live>>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// `(due, slot)`, earliest on top; 16 B an entry where an ordered set costs twice that.
    due: BinaryHeap<Reverse<(i64, u32)>>,
    /// Sessions whose `due` is set.
    due_count: usize,
}

impl LiveTable {
    fn find(&self, sid: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(sid), |&i| {
                slot(slots, i).is_some_and(|l| l.session_id() == sid)
            })
            .copied()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, sid: &str) -> bool {
        self.find(sid).is_some()
    }

    pub(super) fn get(&self, sid: &str) -> Option<&Live> {
        self.find(sid).and_then(|i| slot(&self.slots, i))
    }

    pub(super) fn get_mut(&mut self, sid: &str) -> Option<&mut Live> {
        let i = self.find(sid)?;
        self.slots.get_mut(i as usize)?.as_deref_mut()
    }

    /// Makes a session live. One already live under the same id is replaced in place (a
    /// re-fold) and keeps its due time.
    pub fn insert(&mut self, mut live: Box<Live>) {
        if let Some(i) = self.find(live.session_id())
            && let Some(Some(old)) = self.slots.get_mut(i as usize)
        {
            live.due = old.due;
            *old = live;
            return;
        }
        live.due = NOT_DUE;
        let hash = self.hasher.hash_one(live.session_id());
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = Some(live);
                }
                i
            }
            None => {
                // Slot numbers are `u32` (4 B in the index): a worker holds far fewer sessions.
                let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(live));
                i
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            hasher.hash_one(slot(slots, j).map_or("", Live::session_id))
        });
    }

    /// Lets a session go, with its due time.
    pub(super) fn remove(&mut self, sid: &str) -> Option<Box<Live>> {
        let hash = self.hasher.hash_one(sid);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash, |&i| {
                slot(slots, i).is_some_and(|l| l.session_id() == sid)
            })
            .ok()?;
        let (i, _) = entry.remove();
        let live = self.slots.get_mut(i as usize)?.take()?;
        if live.due != NOT_DUE {
            self.due_count -= 1;
        }
        self.free.push(i);
        Some(live)
    }

    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.due.clear();
        self.due_count = 0;
    }

    /// The live sessions' ids.
    pub(super) fn ids(&self) -> Vec<String> {
        self.slots
            .iter()
            .flatten()
            .map(|l| l.session_id().to_owned())
            .collect()
    }

    /// Whether any session is due a verdict, now or later.
    pub(super) fn any_due(&self) -> bool {
        self.due_count > 0
    }

    pub(super) fn is_due(&self, sid: &str) -> bool {
        self.get(sid).is_some_and(|l| l.due != NOT_DUE)
    }

    /// Marks a live session due at `due` (wall-clock µs), or keeps its earlier due time.
    pub fn mark(&mut self, sid: &str, due: i64) {
        let Some(i) = self.find(sid) else {
            return;
        };
        let Some(Some(live)) = self.slots.get_mut(i as usize) else {
            return;
        };
        if live.due <= due {
            return;
        }
        if live.due == NOT_DUE {
            self.due_count += 1;
        }
        live.due = due;
        self.due.push(Reverse((due, i)));
    }

    /// Unmarks and returns the sessions due by `now` (every one when `all`), earliest first,
    /// except those `hold` keeps back: they stay, with their due time.
    pub(super) fn take_due(
        &mut self,
        now: i64,
        all: bool,
        hold: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut taken = Vec::new();
        let mut held = Vec::new();
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if !all && at > now {
                break;
            }
            self.due.pop();
            let Some(Some(live)) = self.slots.get_mut(i as usize) else {
                continue;
            };
            if live.due != at {
                continue; // stale
            }
            if hold(live.session_id()) {
                held.push(Reverse((at, i)));
            } else {
                live.due = NOT_DUE;
                self.due_count -= 1;
                taken.push(live.session_id().to_owned());
            }
        }
        self.due.extend(held);
        taken
    }
}

fn slot(slots: &[Option<Box<Live>>], i: u32) -> Option<&Live> {
    slots.get(i as usize).and_then(|s| s.as_deref())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Live, LiveTable};
    use crate::domain::SessionFold;
    use crate::domain::schedule::ChallengePlan;
    use crate::domain::test_support::{ctx, henan};

    fn live(sid: &str) -> Box<Live> {
        let profile = Arc::new(henan());
        let fold = SessionFold::new(profile.clone(), ctx(sid, "lesson-1", 60_000));
        let plan = ChallengePlan::draw(&profile, &mut || 7);
        Box::new(Live::new(fold, plan, Arc::from("platform"), 1))
    }

    fn table(ids: &[&str]) -> LiveTable {
        let mut t = LiveTable::default();
        for id in ids {
            t.insert(live(id));
        }
        t
    }

    #[test]
    fn takes_what_is_due_earliest_first_and_keeps_the_earlier_mark() {
        let mut d = table(&["a", "b", "c"]);
        d.mark("b", 20);
        d.mark("a", 30);
        d.mark("a", 10); // earlier: moves up
        d.mark("b", 40); // later: ignored
        d.mark("c", 50);
        d.mark("gone", 5); // not live: nothing to mark
        assert_eq!(d.take_due(25, false, |_| false), vec!["a", "b"]);
        assert!(d.is_due("c") && !d.is_due("a") && !d.is_due("gone"));
        assert_eq!(d.take_due(25, false, |_| false), Vec::<String>::new());
        assert_eq!(d.len(), 3, "taking what is due keeps the sessions live");
    }

    #[test]
    fn stale_entries_never_make_a_session_due_twice() {
        let mut d = table(&["a", "b"]);
        d.mark("a", 30);
        d.mark("a", 10); // the entry at 30 is stale now
        d.mark("b", 20);
        assert_eq!(d.take_due(10, false, |_| false), vec!["a"]);
        assert!(d.any_due(), "b is still due");
        // Marked later than the stale entry: not due at the stale entry's time.
        d.mark("a", 35);
        assert_eq!(d.take_due(30, false, |_| false), vec!["b"]);
        assert_eq!(d.take_due(35, false, |_| false), vec!["a"]);
        // Marked again at a stale entry's time: taken once, not twice.
        d.mark("a", 30);
        d.mark("a", 20);
        d.take_due(20, false, |_| false);
        d.mark("a", 30);
        assert_eq!(d.take_due(40, false, |_| false), vec!["a"]);
        assert!(!d.any_due());
        assert_eq!(d.take_due(100, true, |_| false), Vec::<String>::new());
        // A let-go session's entry does not make its slot's newcomer due.
        d.mark("b", 50);
        d.remove("b");
        d.insert(live("c"));
        assert!(!d.any_due() && !d.is_due("c"));
        assert_eq!(d.take_due(100, true, |_| false), Vec::<String>::new());
    }

    #[test]
    fn held_sessions_stay_and_all_takes_the_rest() {
        let mut d = table(&["a", "b", "c", "x"]);
        d.mark("a", 10);
        d.mark("b", 10);
        d.mark("c", 99);
        assert_eq!(d.take_due(50, false, |s| s == "a"), vec!["b"]);
        assert!(d.is_due("a"));
        assert_eq!(d.take_due(0, true, |_| false), vec!["a", "c"]);
        assert!(!d.any_due());
        d.mark("x", 5);
        d.clear();
        assert!(d.is_empty() && !d.any_due() && d.take_due(100, false, |_| false).is_empty());
    }

    #[test]
    fn a_removed_session_takes_its_due_time_and_its_slot_starts_clean() {
        let mut d = table(&["a", "b"]);
        d.mark("a", 10);
        let gone = d.remove("a").map(|l| l.session_id().to_owned());
        assert_eq!(gone.as_deref(), Some("a"));
        assert!(d.remove("a").is_none() && !d.contains("a") && !d.any_due());
        // The freed slot is reused: the newcomer is not due, and both are found by id.
        d.insert(live("c"));
        assert!(d.contains("b") && d.contains("c") && !d.is_due("c"));
        assert_eq!(d.take_due(100, true, |_| false), Vec::<String>::new());
        let mut ids = d.ids();
        ids.sort();
        assert_eq!(ids, vec!["b", "c"]);
    }

    #[test]
    fn a_refold_replaces_the_session_in_place_and_keeps_its_due_time() {
        let mut d = table(&["a", "b"]);
        d.mark("a", 10);
        let mut again = live("a");
        again.epoch = 2;
        d.insert(again);
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("a").map(|l| l.epoch), Some(2));
        assert_eq!(d.take_due(10, false, |_| false), vec!["a"]);
    }

    #[test]
    fn many_sessions_are_found_by_id_across_growth() {
        let ids: Vec<String> = (0..1000).map(|i| format!("session-{i}")).collect();
        let mut d = LiveTable::default();
        for id in &ids {
            d.insert(live(id));
        }
        for id in ids.iter().step_by(3) {
            assert!(d.remove(id).is_some());
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(d.contains(id), i % 3 != 0, "{id}");
            assert_eq!(
                d.get(id).map(Live::session_id),
                (i % 3 != 0).then_some(id.as_str())
            );
        }
        assert_eq!(d.len(), 666);
    }
}
