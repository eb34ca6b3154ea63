//! Ports: the traits at the real seams between the application and the outside world (clock,
//! face check, evidence store). The store and the bus are concrete types with one variant per
//! backend (see `adapters`), because their async APIs are wide and not object-safe.

use crate::domain::Millis;

/// The server clock: the only clock (DESIGN.md). `scale` is 1 in production; demos and tests
/// may run the server clock faster than real time, and say so in every place it matters.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Millis;
    fn scale(&self) -> f64;
}

/// What a face check concluded about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceOutcome {
    pub passed: bool,
    /// Similarity to the enrolled template, per-mille.
    pub match_permille: Option<i32>,
    /// Passive liveness P(real), per-mille.
    pub liveness_permille: Option<i32>,
    /// Which models (or which stand-in) produced this, for the evidence.
    pub detail: String,
}

/// Why a face check could not run (distinct from a check that ran and failed).
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("the image could not be decoded: {0}")]
    BadImage(String),
    #[error("face checks are unavailable: {0}")]
    Unavailable(String),
}

/// Face analysis: liveness plus match. Blocking; callers run it on the blocking pool.
pub trait FaceCheck: Send + Sync + std::fmt::Debug {
    fn check(&self, image: &[u8]) -> Result<FaceOutcome, FaceError>;
    /// A short name for `/readyz` and the evidence.
    fn name(&self) -> &str;
}

/// Where evidence files (snapshots, exports) go. Blocking; callers use the blocking pool.
pub trait Evidence: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key` (a relative path); returns a locator for the store.
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<String>;
    fn get(&self, locator: &str) -> std::io::Result<Vec<u8>>;
}
