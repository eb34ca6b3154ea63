//! R2 多窗口学习: one active session per learner (a server lease), and no credit while the
//! page is hidden or unfocused. Invariant: the gate only ever withholds credit.

use crate::domain::verdict::Reason;

/// The R2 gate on the page state: hidden before unfocused (a hidden page is also unfocused).
pub fn page_gate(visible: bool, focused: bool) -> Option<Reason> {
    if !visible {
        Some(Reason::PageHidden)
    } else if !focused {
        Some(Reason::WindowUnfocused)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_wins_over_unfocused() {
        assert_eq!(page_gate(false, false), Some(Reason::PageHidden));
        assert_eq!(page_gate(true, false), Some(Reason::WindowUnfocused));
        assert_eq!(page_gate(true, true), None);
    }
}
