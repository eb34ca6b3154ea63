//! The ONNX face pipeline: decode → YuNet → count → align → dlib ResNet embedding → two
//! MiniFASNet passive anti-spoofing models, on ONNX Runtime loaded at run time (`ort`
//! `load-dynamic`). Invariants: the runtime and the models are loaded once per process (ONNX
//! Runtime allows one environment per process); a missing library or model is a state
//! (`Unavailable`, reported by `/readyz`), never a panic; each analysis names the model
//! versions (file sha256 prefixes) that produced it. Blocking: callers use the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use super::{align, decode, detect, hash, spoof};
use crate::ports::{FaceAnalysis, FaceCheck, FaceError};

/// The model files, in `models/bin/` (see `models/SHA256SUMS`).
pub const YUNET: &str = "yunet_s_dynamic.onnx";
pub const FAS_27: &str = "minifasnet_v2_2.7_80x80.onnx";
pub const FAS_40: &str = "minifasnet_v1se_4.0_80x80.onnx";
pub const EMBEDDER: &str = "dlib_resnet_v1.onnx";

#[derive(Debug)]
struct Models {
    yunet: Mutex<Session>,
    fas27: Mutex<Session>,
    fas40: Mutex<Session>,
    embed: Mutex<Session>,
    versions: String,
    _env: ort::environment::Environment,
}

static ENGINE: OnceLock<Result<Arc<Models>, String>> = OnceLock::new();

/// The face pipeline over ONNX Runtime, or the reason it is unavailable.
#[derive(Debug, Clone)]
pub struct OnnxFace {
    models: Result<Arc<Models>, String>,
}

/// Where `models/setup.sh` puts things, relative to a directory (the repository root).
pub fn default_paths(root: &Path) -> (PathBuf, PathBuf) {
    (
        root.join("models/bin"),
        root.join("models/lib/libonnxruntime.so"),
    )
}

impl OnnxFace {
    /// Loads the runtime library and the four models (once per process; later calls share
    /// the first result). Never panics: failures become the `Unavailable` state.
    pub fn load(models_dir: &Path, runtime_lib: &Path) -> OnnxFace {
        let models = ENGINE
            .get_or_init(|| load_models(models_dir, runtime_lib).map(Arc::new))
            .clone();
        if let Err(why) = &models {
            tracing::warn!(reason = %why, "Face models are unavailable; face checks will answer 503.");
        }
        OnnxFace { models }
    }

    fn models(&self) -> Result<&Models, FaceError> {
        self.models
            .as_deref()
            .map_err(|why| FaceError::Unavailable(why.clone()))
    }

    /// Runs only the four bare inferences on prepared inputs (the benchmark's floor).
    pub fn bare_inferences(&self, image: &[u8]) -> Result<std::time::Duration, FaceError> {
        let m = self.models()?;
        let img = decode::decode(image)?;
        let det_in = detect::prepare(&img);
        let chip = Array4::<f32>::zeros((1, 3, align::CHIP, align::CHIP));
        let fas = Array4::<f32>::zeros((1, 3, spoof::SIDE, spoof::SIDE));
        let start = std::time::Instant::now();
        run1(&m.yunet, &det_in.tensor, "cls_8")?;
        run1(&m.embed, &chip, "embedding")?;
        run1(&m.fas27, &fas, "logits")?;
        run1(&m.fas40, &fas, "logits")?;
        Ok(start.elapsed())
    }
}

fn file_version(path: &Path) -> Result<String, String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let sum = hex::encode(sha2::Sha256::digest(&bytes));
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    Ok(format!("{name}@{}", &sum[..8]))
}

fn load_models(dir: &Path, lib: &Path) -> Result<Models, String> {
    if !lib.exists() {
        return Err(format!(
            "the ONNX Runtime library {} is missing (run models/setup.sh)",
            lib.display()
        ));
    }
    for f in [YUNET, FAS_27, FAS_40, EMBEDDER] {
        if !dir.join(f).exists() {
            return Err(format!(
                "model {f} is missing from {} (run models/setup.sh)",
                dir.display()
            ));
        }
    }
    let env = ort::init_from(lib)
        .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?
        .with_name("proctor-face")
        .build()
        .map_err(|e| format!("cannot start ONNX Runtime: {e}"))?;
    let open = |f: &str| -> Result<Mutex<Session>, String> {
        let session = Session::builder(&env)
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(dir.join(f)))
            .map_err(|e| format!("cannot load model {f}: {e}"))?;
        Ok(Mutex::new(session))
    };
    let mut versions = Vec::new();
    for f in [YUNET, EMBEDDER, FAS_27, FAS_40] {
        versions.push(file_version(&dir.join(f))?);
    }
    versions.push(format!("onnxruntime {}", ort_version(lib)));
    Ok(Models {
        yunet: open(YUNET)?,
        fas27: open(FAS_27)?,
        fas40: open(FAS_40)?,
        embed: open(EMBEDDER)?,
        versions: versions.join(" "),
        _env: env,
    })
}

fn ort_version(lib: &Path) -> String {
    std::fs::canonicalize(lib)
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .and_then(|n| n.strip_prefix("libonnxruntime.so.").map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn inference_error(e: impl std::fmt::Display) -> FaceError {
    FaceError::Unavailable(format!("inference failed: {e}"))
}

/// Runs a one-input model and returns the named output, flattened.
fn run1(
    session: &Mutex<Session>,
    input: &Array4<f32>,
    output: &str,
) -> Result<Vec<f32>, FaceError> {
    let mut s = session
        .lock()
        .map_err(|_| FaceError::Unavailable("a model session was poisoned".into()))?;
    let t = TensorRef::from_array_view(input.view()).map_err(inference_error)?;
    let out = s.run(ort::inputs!["input" => t]).map_err(inference_error)?;
    let v = out
        .get(output)
        .ok_or_else(|| inference_error(format!("no output {output}")))?
        .try_extract_tensor::<f32>()
        .map_err(inference_error)?;
    Ok(v.1.to_vec())
}

fn detect_faces(m: &Models, img: &image::RgbImage) -> Result<Vec<detect::Detection>, FaceError> {
    let input = detect::prepare(img);
    let mut s = m
        .yunet
        .lock()
        .map_err(|_| FaceError::Unavailable("a model session was poisoned".into()))?;
    let t = TensorRef::from_array_view(input.tensor.view()).map_err(inference_error)?;
    let out = s.run(ort::inputs!["input" => t]).map_err(inference_error)?;
    let get = |name: String| -> Result<&[f32], FaceError> {
        out.get(&name)
            .ok_or_else(|| inference_error(format!("no output {name}")))?
            .try_extract_tensor::<f32>()
            .map(|(_, d)| d)
            .map_err(inference_error)
    };
    let mut strides = Vec::with_capacity(3);
    for st in [8usize, 16, 32] {
        strides.push(detect::StrideOutput {
            stride: st,
            cls: get(format!("cls_{st}"))?,
            obj: get(format!("obj_{st}"))?,
            bbox: get(format!("bbox_{st}"))?,
            kps: get(format!("kps_{st}"))?,
        });
    }
    Ok(detect::decode(
        &strides,
        input.tensor.shape()[3],
        input.scale,
    ))
}

fn chip_tensor(chip: &[[f32; 3]]) -> Array4<f32> {
    let mut t = Array4::<f32>::zeros((1, 3, align::CHIP, align::CHIP));
    if let Some(data) = t.as_slice_mut() {
        let [r_pl, g_pl, b_pl] = super::raster::planes(data);
        for (i, [r, g, b]) in chip.iter().copied().enumerate() {
            r_pl[i] = r;
            g_pl[i] = g;
            b_pl[i] = b;
        }
    }
    t
}

impl FaceCheck for OnnxFace {
    fn analyse(&self, image: &[u8]) -> Result<FaceAnalysis, FaceError> {
        let m = self.models()?;
        let img = decode::decode(image)?;
        let dhash = hash::dhash(&img);
        let metrics = crate::metrics::metrics();
        let faces = metrics.infer("yunet", || detect_faces(m, &img))?;
        let mut analysis = FaceAnalysis {
            faces: u32::try_from(faces.len()).unwrap_or(u32::MAX),
            face_box: None,
            detector_score: None,
            embedding: None,
            liveness: None,
            sharpness: None,
            yaw: None,
            dhash,
            models: m.versions.clone(),
        };
        // The largest face is the learner's; the others are only counted.
        let Some(face) = faces
            .iter()
            .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
        else {
            return Ok(analysis);
        };
        let chip = align::warp_chip(&img, &align::similarity(&face.landmarks, &align::TEMPLATE));
        analysis.sharpness = Some(align::sharpness(&chip));
        let chip = chip_tensor(&chip);
        analysis.embedding =
            Some(metrics.infer("dlib_resnet", || run1(&m.embed, &chip, "embedding"))?);
        let input = spoof::input(&img, &face.bbox, 2.7);
        let p27 =
            spoof::p_real(&metrics.infer("minifasnet_2_7", || run1(&m.fas27, &input, "logits"))?);
        let input = spoof::input(&img, &face.bbox, 4.0);
        let p40 =
            spoof::p_real(&metrics.infer("minifasnet_4_0", || run1(&m.fas40, &input, "logits"))?);
        analysis.liveness = Some((p27 + p40) / 2.0);
        analysis.yaw = Some(super::yaw(&face.landmarks));
        analysis.face_box = Some(face.bbox);
        analysis.detector_score = Some(face.score);
        Ok(analysis)
    }

    fn name(&self) -> &str {
        "onnx: yunet + dlib-resnet + minifasnet×2"
    }

    fn state(&self) -> Result<(), String> {
        self.models.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}
