//! R3 连续5分钟内无弹窗管控: credited time between two confirmed pop-ups never exceeds
//! `popup.max_gap_ms`; a missed pop-up voids the provisional credit since the last one.
//! Invariant: judging an answer depends only on the challenge, the answer and server time.

use crate::domain::profile::Profile;
use crate::domain::time::Millis;

/// How a pop-up answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopupAnswer {
    /// Right code, before the deadline.
    Confirmed,
    /// Wrong code before the deadline: the pop-up stays pending (the learner may retry).
    Wrong,
    /// At or after the deadline: the pop-up is missed.
    Late,
}

pub fn judge(deadline: Millis, expected: Option<&str>, at: Millis, answer: &str) -> PopupAnswer {
    if at >= deadline {
        PopupAnswer::Late
    } else if expected == Some(answer) {
        PopupAnswer::Confirmed
    } else {
        PopupAnswer::Wrong
    }
}

/// How much more credit may accrue before the next confirmation is required.
pub fn gap_room(profile: &Profile, credit_since_popup_ms: i64) -> i64 {
    (profile.popup.max_gap_ms - credit_since_popup_ms).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::{DEFAULT_PROFILE, Profile};

    #[test]
    fn answers_are_judged_on_server_time() {
        assert_eq!(
            judge(Millis(100), Some("7"), Millis(99), "7"),
            PopupAnswer::Confirmed
        );
        assert_eq!(
            judge(Millis(100), Some("7"), Millis(99), "3"),
            PopupAnswer::Wrong
        );
        assert_eq!(
            judge(Millis(100), Some("7"), Millis(100), "7"),
            PopupAnswer::Late
        );
        assert_eq!(judge(Millis(100), None, Millis(1), ""), PopupAnswer::Wrong);
        let p = Profile::latest(DEFAULT_PROFILE).expect("profile");
        assert_eq!(gap_room(&p, 299_000), 1_000);
        assert_eq!(gap_room(&p, 301_000), 0);
    }
}
