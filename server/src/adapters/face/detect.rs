//! Face detection with YuNet (`yunet_s_dynamic.onnx`): the input is the image scaled so its
//! longer side is at most [`DETECT_SIDE`], padded to multiples of 32, as planar BGR 0..255;
//! the outputs are decoded anchor-free per stride (8, 16, 32) with score = sqrt(cls × obj),
//! then non-maximum suppression. Invariant: boxes and landmarks come back in the coordinates
//! of the original (decoded, upright) image.

use image::RgbImage;
use ndarray::Array4;

/// The longer side the detector sees; larger photos are scaled down first.
pub const DETECT_SIDE: u32 = 640;
/// Minimum detector score for a face (OpenCV's YuNet demo uses 0.9; faces in the shared photos
/// score 0.93–0.95, a background false positive in `biden_biden2.jpg` scores below 0.8).
pub const SCORE_THRESHOLD: f32 = 0.8;
/// IoU above which the weaker of two boxes is suppressed.
pub const NMS_IOU: f32 = 0.3;
const STRIDES: [usize; 3] = [8, 16, 32];

/// One detected face: box `(x, y, w, h)` and five landmarks in YuNet's order (right eye, left
/// eye, nose tip, right mouth corner, left mouth corner — "right" being the subject's).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
}

/// The prepared network input and the factor that maps detector pixels back to the image.
#[derive(Debug)]
pub struct DetectorInput {
    pub tensor: Array4<f32>,
    pub scale: f32,
}

/// Scales (INTER_LINEAR) and pads the image into YuNet's input tensor.
pub fn prepare(img: &RgbImage) -> DetectorInput {
    let (w, h) = img.dimensions();
    let scale = (DETECT_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale).round() as usize).max(1),
        ((h as f32 * scale).round() as usize).max(1),
    );
    let (pw, ph) = (sw.div_ceil(32) * 32, sh.div_ceil(32) * 32);
    let mut t = Array4::<f32>::zeros((1, 3, ph, pw));
    if let Some(data) = t.as_slice_mut() {
        // Planar BGR, written in place (a 640×480 frame is copied, not resampled).
        let planes = super::raster::planes(data);
        super::raster::resize_region_into(img, (0, 0, w, h), sw, sh, planes, pw, [2, 1, 0]);
    }
    DetectorInput {
        tensor: t,
        scale: sw as f32 / w as f32,
    }
}

/// The raw outputs of one stride: `cls`, `obj` (K), `bbox` (K×4), `kps` (K×10).
#[derive(Debug)]
pub struct StrideOutput<'a> {
    pub stride: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// Decodes the three strides' outputs into faces (after NMS), strongest first.
pub fn decode(outputs: &[StrideOutput<'_>], input_w: usize, scale: f32) -> Vec<Detection> {
    let mut found = Vec::new();
    for o in outputs {
        debug_assert!(STRIDES.contains(&o.stride));
        let cols = input_w / o.stride;
        let s = o.stride as f32;
        for (i, (&c, &ob)) in o.cls.iter().zip(o.obj).enumerate() {
            let score = (c.clamp(0.0, 1.0) * ob.clamp(0.0, 1.0)).sqrt();
            if score < SCORE_THRESHOLD || cols == 0 {
                continue;
            }
            let (r, col) = ((i / cols) as f32, (i % cols) as f32);
            let b = &o.bbox[i * 4..i * 4 + 4];
            let (cx, cy) = ((col + b[0]) * s, (r + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let k = &o.kps[i * 10..i * 10 + 10];
            let mut landmarks = [[0.0; 2]; 5];
            for (n, l) in landmarks.iter_mut().enumerate() {
                *l = [(k[2 * n] + col) * s / scale, (k[2 * n + 1] + r) * s / scale];
            }
            found.push(Detection {
                score,
                bbox: [
                    (cx - w / 2.0) / scale,
                    (cy - h / 2.0) / scale,
                    w / scale,
                    h / scale,
                ],
                landmarks,
            });
        }
    }
    nms(found)
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

fn nms(mut faces: Vec<Detection>) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(&k.bbox, &f.bbox) <= NMS_IOU) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_anchor_and_suppresses_its_twin() {
        // A 64×64 input: stride 32 has 2×2 anchors; anchor 3 is (row 1, col 1).
        let cls = [0.0, 0.0, 0.0, 0.81];
        let obj = [0.0, 0.0, 0.0, 1.0];
        let mut bbox = [0.0; 16];
        bbox[12..16].copy_from_slice(&[0.0, 0.0, 0.0, 0.0]);
        let kps = [0.0; 40];
        let out = [StrideOutput {
            stride: 32,
            cls: &cls,
            obj: &obj,
            bbox: &bbox,
            kps: &kps,
        }];
        let faces = decode(&out, 64, 0.5);
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        // Centre (32, 32), size 32 in detector pixels → ×2 in the image.
        assert_eq!(f.bbox, [32.0, 32.0, 64.0, 64.0]);
        let twin = Detection {
            score: 0.7,
            ..f.clone()
        };
        assert_eq!(nms(vec![twin, f.clone()]).len(), 1);
    }
}
