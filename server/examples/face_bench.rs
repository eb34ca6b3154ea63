//! Face pipeline speed: the whole analysis (decode → detect → align → embed → anti-spoof ×2 →
//! hash) per 640×480 JPEG against the sum of the four bare model inferences measured in the
//! same run (the floor). One ONNX Runtime thread per model. Run:
//! `models/setup.sh && cargo run --release --example face_bench -- ../shared/faces/obama.jpg`

use std::time::{Duration, Instant};

use proctor::adapters::face::{OnnxFace, onnx};
use proctor::ports::FaceCheck;

fn main() -> anyhow::Result<()> {
    let src = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/faces/obama.jpg".into());
    let img = image::open(&src)?.resize_exact(640, 480, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )?;
    let (models, lib) = onnx::default_paths(std::path::Path::new("."));
    let f = OnnxFace::load(&models, &lib);
    f.state().map_err(anyhow::Error::msg)?;
    for _ in 0..5 {
        f.analyse(&jpeg)?;
        f.bare_inferences(&jpeg)?;
    }
    let n = 50;
    let (mut whole, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let a = f.analyse(&jpeg)?;
        whole.push(t.elapsed());
        anyhow::ensure!(a.faces == 1, "expected one face in the bench image");
        floor.push(f.bare_inferences(&jpeg)?);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (w, fl) = (median(&mut whole), median(&mut floor));
    println!(
        "640x480 JPEG, {n} runs, medians: whole analysis {w:.1} ms ({:.0} images/s per core); bare inferences (floor) {fl:.1} ms; overhead {:.1} ms",
        1000.0 / w,
        w - fl
    );
    Ok(())
}
