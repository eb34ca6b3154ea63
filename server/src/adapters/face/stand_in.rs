//! The face-check stand-in used until the ONNX pipeline lands (and by tests that drive the
//! verdict logic): it decodes nothing but the image header, and decides from the mean
//! brightness of the bytes after the header. A dark image (mean < 32) is "no face" and fails;
//! anything else passes with fixed scores. It is labelled in every result it produces, so no
//! evidence made with it can be mistaken for a model's.

use crate::ports::{FaceCheck, FaceError, FaceOutcome};

#[derive(Debug, Default)]
pub struct StandInFace;

/// Recognises the image formats the service accepts, by magic bytes.
pub fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

impl FaceCheck for StandInFace {
    fn check(&self, image: &[u8]) -> Result<FaceOutcome, FaceError> {
        if image_kind(image).is_none() {
            return Err(FaceError::BadImage("not a JPEG, PNG or WebP image".into()));
        }
        let body = image.get(64..).unwrap_or_default();
        if body.is_empty() {
            return Err(FaceError::BadImage("image is truncated".into()));
        }
        let mean = body.iter().map(|&b| u64::from(b)).sum::<u64>() / body.len() as u64;
        let passed = mean >= 32;
        Ok(FaceOutcome {
            passed,
            match_permille: Some(if passed { 900 } else { 0 }),
            liveness_permille: Some(if passed { 950 } else { 0 }),
            detail: "stand-in (no model): mean byte brightness".into(),
        })
    }

    fn name(&self) -> &str {
        "stand-in"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_is_driven_by_brightness_and_refuses_non_images() {
        let mut bright = b"\x89PNG\r\n\x1a\n".to_vec();
        bright.extend(std::iter::repeat_n(200u8, 200));
        let mut dark = b"\x89PNG\r\n\x1a\n".to_vec();
        dark.extend(std::iter::repeat_n(0u8, 200));
        assert!(StandInFace.check(&bright).expect("bright").passed);
        assert!(!StandInFace.check(&dark).expect("dark").passed);
        assert!(matches!(
            StandInFace.check(b"GIF89a...."),
            Err(FaceError::BadImage(_))
        ));
    }
}
