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

/// What the face pipeline saw in one image. Decisions (match, liveness, enrolment quality)
/// are made from it with the model cards' thresholds (`adapters::face`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceAnalysis {
    /// Faces the detector found.
    pub faces: u32,
    /// The largest face's box `(x, y, w, h)` in image pixels.
    pub face_box: Option<[f32; 4]>,
    pub detector_score: Option<f32>,
    /// The largest face's embedding (128-d, dlib ResNet).
    pub embedding: Option<Vec<f32>>,
    /// Passive liveness P(real) of the largest face (mean of the two MiniFASNet models).
    pub liveness: Option<f32>,
    /// Laplacian variance of the aligned face (blur).
    pub sharpness: Option<f32>,
    /// Head-turn proxy of the largest face from its landmarks: the nose tip's offset from the
    /// eye midpoint along the eye axis, in inter-eye distances. Positive when the nose is
    /// towards the image's right (the learner turned to their own left, camera unmirrored).
    pub yaw: Option<f32>,
    /// Perceptual hash (dHash) of the whole frame.
    pub dhash: u64,
    /// Which models (file sha256 prefixes) or which stand-in produced this, for the evidence.
    pub models: String,
}

/// Why a face analysis could not run (distinct from an analysis that found no face).
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("the image could not be decoded: {0}")]
    BadImage(String),
    #[error("face checks are unavailable: {0}")]
    Unavailable(String),
}

/// Face analysis: detection, embedding, passive liveness, perceptual hash. Blocking; callers
/// run it on the bounded blocking pool.
pub trait FaceCheck: Send + Sync + std::fmt::Debug {
    fn analyse(&self, image: &[u8]) -> Result<FaceAnalysis, FaceError>;
    /// A short name for `/readyz` and the evidence.
    fn name(&self) -> &str;
    /// `Ok` when analyses can run, else why not (for `/readyz`).
    fn state(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Where evidence files (snapshots, exports) go. Blocking; callers use the blocking pool.
pub trait Evidence: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key` (a relative path); returns a locator for the store.
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<String>;
    fn get(&self, locator: &str) -> std::io::Result<Vec<u8>>;
    /// Removes a stored file (retention purges, R15). A missing file is not an error.
    fn delete(&self, locator: &str) -> std::io::Result<()> {
        let _ = locator;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this evidence store cannot delete",
        ))
    }
}
