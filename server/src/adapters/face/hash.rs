//! Perceptual hashing (dHash, 64 bits) of whole frames, to catch the same picture uploaded
//! again — a replayed photo or a video loop — across snapshots or learners even after
//! re-encoding. Invariant: the hash depends only on the decoded, upright pixels.

use image::RgbImage;

/// Hamming distance at or below which two frames count as "the same picture" (a signal for
/// reviewers, never a verdict: a learner sitting very still in front of a static background
/// can come close).
pub const SAME_PICTURE_BITS: u32 = 4;

/// dHash: the frame reduced to 9×8 grey levels (INTER_LINEAR), one bit per horizontal
/// neighbour comparison.
pub fn dhash(img: &RgbImage) -> u64 {
    let px = super::raster::resize_region(img, (0, 0, img.width(), img.height()), 9, 8);
    let grey: Vec<f32> = px
        .iter()
        .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
        .collect();
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            h = (h << 1) | u64::from(grey[y * 9 + x] < grey[y * 9 + x + 1]);
        }
    }
    h
}

/// Bits that differ between two hashes.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gradient_sets_every_bit_and_its_mirror_none() {
        let ramp = RgbImage::from_fn(90, 80, |x, _| image::Rgb([(x * 2) as u8; 3]));
        let mirror = RgbImage::from_fn(90, 80, |x, _| image::Rgb([(255 - x * 2) as u8; 3]));
        assert_eq!(dhash(&ramp), u64::MAX);
        assert_eq!(dhash(&mirror), 0);
        assert_eq!(distance(dhash(&ramp), dhash(&mirror)), 64);
    }
}
