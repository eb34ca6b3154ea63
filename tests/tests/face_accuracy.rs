//! The face models against the shared photos (`../shared/faces`), with the thresholds of the
//! model cards: same-person and different-person embedding distances, passive liveness on
//! real and spoof samples, face counts, enrolment refusals. It FAILS (never skips) when the
//! models or the runtime are missing: `scripts/test` runs `models/setup.sh` first.

use std::path::{Path, PathBuf};

use proctor::adapters::face::{self, OnnxFace};
use proctor::ports::{FaceAnalysis, FaceCheck};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn engine() -> OnnxFace {
    let (models, lib) = face::onnx::default_paths(&root());
    let f = OnnxFace::load(&models, &lib);
    if let Err(why) = f.state() {
        panic!("the face models must be installed for this test (run models/setup.sh): {why}");
    }
    f
}

fn photo(name: &str) -> Vec<u8> {
    let p = root().join("../shared/faces").join(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared/faces must be beside the repository)",
            p.display()
        )
    })
}

fn analyse(f: &OnnxFace, name: &str) -> FaceAnalysis {
    f.analyse(&photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

const PEOPLE: [(&str, &[&str]); 6] = [
    ("obama", &["obama.jpg", "obama2.jpg", "obama3.jpg"]),
    ("biden", &["biden.jpg", "biden_biden2.jpg"]),
    (
        "kit",
        &["kit_harington_john1.jpeg", "kit_harington_john2.jpeg"],
    ),
    ("rose", &["rose_leslie_img1.jpg", "rose_leslie_img2.jpg"]),
    ("alex", &["alex_lacamoire_img1.jpg", "alex-lacamoire.png"]),
    ("astronaut", &["astronaut.png"]),
];

#[test]
fn same_and_different_people_are_separated_by_the_match_threshold() {
    let f = engine();
    let mut all = Vec::new();
    for (person, files) in PEOPLE {
        for file in files {
            let a = analyse(&f, file);
            assert_eq!(a.faces, 1, "{file}: expected one face, found {}", a.faces);
            all.push((person, *file, a.embedding.clone().expect("embedding")));
        }
    }
    let (mut same, mut diff) = (Vec::new(), Vec::new());
    for (i, (p1, f1, e1)) in all.iter().enumerate() {
        for (p2, f2, e2) in &all[i + 1..] {
            let d = face::distance(e1, e2);
            if p1 == p2 {
                same.push((d, *f1, *f2));
            } else {
                diff.push((d, *f1, *f2));
            }
        }
    }
    let worst_same = same
        .iter()
        .copied()
        .fold((0.0f32, "", ""), |a, b| if b.0 > a.0 { b } else { a });
    let worst_diff = diff
        .iter()
        .copied()
        .fold((f32::MAX, "", ""), |a, b| if b.0 < a.0 { b } else { a });
    println!(
        "same-person pairs {}: max distance {:.3} ({} / {}); different-person pairs {}: min distance {:.3} ({} / {})",
        same.len(),
        worst_same.0,
        worst_same.1,
        worst_same.2,
        diff.len(),
        worst_diff.0,
        worst_diff.1,
        worst_diff.2
    );
    assert!(
        worst_same.0 < face::MATCH_DISTANCE,
        "a same-person pair is past the threshold: {worst_same:?}"
    );
    assert!(
        worst_diff.0 >= face::MATCH_DISTANCE,
        "a different-person pair matches: {worst_diff:?}"
    );
    // Margins recorded in models/dlib_resnet_v1.md; a model or alignment change that eats
    // most of them should be looked at, not waved through.
    assert!(
        worst_same.0 < 0.55,
        "same-person max distance {:.3} moved past 0.55",
        worst_same.0
    );
    assert!(
        worst_diff.0 > 0.68,
        "different-person min distance {:.3} moved below 0.68",
        worst_diff.0
    );
}

#[test]
fn passive_liveness_tells_the_real_sample_from_the_spoofs() {
    let f = engine();
    let real = analyse(&f, "sfas_image_T1.jpg");
    let spoof1 = analyse(&f, "sfas_image_F1.jpg");
    let spoof2 = analyse(&f, "sfas_image_F2.jpg");
    let p = |a: &FaceAnalysis| a.liveness.expect("liveness");
    println!(
        "P(real): T1 {:.3}, F1 {:.3}, F2 {:.3}; obama {:.3}, biden {:.3}, rose {:.3}",
        p(&real),
        p(&spoof1),
        p(&spoof2),
        p(&analyse(&f, "obama.jpg")),
        p(&analyse(&f, "biden.jpg")),
        p(&analyse(&f, "rose_leslie_img1.jpg"))
    );
    assert!(
        p(&real) >= face::LIVENESS_MIN,
        "the real sample scores {:.3}",
        p(&real)
    );
    assert!(
        p(&spoof1) < face::LIVENESS_MIN,
        "spoof F1 scores {:.3}",
        p(&spoof1)
    );
    assert!(
        p(&spoof2) < face::LIVENESS_MIN,
        "spoof F2 scores {:.3}",
        p(&spoof2)
    );
    // The EXIF orientation (6) of the Silent-Face samples must be applied, or no face is seen.
    assert_eq!(real.faces, 1);
}

#[test]
fn pictures_without_faces_and_bad_input_are_told_apart() {
    let f = engine();
    for file in ["chelsea.png", "coffee.png"] {
        let a = analyse(&f, file);
        assert_eq!(a.faces, 0, "{file}");
        assert_eq!(
            face::enrolment_embedding(&a),
            Err(face::EnrolRefusal::NoFace)
        );
    }
    assert!(f.analyse(b"not an image at all").is_err());
    let jpg = photo("obama.jpg");
    assert!(
        f.analyse(&jpg[..jpg.len() / 3]).is_err(),
        "a truncated JPEG must be refused"
    );
    // Enrolment quality: a blurred copy is refused, the original accepted.
    let img = image::load_from_memory(&jpg).expect("decodes");
    let blurred = img.blur(6.0);
    let mut out = Vec::new();
    blurred
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    let a = f.analyse(&out).expect("analyses");
    for file in [
        "obama.jpg",
        "biden.jpg",
        "rose_leslie_img1.jpg",
        "sfas_image_T1.jpg",
        "kit_harington_john2.jpeg",
    ] {
        let x = analyse(&f, file);
        println!("{file}: sharpness {:?}, box {:?}", x.sharpness, x.face_box);
    }
    println!(
        "blurred obama: faces {}, sharpness {:?}",
        a.faces, a.sharpness
    );
    assert!(face::enrolment_embedding(&analyse(&f, "obama.jpg")).is_ok());
    assert!(matches!(
        face::enrolment_embedding(&a),
        Err(face::EnrolRefusal::TooBlurred | face::EnrolRefusal::NoFace)
    ));
}
