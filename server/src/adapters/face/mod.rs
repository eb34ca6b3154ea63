//! Face analysis behind the `FaceCheck` port: the ONNX pipeline (`onnx`, with its stages in
//! `decode`, `detect`, `align`, `spoof`, `hash`) and the labelled stand-in (`stand_in`) that
//! tests and `proctor simulate` drive with synthetic images. Also the decisions made from an
//! analysis — thresholds from the model cards in `models/` — and template sealing
//! (`template`). Invariant: the thresholds here are the ones the model cards state and the
//! accuracy test (`tests/tests/face_accuracy.rs`) holds the models to.

mod align;
mod decode;
mod detect;
pub mod hash;
pub mod liveness;
pub mod onnx;
mod raster;
mod spoof;
mod stand_in;
pub mod template;

pub use liveness::yaw;
pub use onnx::OnnxFace;
pub use stand_in::{StandInFace, image_kind};

use crate::ports::FaceAnalysis;

/// Same person when the Euclidean distance of two dlib embeddings is below this
/// (`models/dlib_resnet_v1.md`).
pub const MATCH_DISTANCE: f32 = 0.6;
/// Live when the mean MiniFASNet P(real) is at least this (`models/minifasnet.md`).
pub const LIVENESS_MIN: f32 = 0.5;
/// Enrolment: the face box's shorter side must be at least this many pixels.
pub const ENROL_MIN_FACE_PX: f32 = 80.0;
/// Enrolment: the aligned chip's Laplacian variance must be at least this (blur).
pub const ENROL_MIN_SHARPNESS: f32 = 20.0;

/// Euclidean distance between two embeddings (∞ when their lengths differ).
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// A distance as a per-mille similarity for the evidence: 1000 − 1000·d, floored at 0; the
/// match threshold 0.6 is 400 ‰.
pub fn similarity_permille(d: f32) -> i32 {
    if d.is_finite() {
        (1000.0 - 1000.0 * d).round().clamp(0.0, 1000.0) as i32
    } else {
        0
    }
}

/// A probability as per-mille.
pub fn permille(p: f32) -> i32 {
    (p * 1000.0).round().clamp(0.0, 1000.0) as i32
}

/// Why a photo cannot be a learner's enrolled reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolRefusal {
    NoFace,
    SeveralFaces,
    TooSmall,
    TooBlurred,
}

impl EnrolRefusal {
    pub fn code(self) -> &'static str {
        match self {
            EnrolRefusal::NoFace => "no_face",
            EnrolRefusal::SeveralFaces => "several_faces",
            EnrolRefusal::TooSmall => "face_too_small",
            EnrolRefusal::TooBlurred => "too_blurred",
        }
    }

    pub fn message(self) -> String {
        match self {
            EnrolRefusal::NoFace => "no face was found in the photo".into(),
            EnrolRefusal::SeveralFaces => {
                "the photo shows several faces; exactly one is needed".into()
            }
            EnrolRefusal::TooSmall => format!(
                "the face is too small; its box must be at least {ENROL_MIN_FACE_PX} pixels on each side"
            ),
            EnrolRefusal::TooBlurred => "the photo is too blurred".into(),
        }
    }
}

/// Checks that an analysis can serve as an enrolment reference; returns its embedding.
pub fn enrolment_embedding(a: &FaceAnalysis) -> Result<&[f32], EnrolRefusal> {
    match a.faces {
        0 => return Err(EnrolRefusal::NoFace),
        1 => {}
        _ => return Err(EnrolRefusal::SeveralFaces),
    }
    if a.face_box
        .is_some_and(|b| b[2].min(b[3]) < ENROL_MIN_FACE_PX)
    {
        return Err(EnrolRefusal::TooSmall);
    }
    if a.sharpness.is_some_and(|s| s < ENROL_MIN_SHARPNESS) {
        return Err(EnrolRefusal::TooBlurred);
    }
    a.embedding.as_deref().ok_or(EnrolRefusal::NoFace)
}

/// The verdict on one face check: exactly one face, live, and (when a template is enrolled)
/// the same person.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDecision {
    pub passed: bool,
    pub match_permille: Option<i32>,
    pub liveness_permille: Option<i32>,
    pub detail: String,
}

/// Decides a face check from an analysis and the enrolled embedding.
pub fn decide(a: &FaceAnalysis, enrolled: &[f32]) -> CheckDecision {
    let d = a.embedding.as_deref().map(|e| distance(e, enrolled));
    let live = a.liveness.is_some_and(|p| p >= LIVENESS_MIN);
    let matched = d.is_some_and(|d| d < MATCH_DISTANCE);
    let passed = a.faces == 1 && live && matched;
    let why = if a.faces == 0 {
        "no face".to_owned()
    } else if a.faces > 1 {
        format!("{} faces", a.faces)
    } else if !live {
        "liveness below threshold".to_owned()
    } else if !matched {
        "not the enrolled person".to_owned()
    } else {
        "passed".to_owned()
    };
    CheckDecision {
        passed,
        match_permille: d.map(similarity_permille),
        liveness_permille: a.liveness.map(permille),
        detail: format!(
            "{why}; faces {}; distance {} (same below {MATCH_DISTANCE}); P(real) {} (live from {LIVENESS_MIN}); models {}",
            a.faces,
            d.map_or("-".into(), |d| format!("{d:.3}")),
            a.liveness.map_or("-".into(), |p| format!("{p:.3}")),
            a.models
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(faces: u32, emb: Vec<f32>, live: f32) -> FaceAnalysis {
        FaceAnalysis {
            faces,
            face_box: Some([0.0, 0.0, 120.0, 120.0]),
            detector_score: Some(0.9),
            embedding: Some(emb),
            liveness: Some(live),
            sharpness: Some(100.0),
            yaw: Some(0.0),
            dhash: 0,
            models: "test".into(),
        }
    }

    #[test]
    fn a_check_passes_only_with_one_live_matching_face() {
        let me = vec![0.0; 128];
        let mut near = vec![0.0; 128];
        near[0] = 0.5;
        let mut far = vec![0.0; 128];
        far[0] = 0.7;
        assert!(decide(&analysis(1, near.clone(), 0.9), &me).passed);
        assert_eq!(
            decide(&analysis(1, near.clone(), 0.9), &me).match_permille,
            Some(500)
        );
        assert!(!decide(&analysis(1, far, 0.9), &me).passed);
        assert!(!decide(&analysis(1, near.clone(), 0.3), &me).passed);
        assert!(!decide(&analysis(2, near, 0.9), &me).passed);
    }

    #[test]
    fn enrolment_refuses_no_several_small_and_blurred_faces() {
        let ok = analysis(1, vec![0.0; 128], 0.9);
        assert!(enrolment_embedding(&ok).is_ok());
        let none = FaceAnalysis {
            faces: 0,
            ..ok.clone()
        };
        assert_eq!(enrolment_embedding(&none), Err(EnrolRefusal::NoFace));
        let two = FaceAnalysis {
            faces: 2,
            ..ok.clone()
        };
        assert_eq!(enrolment_embedding(&two), Err(EnrolRefusal::SeveralFaces));
        let small = FaceAnalysis {
            face_box: Some([0.0, 0.0, 40.0, 60.0]),
            ..ok.clone()
        };
        assert_eq!(enrolment_embedding(&small), Err(EnrolRefusal::TooSmall));
        let blurred = FaceAnalysis {
            sharpness: Some(1.0),
            ..ok
        };
        assert_eq!(enrolment_embedding(&blurred), Err(EnrolRefusal::TooBlurred));
    }
}
