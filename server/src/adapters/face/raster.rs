//! Pixel sampling shared by the pipeline stages, with OpenCV `INTER_LINEAR` semantics:
//! half-pixel centres, no antialiasing, edge pixels replicated. MiniFASNet was trained on
//! crops resized this way and its scores move noticeably under any other resampling.

use image::RgbImage;

/// Bilinear sample at continuous pixel coordinates (pixel centres at integers); outside the
/// image the edge is replicated.
#[inline]
pub fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x0f = x.floor();
    let y0f = y.floor();
    let (fx, fy) = (x - x0f, y - y0f);
    let clamp = |v: i64, hi: i64| v.clamp(0, hi - 1) as u32;
    let (x0, y0) = (x0f as i64, y0f as i64);
    let (xa, xb) = (clamp(x0, w), clamp(x0 + 1, w));
    let (ya, yb) = (clamp(y0, h), clamp(y0 + 1, h));
    let p = |xx: u32, yy: u32| img.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(xa, ya), p(xb, ya), p(xa, yb), p(xb, yb));
    let mut out = [0.0; 3];
    for (i, o) in out.iter_mut().enumerate() {
        let top = f32::from(a[i]) * (1.0 - fx) + f32::from(b[i]) * fx;
        let bottom = f32::from(c[i]) * (1.0 - fx) + f32::from(d[i]) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// Resizes the region `[x0, x1) × [y0, y1)` (integer pixels) to `out_w × out_h`, like
/// `cv2.resize(img[y0:y1, x0:x1], (out_w, out_h))` with `INTER_LINEAR`. Returns RGB floats in
/// row-major order.
pub fn resize_region(
    img: &RgbImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    out_w: usize,
    out_h: usize,
) -> Vec<[f32; 3]> {
    let (rw, rh) = ((x1 - x0).max(1), (y1 - y0).max(1));
    let (sx, sy) = (rw as f32 / out_w as f32, rh as f32 / out_h as f32);
    let mut out = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        // Half-pixel centres, clamped to the region (OpenCV clamps to the source edge).
        let y = ((oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (rh - 1) as f32);
        for ox in 0..out_w {
            let x = ((ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (rw - 1) as f32);
            out.push(sample_in(img, x0, y0, rw, rh, x, y));
        }
    }
    out
}

/// [`resize_region`] written straight into three planes (`planes[c][y * stride + x]`, the
/// channels in the order of `order`: indices into RGB), with the same arithmetic (so the same
/// floats) but no intermediate buffer, the column weights computed once per column, and an
/// exact copy when the size does not change.
pub fn resize_region_into(
    img: &RgbImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    out_w: usize,
    out_h: usize,
    planes: [&mut [f32]; 3],
    stride: usize,
    order: [usize; 3],
) {
    let [p0, p1, p2] = planes;
    let (rw, rh) = ((x1 - x0).max(1), (y1 - y0).max(1));
    let raw = img.as_raw();
    let row_len = img.width() as usize * 3;
    let at = |xx: u32, yy: u32| ((y0 + yy) as usize) * row_len + ((x0 + xx) as usize) * 3;
    if rw as usize == out_w && rh as usize == out_h {
        for oy in 0..out_h {
            let src = &raw[at(0, oy as u32)..at(0, oy as u32) + out_w * 3];
            let o = oy * stride;
            for (ox, px) in src.chunks_exact(3).enumerate() {
                p0[o + ox] = f32::from(px[order[0]]);
                p1[o + ox] = f32::from(px[order[1]]);
                p2[o + ox] = f32::from(px[order[2]]);
            }
        }
        return;
    }
    let (sx, sy) = (rw as f32 / out_w as f32, rh as f32 / out_h as f32);
    let cols: Vec<(u32, u32, f32)> = (0..out_w)
        .map(|ox| {
            let x = ((ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (rw - 1) as f32);
            let xi = x.floor() as u32;
            (xi, (xi + 1).min(rw - 1), x - xi as f32)
        })
        .collect();
    for oy in 0..out_h {
        let y = ((oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (rh - 1) as f32);
        let yi = y.floor() as u32;
        let (yb, fy) = ((yi + 1).min(rh - 1), y - yi as f32);
        let o = oy * stride;
        for (ox, &(xi, xb, fx)) in cols.iter().enumerate() {
            let (a, b, c, d) = (at(xi, yi), at(xb, yi), at(xi, yb), at(xb, yb));
            let mut v = [0.0f32; 3];
            for (i, out) in v.iter_mut().enumerate() {
                let top = f32::from(raw[a + i]) * (1.0 - fx) + f32::from(raw[b + i]) * fx;
                let bottom = f32::from(raw[c + i]) * (1.0 - fx) + f32::from(raw[d + i]) * fx;
                *out = top * (1.0 - fy) + bottom * fy;
            }
            p0[o + ox] = v[order[0]];
            p1[o + ox] = v[order[1]];
            p2[o + ox] = v[order[2]];
        }
    }
}

/// Splits a `(1, 3, H, W)` tensor's data into its three planes.
pub fn planes(data: &mut [f32]) -> [&mut [f32]; 3] {
    let n = data.len() / 3;
    let (a, rest) = data.split_at_mut(n);
    let (b, c) = rest.split_at_mut(n);
    [a, b, c]
}

/// Bilinear sample inside a sub-region, replicating the region's own edge.
fn sample_in(img: &RgbImage, x0: u32, y0: u32, rw: u32, rh: u32, x: f32, y: f32) -> [f32; 3] {
    let (xi, yi) = (x.floor() as u32, y.floor() as u32);
    let (fx, fy) = (x - xi as f32, y - yi as f32);
    let xb = (xi + 1).min(rw - 1);
    let yb = (yi + 1).min(rh - 1);
    let p = |xx: u32, yy: u32| img.get_pixel(x0 + xx, y0 + yy).0;
    let (a, b, c, d) = (p(xi, yi), p(xb, yi), p(xi, yb), p(xb, yb));
    let mut out = [0.0; 3];
    for (i, o) in out.iter_mut().enumerate() {
        let top = f32::from(a[i]) * (1.0 - fx) + f32::from(b[i]) * fx;
        let bottom = f32::from(c[i]) * (1.0 - fx) + f32::from(d[i]) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_resize_keeps_pixels_and_halving_averages_pairs() {
        let mut img = RgbImage::new(4, 2);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x * 10 + y * 100) as u8, 0, 0]);
        }
        let same = resize_region(&img, (0, 0, 4, 2), 4, 2);
        assert_eq!(same[1][0], 10.0);
        assert_eq!(same[5][0], 110.0);
        // 4 → 2 columns: output centre 0 maps to source x = 0.5 (mean of 0 and 10).
        let half = resize_region(&img, (0, 0, 4, 2), 2, 2);
        assert_eq!(half[0][0], 5.0);
        assert_eq!(sample(&img, -3.0, 0.0)[0], 0.0);
    }

    #[test]
    fn planar_resize_gives_the_same_floats() {
        let img = RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (y * 11) as u8, (x * y) as u8])
        });
        for (region, w, h) in [
            ((0, 0, 37, 23), 37, 23),
            ((3, 2, 30, 20), 80, 80),
            ((0, 0, 37, 23), 9, 8),
        ] {
            let want = resize_region(&img, region, w, h);
            let mut data = vec![0.0f32; 3 * w * h];
            resize_region_into(&img, region, w, h, planes(&mut data), w, [2, 1, 0]);
            for (i, [r, g, b]) in want.iter().enumerate() {
                assert_eq!(
                    (data[i], data[w * h + i], data[2 * w * h + i]),
                    (*b, *g, *r)
                );
            }
        }
    }
}
