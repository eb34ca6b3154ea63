//! Passive anti-spoofing input, as minivision's Silent-Face code prepares it: the detector box
//! scaled about its centre (×2.7 and ×4.0, capped so it fits), shifted to stay inside the
//! image, cut at integer pixels and resized to 80×80 with `INTER_LINEAR`; planar BGR 0..255.
//! Invariant: the crop never leaves the image.

use image::RgbImage;
use ndarray::Array4;

/// The MiniFASNet input side.
pub const SIDE: usize = 80;

/// The crop `(x0, y0, x1, y1)` (x1, y1 exclusive) for a box `(x, y, w, h)` and a scale,
/// following `CropImage._get_new_box`.
pub fn crop_box(img_w: u32, img_h: u32, bbox: &[f32; 4], scale: f32) -> (u32, u32, u32, u32) {
    let (sw, sh) = (img_w as f32, img_h as f32);
    let (bw, bh) = (bbox[2].max(1.0), bbox[3].max(1.0));
    let scale = scale.min((sh - 1.0) / bh).min((sw - 1.0) / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (bbox[0] + bw / 2.0, bbox[1] + bh / 2.0);
    let (mut x0, mut y0, mut x1, mut y1) =
        (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if x0 < 0.0 {
        x1 -= x0;
        x0 = 0.0;
    }
    if y0 < 0.0 {
        y1 -= y0;
        y0 = 0.0;
    }
    if x1 > sw - 1.0 {
        x0 -= x1 - sw + 1.0;
        x1 = sw - 1.0;
    }
    if y1 > sh - 1.0 {
        y0 -= y1 - sh + 1.0;
        y1 = sh - 1.0;
    }
    let clip = |v: f32, hi: f32| v.max(0.0).min(hi) as u32;
    let (x0, y0) = (clip(x0, sw - 1.0), clip(y0, sh - 1.0));
    let (x1, y1) = (clip(x1, sw - 1.0), clip(y1, sh - 1.0));
    // Python slices [y0 : y1 + 1]: the end pixel is included.
    (x0, y0, (x1 + 1).max(x0 + 1), (y1 + 1).max(y0 + 1))
}

/// The model input for one crop.
pub fn input(img: &RgbImage, bbox: &[f32; 4], scale: f32) -> Array4<f32> {
    let region = crop_box(img.width(), img.height(), bbox, scale);
    let mut t = Array4::<f32>::zeros((1, 3, SIDE, SIDE));
    if let Some(data) = t.as_slice_mut() {
        let planes = super::raster::planes(data);
        super::raster::resize_region_into(img, region, SIDE, SIDE, planes, SIDE, [2, 1, 0]);
    }
    t
}

/// Softmax probability of class 1 ("real") from three logits.
pub fn p_real(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.get(1).copied().unwrap_or(0.0) / sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_stays_inside_and_scales_about_the_centre() {
        let (x0, y0, x1, y1) = crop_box(640, 480, &[300.0, 200.0, 40.0, 40.0], 2.7);
        assert_eq!((x0, y0, x1, y1), (266, 166, 375, 275));
        // Near the corner the crop shifts inside rather than shrinking.
        let (x0, y0, x1, y1) = crop_box(640, 480, &[0.0, 0.0, 100.0, 100.0], 4.0);
        assert_eq!((x0, y0), (0, 0));
        assert!(x1 <= 640 && y1 <= 480 && x1 - x0 >= 399);
    }

    #[test]
    fn softmax_class_one() {
        assert!((p_real(&[0.0, 0.0, 0.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert!(p_real(&[-10.0, 10.0, -10.0]) > 0.999);
    }
}
