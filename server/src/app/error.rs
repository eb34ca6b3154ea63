//! Application errors, by domain (user / external / internal). `api/error.rs` holds the one
//! table that turns each into an HTTP status and a problem+json body.

use crate::adapters::store::StoreError;

/// What went wrong, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is well-formed but its values are not acceptable.
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
    /// A rule of the policy profile refuses the request (R2, R5, R7, R11, R12, R13, R14…).
    #[error("{rule}: {detail}")]
    Rule { rule: &'static str, detail: String },
    /// No such resource visible to the caller (also used for other platforms' resources, so
    /// that ids do not leak across platforms).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Authenticated, but not allowed to touch this resource.
    #[error("{0}")]
    Forbidden(String),
    /// The resource exists and the request conflicts with its state.
    #[error("{0}")]
    Conflict(String),
    /// A dependency (store, bus, face models) is unavailable; retry later.
    #[error("{what} unavailable")]
    Unavailable {
        what: &'static str,
        retry_after_s: u32,
    },
    /// A bug or corrupt data. Logged in full, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(err) => {
                tracing::warn!(error = %err, "The store is unavailable.");
                AppError::Unavailable {
                    what: "store",
                    retry_after_s: 5,
                }
            }
            StoreError::Conflict(what) => AppError::Conflict(what),
            StoreError::Corrupt(what) => AppError::Internal(what),
        }
    }
}

impl From<crate::adapters::bus::BusError> for AppError {
    fn from(_: crate::adapters::bus::BusError) -> Self {
        AppError::Unavailable {
            what: "event bus",
            retry_after_s: 5,
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
