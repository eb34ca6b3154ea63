//! The face-check stand-in for tests and `proctor simulate`, which drive the verdict logic with
//! synthetic images (`--face stand-in`): it decodes nothing but the image header, and decides
//! from the mean brightness of the bytes after the header. A dark image (mean < 32) has no
//! face; anything else has one live face whose embedding is all zeros (so it matches a
//! stand-in enrolment). Its head-turn proxy (`yaw`) is the brightness difference of the
//! image's right and left halves over 64 when the image decodes (so a browser test can "turn"
//! by brightening one side of the frame), else none. It is labelled in every result it produces, so no evidence made with it
//! can be mistaken for a model's.

use crate::ports::{FaceAnalysis, FaceCheck, FaceError};

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

/// (mean of the right half − mean of the left half) / 64 of the decoded image's luma.
fn half_brightness_yaw(image: &[u8]) -> Option<f32> {
    let img = image::load_from_memory(image).ok()?.into_luma8();
    let (w, h) = img.dimensions();
    if w < 2 || h == 0 {
        return None;
    }
    let (mut left, mut right) = (0u64, 0u64);
    for (x, _, p) in img.enumerate_pixels() {
        if x < w / 2 {
            left += u64::from(p.0[0]);
        } else if x >= w - w / 2 {
            right += u64::from(p.0[0]);
        }
    }
    let n = f64::from(w / 2) * f64::from(h);
    Some(((right as f64 - left as f64) / n / 64.0) as f32)
}

impl FaceCheck for StandInFace {
    fn analyse(&self, image: &[u8]) -> Result<FaceAnalysis, FaceError> {
        if image_kind(image).is_none() {
            return Err(FaceError::BadImage("not a JPEG, PNG or WebP image".into()));
        }
        let body = image.get(64..).unwrap_or_default();
        if body.is_empty() {
            return Err(FaceError::BadImage("image is truncated".into()));
        }
        let mean = body.iter().map(|&b| u64::from(b)).sum::<u64>() / body.len() as u64;
        let face = mean >= 32;
        // A hash of the bytes stands in for the perceptual hash.
        let dhash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Ok(FaceAnalysis {
            faces: u32::from(face),
            face_box: face.then_some([0.0, 0.0, 200.0, 200.0]),
            detector_score: face.then_some(1.0),
            embedding: face.then(|| vec![0.0; 128]),
            liveness: face.then_some(0.95),
            sharpness: face.then_some(100.0),
            yaw: if face {
                half_brightness_yaw(image)
            } else {
                None
            },
            dhash,
            models: "stand-in (no model): mean byte brightness".into(),
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
        assert_eq!(StandInFace.analyse(&bright).expect("bright").faces, 1);
        assert_eq!(StandInFace.analyse(&dark).expect("dark").faces, 0);
        assert!(matches!(
            StandInFace.analyse(b"GIF89a...."),
            Err(FaceError::BadImage(_))
        ));
    }
}
