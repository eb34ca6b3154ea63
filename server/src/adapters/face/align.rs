//! Alignment for the dlib embedder: a least-squares similarity transform (Umeyama) from
//! YuNet's five landmarks to [`TEMPLATE`], then a 150×150 bilinear warp. The template was
//! calibrated (`models/calibrate/calibrate.py`) as the mean position of YuNet's landmarks
//! inside dlib's own chips (`get_face_chip_details(shape, 150, 0.25)`) on the shared photos,
//! so the crops match what the embedder was trained on; the measured loss is in
//! `models/dlib_resnet_v1.md`. Invariant: the chip is RGB 0..255, row-major, 150×150.

use image::RgbImage;

/// The chip side the embedder expects.
pub const CHIP: usize = 150;

/// YuNet landmark positions in dlib's 150×150 chip (right eye, left eye, nose tip, right
/// mouth corner, left mouth corner), calibrated against dlib's 5-point shape predictor.
pub const TEMPLATE: [[f32; 2]; 5] = [
    [46.7314, 45.6249],
    [102.2846, 44.6173],
    [74.1257, 78.0372],
    [50.5353, 103.1754],
    [98.8351, 102.7939],
];

/// A 2×3 affine matrix `[a, b, tx; c, d, ty]` mapping source to destination.
pub type Affine = [[f32; 3]; 2];

/// The least-squares similarity transform (rotation, uniform scale, translation) taking `src`
/// to `dst` (Umeyama 1991, in closed form for 2-D).
pub fn similarity(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine {
    let n = src.len() as f32;
    let mean = |p: &[[f32; 2]; 5]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
        [sx / n, sy / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    // For a similarity in 2-D: [a -b; b a] minimises sum |A s + t - d|².
    let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    let den = den.max(f32::EPSILON);
    let (a, b) = (num_a / den, num_b / den);
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    [[a, -b, tx], [b, a, ty]]
}

/// Warps the face into the embedder's chip: each chip pixel samples the image through the
/// inverse of `m` (bilinear, edge replicated).
pub fn warp_chip(img: &RgbImage, m: &Affine) -> Vec<[f32; 3]> {
    let (a, b, c, d) = (m[0][0], m[0][1], m[1][0], m[1][1]);
    let det = (a * d - b * c).max(f32::EPSILON);
    let inv = [[d / det, -b / det], [-c / det, a / det]];
    let mut out = Vec::with_capacity(CHIP * CHIP);
    for y in 0..CHIP {
        for x in 0..CHIP {
            let (u, v) = (x as f32 - m[0][2], y as f32 - m[1][2]);
            let sx = inv[0][0] * u + inv[0][1] * v;
            let sy = inv[1][0] * u + inv[1][1] * v;
            out.push(super::raster::sample(img, sx, sy));
        }
    }
    out
}

/// Sharpness of a chip: the variance of the 4-neighbour Laplacian of its grey levels. Blurred
/// photos score low; the enrolment threshold is in the model card.
pub fn sharpness(chip: &[[f32; 3]]) -> f32 {
    let grey: Vec<f32> = chip
        .iter()
        .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
        .collect();
    let mut vals = Vec::with_capacity((CHIP - 2) * (CHIP - 2));
    for y in 1..CHIP - 1 {
        for x in 1..CHIP - 1 {
            let i = y * CHIP + x;
            vals.push(grey[i - 1] + grey[i + 1] + grey[i - CHIP] + grey[i + CHIP] - 4.0 * grey[i]);
        }
    }
    let n = vals.len() as f32;
    let mean = vals.iter().sum::<f32>() / n;
    vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        // dst = 2 · R(90°) · src + (10, 20)
        let src = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.2]];
        let dst = src.map(|[x, y]| [-2.0 * y + 10.0, 2.0 * x + 20.0]);
        let m = similarity(&src, &dst);
        let want = [[0.0, -2.0, 10.0], [2.0, 0.0, 20.0]];
        for r in 0..2 {
            for c in 0..3 {
                assert!((m[r][c] - want[r][c]).abs() < 1e-4, "{m:?}");
            }
        }
    }

    #[test]
    fn a_flat_chip_has_no_sharpness_and_a_checkerboard_has_much() {
        let flat = vec![[100.0; 3]; CHIP * CHIP];
        assert!(sharpness(&flat) < 1e-6);
        let check: Vec<[f32; 3]> = (0..CHIP * CHIP)
            .map(|i| {
                if (i / CHIP + i % CHIP).is_multiple_of(2) {
                    [0.0; 3]
                } else {
                    [255.0; 3]
                }
            })
            .collect();
        assert!(sharpness(&check) > 1000.0);
    }
}
