//! Decoding an uploaded image into an upright RGB raster. Invariant: no pixel buffer is
//! allocated before the header's dimensions were checked against [`MAX_SIDE`], so a
//! decompression bomb is refused after reading a few bytes; the EXIF orientation is applied,
//! because YuNet misses faces lying on their side.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::ports::FaceError;

/// The largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// The smallest accepted width or height: below it no face is large enough to analyse.
pub const MIN_SIDE: u32 = 32;

/// Decodes JPEG, PNG or WebP bytes, checking dimensions first and applying EXIF orientation.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, FaceError> {
    let format = image::guess_format(bytes)
        .map_err(|_| FaceError::BadImage("is not a JPEG, PNG or WebP image".into()))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(FaceError::BadImage(format!(
            "{format:?} images are not accepted (JPEG, PNG or WebP only)"
        )));
    }
    // The JPEG decoder fills a truncated scan with grey instead of failing; a complete JPEG
    // ends with the EOI marker (allowing a little trailing padding).
    if format == ImageFormat::Jpeg {
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err(FaceError::BadImage(
                "the JPEG is truncated (no end-of-image marker)".into(),
            ));
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4 + (1 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| FaceError::BadImage(format!("the image header is unreadable: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(FaceError::BadImage(format!(
            "the image is {w}×{h}; at most {MAX_SIDE}×{MAX_SIDE} is accepted"
        )));
    }
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(FaceError::BadImage(format!(
            "the image is {w}×{h}; at least {MIN_SIDE}×{MIN_SIDE} is needed"
        )));
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| FaceError::BadImage(format!("the image is corrupt or truncated: {e}")))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::from_pixel(w, h, image::Rgb([120, 90, 60]))
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode");
        out
    }

    #[test]
    fn decodes_a_small_png() {
        let img = decode(&png(64, 48)).expect("decodes");
        assert_eq!(img.dimensions(), (64, 48));
    }

    #[test]
    fn refuses_non_images_truncated_and_tiny_images() {
        assert!(matches!(
            decode(b"hello world"),
            Err(FaceError::BadImage(_))
        ));
        let full = png(64, 48);
        assert!(matches!(
            decode(&full[..full.len() / 2]),
            Err(FaceError::BadImage(_))
        ));
        assert!(matches!(decode(&png(8, 8)), Err(FaceError::BadImage(_))));
    }

    #[test]
    fn refuses_a_decompression_bomb_from_its_header() {
        // A PNG header claiming 100000×100000 pixels, with no data behind it.
        let mut bomb = png(64, 48);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode(&bomb).expect_err("refused");
        assert!(
            err.to_string().contains("4096") || err.to_string().contains("header"),
            "{err}"
        );
    }
}
