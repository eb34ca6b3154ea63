#!/usr/bin/env bash
# Places the face models in models/bin/ and the ONNX Runtime library in models/lib/.
# Idempotent: files already present with the right sha256 are left alone (a run that has
# nothing to do takes well under a second). Sources, in order:
#   1. ../shared/models beside the repository (PROCTOR_SHARED_MODELS overrides the path);
#   2. each model's public source (YuNet), or a mirror of the converted ONNX files given as
#      PROCTOR_MODELS_MIRROR (MiniFASNet and the dlib embedder are ONNX conversions: their
#      public sources publish PyTorch / dlib weights, see the model cards);
#   3. the ONNX Runtime library comes out of the PyPI `onnxruntime` wheel (pip download).
# Every file is checked against models/SHA256SUMS (or the pinned sums below); a mismatch fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
shared="${PROCTOR_SHARED_MODELS:-$repo/../shared/models}"
bin="$here/bin"
lib="$here/lib"
mkdir -p "$bin" "$lib"

ORT_VERSION="1.31.1"
ORT_LIB="libonnxruntime.so.$ORT_VERSION"
ORT_LIB_SHA256="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
ORT_WHEEL_SHA256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"

declare -A PUBLIC=(
  [yunet_s_dynamic.onnx]="https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/master/onnx/yunet_s_dynamic.onnx"
)

sha_ok() { # file expected-sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch() { # url dest
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
  else wget -q -O "$2" "$1"; fi
}

while read -r sum name; do
  [ -n "$name" ] || continue
  dest="$bin/$name"
  sha_ok "$dest" "$sum" && continue
  tmp="$dest.part"
  rm -f "$tmp"
  if [ -f "$shared/$name" ]; then
    cp "$shared/$name" "$tmp"
  elif [ -n "${PUBLIC[$name]:-}" ]; then
    echo "models/setup.sh: downloading $name from its public source" >&2
    fetch "${PUBLIC[$name]}" "$tmp"
  elif [ -n "${PROCTOR_MODELS_MIRROR:-}" ]; then
    echo "models/setup.sh: downloading $name from $PROCTOR_MODELS_MIRROR" >&2
    fetch "$PROCTOR_MODELS_MIRROR/$name" "$tmp"
  else
    echo "models/setup.sh: $name is not in $shared and has no downloadable ONNX source;" >&2
    echo "  put ../shared/models beside the repository or set PROCTOR_MODELS_MIRROR (see models/README.md)" >&2
    exit 1
  fi
  if ! sha_ok "$tmp" "$sum"; then
    echo "models/setup.sh: $name has the wrong sha256 (expected $sum); refusing it" >&2
    rm -f "$tmp"
    exit 1
  fi
  mv "$tmp" "$dest"
done < "$here/SHA256SUMS"

if ! sha_ok "$lib/$ORT_LIB" "$ORT_LIB_SHA256"; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  wheel_src="${PROCTOR_ORT_WHEEL:-}"
  if [ -z "$wheel_src" ]; then
    echo "models/setup.sh: fetching the onnxruntime $ORT_VERSION wheel from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 \
      -d "$work" "onnxruntime==$ORT_VERSION"
    wheel_src="$(ls "$work"/onnxruntime-"$ORT_VERSION"-*.whl)"
  fi
  sha_ok "$wheel_src" "$ORT_WHEEL_SHA256" || {
    echo "models/setup.sh: the onnxruntime wheel has the wrong sha256; refusing it" >&2
    exit 1
  }
  python3 - "$wheel_src" "$work" "onnxruntime/capi/$ORT_LIB" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract(sys.argv[3], sys.argv[2])
PY
  sha_ok "$work/onnxruntime/capi/$ORT_LIB" "$ORT_LIB_SHA256" || {
    echo "models/setup.sh: $ORT_LIB has the wrong sha256; refusing it" >&2
    exit 1
  }
  mv "$work/onnxruntime/capi/$ORT_LIB" "$lib/$ORT_LIB"
fi
ln -sf "$ORT_LIB" "$lib/libonnxruntime.so"
