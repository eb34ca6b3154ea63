//! The domain core: events, policy profiles, the per-session fold, the rules R1–R8 and
//! verdicts. PURE: no tokio, sqlx, redis, actix, ort, clock reads or randomness. Time comes
//! in as server-stamped [`Millis`] on each event; random draws come in as parameters.
//! `tests/tests/domain_purity.rs` fails the build of the test suite if that changes.

pub mod admission;
pub mod enrolment;
pub mod events;
pub mod ids;
pub mod profile;
pub mod rules;
pub mod schedule;
pub mod session;
pub mod time;
pub mod verdict;

#[cfg(test)]
mod fold_props;
#[cfg(test)]
mod golden_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use events::{ChallengeKind, Event, EventBody, Origin, TerminationReason};
pub use ids::{ClassId, CourseId, EnrolmentId, LearnerId, LessonId, PlatformId, SessionId};
pub use profile::{Profile, ProfileError, ProfileRef};
pub use session::{Applied, Record, RecordCounts, RecordList, SessionContext, SessionFold};
pub use time::Millis;
pub use verdict::{Reason, RuleId, RuleStatus, SessionVerdict};
