//! The active liveness challenge's analysis: the server asks for a random sequence of head
//! poses (turn left, turn right, face the camera) and the learner sends one frame per step.
//! Each frame is analysed by the same pipeline as any face check; this module decides from
//! the analyses: every step's frame shows exactly one live face, in the requested pose, of
//! the enrolled learner, and all frames show the same person. Invariant: the pose comes from
//! YuNet's five landmarks only (see [`yaw`]), with the thresholds stated here and in
//! `models/yunet.md`; the decision lists every frame's scores for the evidence.

use crate::ports::FaceAnalysis;

use super::{LIVENESS_MIN, MATCH_DISTANCE, distance, permille, similarity_permille};

/// A frame counts as turned when |yaw| is at least this (inter-eye distances).
pub const YAW_TURNED: f32 = 0.15;
/// A frame counts as facing the camera when |yaw| is at most this.
pub const YAW_FRONT: f32 = 0.08;
/// Most steps one challenge may ask for.
pub const MAX_STEPS: usize = 6;

/// One requested head pose. Left and right are the learner's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pose {
    Left,
    Right,
    Front,
}

impl Pose {
    pub const ALL: [Pose; 3] = [Pose::Left, Pose::Right, Pose::Front];

    pub fn code(self) -> &'static str {
        match self {
            Pose::Left => "turn_left",
            Pose::Right => "turn_right",
            Pose::Front => "face_camera",
        }
    }

    pub fn parse(s: &str) -> Option<Pose> {
        Pose::ALL.into_iter().find(|p| p.code() == s)
    }

    /// The instruction shown to the learner.
    pub fn prompt(self) -> &'static str {
        match self {
            Pose::Left => "请向左转头 / Turn your head to your left",
            Pose::Right => "请向右转头 / Turn your head to your right",
            Pose::Front => "请正对摄像头 / Look straight at the camera",
        }
    }

    /// The pose a yaw proxy shows, or none between the thresholds.
    pub fn of_yaw(yaw: f32) -> Option<Pose> {
        if yaw >= YAW_TURNED {
            Some(Pose::Left)
        } else if yaw <= -YAW_TURNED {
            Some(Pose::Right)
        } else if yaw.abs() <= YAW_FRONT {
            Some(Pose::Front)
        } else {
            None
        }
    }
}

/// Steps as stored in the challenge's `expected` field: codes joined by commas.
pub fn encode_steps(steps: &[Pose]) -> String {
    steps.iter().map(|p| p.code()).collect::<Vec<_>>().join(",")
}

/// Parses a stored step list; `None` when any code is unknown.
pub fn decode_steps(s: &str) -> Option<Vec<Pose>> {
    s.split(',').map(Pose::parse).collect()
}

/// A random step sequence of length `n` (2..=[`MAX_STEPS`]) with no pose twice in a row, so
/// it always holds a turn. `draw` yields random numbers (the caller's RNG).
pub fn random_steps(n: usize, draw: &mut dyn FnMut() -> u64) -> Vec<Pose> {
    let n = n.clamp(2, MAX_STEPS);
    let mut steps: Vec<Pose> = Vec::with_capacity(n);
    while steps.len() < n {
        let p = Pose::ALL[(draw() % 3) as usize];
        if steps.last() != Some(&p) {
            steps.push(p);
        }
    }
    steps
}

/// The head-turn proxy from YuNet landmarks (right eye, left eye, nose, ...): the nose tip's
/// offset from the eye midpoint projected on the eye axis, over the squared inter-eye distance.
/// About 0 facing the camera; it grows with the turn (roughly sin(yaw)·depth of the nose).
pub fn yaw(landmarks: &[[f32; 2]; 5]) -> f32 {
    let [re, le, nose, ..] = *landmarks;
    let axis = [le[0] - re[0], le[1] - re[1]];
    let mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    let d2 = axis[0] * axis[0] + axis[1] * axis[1];
    if d2 <= f32::EPSILON {
        return 0.0;
    }
    // The eye axis points from the subject's right eye (image left) to the left eye (image
    // right): a positive value is a nose towards the image's right, the learner's left.
    ((nose[0] - mid[0]) * axis[0] + (nose[1] - mid[1]) * axis[1]) / d2
}

/// One frame's scores, for the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameResult {
    pub step: Pose,
    pub faces: u32,
    pub yaw: Option<f32>,
    pub distance: Option<f32>,
    pub liveness: Option<f32>,
    /// Why this frame fails, if it does.
    pub failure: Option<String>,
}

/// The result of an active challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDecision {
    pub passed: bool,
    /// The weakest frame's match, per-mille.
    pub match_permille: Option<i32>,
    /// The weakest frame's P(real), per-mille.
    pub liveness_permille: Option<i32>,
    pub frames: Vec<FrameResult>,
    /// Summary, every frame's scores and the model versions.
    pub detail: String,
}

/// Decides an active challenge: one frame per step, in order.
pub fn decide(frames: &[FaceAnalysis], steps: &[Pose], enrolled: &[f32]) -> ActiveDecision {
    let mut results = Vec::with_capacity(frames.len());
    let first = frames.first().and_then(|f| f.embedding.as_deref());
    for (a, &step) in frames.iter().zip(steps) {
        let d = a.embedding.as_deref().map(|e| distance(e, enrolled));
        let to_first = match (a.embedding.as_deref(), first) {
            (Some(e), Some(f)) => Some(distance(e, f)),
            _ => None,
        };
        let pose = a.yaw.and_then(Pose::of_yaw);
        let failure = if a.faces == 0 {
            Some("no face".to_owned())
        } else if a.faces > 1 {
            Some(format!("{} faces", a.faces))
        } else if a.liveness.is_none_or(|p| p < LIVENESS_MIN) {
            Some("liveness below threshold".to_owned())
        } else if d.is_none_or(|d| d >= MATCH_DISTANCE) {
            Some("not the enrolled person".to_owned())
        } else if to_first.is_none_or(|d| d >= MATCH_DISTANCE) {
            Some("not the same person as the first frame".to_owned())
        } else if pose != Some(step) {
            Some(format!(
                "pose {} where {} was asked",
                pose.map_or("between poses", Pose::code),
                step.code()
            ))
        } else {
            None
        };
        results.push(FrameResult {
            step,
            faces: a.faces,
            yaw: a.yaw,
            distance: d,
            liveness: a.liveness,
            failure,
        });
    }
    let count_ok = frames.len() == steps.len();
    let passed = count_ok && results.iter().all(|r| r.failure.is_none());
    let worst_d = results
        .iter()
        .map(|r| r.distance.unwrap_or(f32::INFINITY))
        .fold(None, |m: Option<f32>, d| Some(m.map_or(d, |m| m.max(d))));
    let worst_live = results
        .iter()
        .map(|r| r.liveness.unwrap_or(0.0))
        .fold(None, |m: Option<f32>, p| Some(m.map_or(p, |m| m.min(p))));
    let why = if !count_ok {
        format!("{} frames for {} steps", frames.len(), steps.len())
    } else if let Some((i, r)) = results
        .iter()
        .enumerate()
        .find(|(_, r)| r.failure.is_some())
    {
        format!(
            "frame {} ({}): {}",
            i + 1,
            r.step.code(),
            r.failure.as_deref().unwrap_or("")
        )
    } else {
        "passed".to_owned()
    };
    let per_frame = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "#{} {}: faces {} yaw {} distance {} P(real) {}",
                i + 1,
                r.step.code(),
                r.faces,
                r.yaw.map_or("-".into(), |y| format!("{y:.2}")),
                r.distance.map_or("-".into(), |d| format!("{d:.3}")),
                r.liveness.map_or("-".into(), |p| format!("{p:.3}")),
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let models = frames.first().map_or("-", |f| f.models.as_str());
    ActiveDecision {
        passed,
        match_permille: worst_d.map(similarity_permille),
        liveness_permille: worst_live.map(permille),
        frames: results,
        detail: format!(
            "active liveness [{}]: {why}; {per_frame}; turned from |yaw| {YAW_TURNED}, facing up to {YAW_FRONT}; same below {MATCH_DISTANCE}; live from {LIVENESS_MIN}; models {models}",
            encode_steps(steps)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(yaw: f32, emb0: f32, live: f32) -> FaceAnalysis {
        let mut e = vec![0.0; 128];
        e[0] = emb0;
        FaceAnalysis {
            faces: 1,
            face_box: Some([0.0, 0.0, 120.0, 120.0]),
            detector_score: Some(0.9),
            embedding: Some(e),
            liveness: Some(live),
            sharpness: Some(100.0),
            yaw: Some(yaw),
            dhash: 0,
            models: "test".into(),
        }
    }

    #[test]
    fn steps_round_trip_and_never_repeat() {
        let mut x = 7u64;
        let mut draw = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x >> 33
        };
        for n in 2..=MAX_STEPS {
            let s = random_steps(n, &mut draw);
            assert_eq!(s.len(), n);
            assert!(s.windows(2).all(|w| w[0] != w[1]), "{s:?}");
            assert_eq!(decode_steps(&encode_steps(&s)), Some(s));
        }
        assert_eq!(decode_steps("turn_left,jump"), None);
    }

    #[test]
    fn yaw_sign_follows_the_nose() {
        let front = [
            [40.0, 50.0],
            [80.0, 50.0],
            [60.0, 70.0],
            [45.0, 90.0],
            [75.0, 90.0],
        ];
        assert!(yaw(&front).abs() < 1e-6);
        let mut left = front;
        left[2][0] = 72.0; // nose towards the image's right: the learner's left
        assert!((yaw(&left) - 0.3).abs() < 1e-6);
        assert_eq!(Pose::of_yaw(yaw(&left)), Some(Pose::Left));
        assert_eq!(Pose::of_yaw(-0.3), Some(Pose::Right));
        assert_eq!(Pose::of_yaw(0.12), None);
    }

    #[test]
    fn every_frame_must_match_pose_person_and_liveness() {
        let me = vec![0.0; 128];
        let steps = [Pose::Left, Pose::Front, Pose::Right];
        let good = [
            frame(0.3, 0.1, 0.9),
            frame(0.0, 0.1, 0.9),
            frame(-0.3, 0.2, 0.9),
        ];
        let d = decide(&good, &steps, &me);
        assert!(d.passed, "{}", d.detail);
        assert_eq!(d.match_permille, Some(800));
        // Wrong order.
        let swapped = [good[2].clone(), good[1].clone(), good[0].clone()];
        assert!(!decide(&swapped, &steps, &me).passed);
        // A frame of someone else (far from the template).
        let mut other = good.clone();
        other[1] = frame(0.0, 0.9, 0.9);
        let d = decide(&other, &steps, &me);
        assert!(!d.passed);
        assert!(d.detail.contains("frame 2"), "{}", d.detail);
        // A spoof frame.
        let mut spoof = good.clone();
        spoof[2] = frame(-0.3, 0.1, 0.2);
        assert!(!decide(&spoof, &steps, &me).passed);
        // Too few frames.
        assert!(!decide(&good[..2], &steps, &me).passed);
        // Two people each close to the template but not to each other.
        let split = [
            frame(0.3, 0.55, 0.9),
            frame(0.0, -0.55, 0.9),
            frame(-0.3, 0.55, 0.9),
        ];
        let d = decide(&split, &steps, &me);
        assert!(!d.passed);
        assert!(d.detail.contains("first frame"), "{}", d.detail);
    }
}
