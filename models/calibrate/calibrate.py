"""Calibrates the YuNet-landmark alignment template against dlib's 150x150 face chip, and
measures what the substitution costs. Reference tool, not run by CI (it needs dlib, which the
service does not use): `pip install dlib-bin numpy opencv-python-headless onnxruntime`, then
`python models/calibrate/calibrate.py ../shared/faces ../shared/models`.

For every photo: dlib's HOG detector + 5-point shape predictor give dlib's chip transform
(get_face_chip_details(shape, 150, 0.25)); YuNet's five landmarks are mapped through that
transform into chip coordinates; their mean over the photos is the template. Then each photo
is embedded twice (dlib chip, YuNet-aligned chip) and the distances are compared.
"""
import glob, itertools, os, sys
import cv2, dlib, numpy as np, onnxruntime as ort

faces_dir, models_dir = sys.argv[1], sys.argv[2]
PAD, SIZE = 0.25, 150
# dlib's 5-point template (dlib/image_transforms/interpolation.h, get_face_chip_details).
DLIB5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                  [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                  [0.4901123135679, 0.6277975316475]])
DLIB5 = (PAD + DLIB5) / (2 * PAD + 1) * SIZE

def umeyama(src, dst):
    """Least-squares similarity transform src -> dst, as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / (s ** 2).sum() * len(src)
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])

yunet = ort.InferenceSession(os.path.join(models_dir, "yunet_s_dynamic.onnx"))
embed = ort.InferenceSession(os.path.join(models_dir, "dlib_resnet_v1.onnx"))
detector = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(os.path.join(models_dir, "dlib_shape_predictor_5.dat"))

def load(path):
    from PIL import Image, ImageOps  # PIL applies EXIF orientation
    return np.array(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))

def yunet_best(rgb):
    h, w = rgb.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    img = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR) if scale < 1 else rgb
    ph, pw = -(-img.shape[0] // 32) * 32, -(-img.shape[1] // 32) * 32
    pad = np.zeros((ph, pw, 3), np.float32)
    pad[: img.shape[0], : img.shape[1]] = img[:, :, ::-1]
    out = dict(zip([o.name for o in yunet.get_outputs()],
                   yunet.run(None, {"input": pad.transpose(2, 0, 1)[None]})))
    best = None
    for st in (8, 16, 32):
        cols = pw // st
        cls, obj = out[f"cls_{st}"][0, :, 0], out[f"obj_{st}"][0, :, 0]
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        i = int(score.argmax())
        if best is None or score[i] > best[0]:
            r, c = divmod(i, cols)
            k = out[f"kps_{st}"][0, i].reshape(5, 2)
            lm = np.stack([(k[:, 0] + c) * st, (k[:, 1] + r) * st], 1) / scale
            best = (float(score[i]), lm)
    return best

def emb(chip_rgb):
    return embed.run(None, {"input": chip_rgb.astype(np.float32).transpose(2, 0, 1)[None]})[0][0]

rows, names = [], []
for path in sorted(glob.glob(os.path.join(faces_dir, "*"))):
    if path.endswith((".md", "SHA256SUMS")):
        continue
    rgb = load(path)
    dets = detector(rgb, 1)
    if len(dets) != 1:
        print(f"{os.path.basename(path)}: dlib found {len(dets)} faces, skipped")
        continue
    shape = sp(rgb, dets[0])
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)
    m_dlib = umeyama(pts, DLIB5)
    chip_ref = np.array(dlib.get_face_chip(rgb, shape, size=SIZE, padding=PAD))
    chip_mine = cv2.warpAffine(rgb, m_dlib, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    score, lm = yunet_best(rgb)
    lm_chip = (m_dlib[:, :2] @ lm.T).T + m_dlib[:, 2]
    rows.append((path, rgb, shape, lm, lm_chip, chip_ref))
    names.append(os.path.basename(path))
    print(f"{os.path.basename(path)}: yunet {score:.2f}; |dlib chip - own warp| mean {np.abs(chip_ref.astype(float) - chip_mine).mean():.2f}")

template = np.mean([r[4] for r in rows], 0)
print("template (150x150 chip, YuNet order: right eye, left eye, nose tip, right mouth, left mouth):")
print(np.array2string(template, precision=4, separator=", "))
print("per-photo landmark spread (px, std):", np.array2string(np.std([r[4] for r in rows], 0), precision=2))

e_ref, e_yu = [], []
for path, rgb, shape, lm, lm_chip, chip_ref in rows:
    chip_yu = cv2.warpAffine(rgb, umeyama(lm, template), (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    e_ref.append(emb(chip_ref)); e_yu.append(emb(chip_yu))
print("distance dlib chip vs YuNet chip, same photo: ",
      np.array2string(np.array([np.linalg.norm(a - b) for a, b in zip(e_ref, e_yu)]), precision=3))
def person(n):
    return n.split(".")[0].rstrip("0123456789").replace("_img", "").replace("-", "_").replace("_biden", "").replace("_john", "")
for label, es in (("dlib chips", e_ref), ("YuNet chips", e_yu)):
    same, diff = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(es), 2):
        if names[i].startswith("sfas") or names[j].startswith("sfas"):
            continue
        (same if person(names[i]) == person(names[j]) else diff).append(np.linalg.norm(a - b))
    print(f"{label}: same-person max {max(same):.3f} ({len(same)} pairs), different-person min {min(diff):.3f} ({len(diff)} pairs)")
