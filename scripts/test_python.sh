#!/usr/bin/env bash
# The Python package's tests (scripts/test.sh runs this after the Rust tests): a fresh venv,
# the wheel built by maturin in the shared cargo target directory (after `cargo test --release
# --workspace` only pyo3 and the bindings crate compile, which is checked), installed, then
# pytest against it, the tutorial notebook included, whose views are then opened in Chromium
# and Firefox. ECCO_SKIP_PYTHON=1 skips it (in test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/python-test-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check maturin numpy pytest tqdm nbclient nbformat ipykernel

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
log="$wheels/build.log"
"$venv/bin/maturin" build --release --manifest-path bindings/python/Cargo.toml --interpreter "$venv/bin/python" --out "$wheels" 2>&1 | tee "$log"
# After the Rust tests (scripts/test.sh sets ECCO_WHEEL_AFTER_TESTS) the wheel build must reuse
# their build: only pyo3 and the bindings crate compile, never burn or the workspace's crates.
if [[ -n "${ECCO_WHEEL_AFTER_TESTS:-}" ]] && grep -E '^ *Compiling (burn[a-z-]*|ecco|ecco-(core|models|attrib|factor|viz|cli)) v' "$log" >&2; then
    echo "test_python.sh: the wheel build recompiled the crates above: the features bindings/python/Cargo.toml asks for no longer match the workspace's test build (see the comment there)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheels"/*.whl

# Run from outside the source tree so that `import ecco_rs` finds the installed wheel.
pages="$target/tmp/notebook-views"
rm -rf "$pages"
status=0
(cd bindings/python/tests && ECCO_BIN="$target/release/ecco" ECCO_NOTEBOOK_PAGES="$pages" "$venv/bin/python" -m pytest -q -p no:cacheprovider .) || status=$?

# The notebook's views in Chromium and Firefox (the report's browser harness): no console
# error, no request. The test binaries are the Rust tests' (already built).
if [[ $status -eq 0 && -z "${ECCO_SKIP_BROWSER_TESTS:-}" ]]; then
    ECCO_NOTEBOOK_PAGES="$pages" cargo test --release --workspace --test browser --test browser_firefox -- --ignored notebook_views_load_offline || status=$?
fi
exit "$status"
