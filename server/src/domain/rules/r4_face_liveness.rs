//! R4 无法进行人脸活体比对: no credit before a passed face check, none after a failed one
//! until a later pass. Invariant: the face state changes only on `FaceChecked` or an expired
//! face re-check, never on client claims.

use crate::domain::verdict::Reason;

/// Where the session stands on face verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceState {
    /// No check passed yet.
    Required,
    /// The latest check passed.
    Passed,
    /// The latest check failed (or a re-check expired).
    Failed,
}

/// The R4 gate.
pub fn gate(required_before_credit: bool, state: FaceState) -> Option<Reason> {
    match state {
        FaceState::Passed => None,
        FaceState::Required if required_before_credit => Some(Reason::FaceCheckRequired),
        FaceState::Required => None,
        FaceState::Failed => Some(Reason::FaceCheckFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_blocks_even_when_not_required_up_front() {
        assert_eq!(
            gate(true, FaceState::Required),
            Some(Reason::FaceCheckRequired)
        );
        assert_eq!(gate(false, FaceState::Required), None);
        assert_eq!(
            gate(false, FaceState::Failed),
            Some(Reason::FaceCheckFailed)
        );
        assert_eq!(gate(true, FaceState::Passed), None);
    }
}
