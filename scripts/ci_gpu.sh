#!/usr/bin/env bash
# The GPU backends in CI (`.ci/run` calls it after the main tests; skip with ECCO_SKIP_GPU=1):
#
# 1. wgpu on a software Vulkan driver (Mesa's lavapipe, Debian `mesa-vulkan-drivers`,
#    installed with apt-get when no Vulkan driver is present and we are root): the GPT-2
#    parity tests on `ECCO_TEST_DEVICE=wgpu` against the transformers references and against
#    flex (within 1e-3), and `ecco generate --device wgpu` (tests/tests/gpt2_parity.rs,
#    ecco-cli/tests/cli_wgpu.rs). Built in release in CARGO_TARGET_DIR, where the main test
#    command has already built every dependency that does not depend on the backend.
# 2. `cargo check` of the cuda feature set (no CUDA toolkit or driver needed), in a target
#    directory of its own: ECCO_CUDA_TARGET_DIR, default CARGO_TARGET_DIR + `-cuda`. With
#    DOCS_RS=1: otherwise cubecl-llvm's build script downloads an LLVM bundle from GitHub,
#    which CI cannot reach (README, "GPU backends").
#
# Extra arguments go to the wgpu `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${ECCO_SKIP_GPU:-}" ]]; then
    echo "ci_gpu.sh: skipped (ECCO_SKIP_GPU is set)"
    exit 0
fi

# The Vulkan loader and at least one driver (ICD) for it.
have_vulkan() {
    { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; } \
        && { compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null || compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null; }
}
if ! have_vulkan; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "ci_gpu.sh: installing Mesa's Vulkan drivers (lavapipe) for the wgpu tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    else
        echo "ci_gpu.sh: the wgpu tests need a Vulkan driver: install one (apt-get install mesa-vulkan-drivers libvulkan1) or set ECCO_SKIP_GPU=1" >&2
        exit 1
    fi
fi

start=$(date +%s)
echo "ci_gpu.sh: GPT-2 parity and ecco generate on wgpu"
ECCO_TEST_DEVICE=wgpu cargo test --release --workspace --features ecco-tests/wgpu,ecco-cli/wgpu \
    --test gpt2_parity --test cli_wgpu "$@"
echo "ci_gpu.sh: wgpu took $(( $(date +%s) - start )) s"

start=$(date +%s)
echo "ci_gpu.sh: cargo check with the cuda feature set"
DOCS_RS=1 CARGO_TARGET_DIR="${ECCO_CUDA_TARGET_DIR:-${CARGO_TARGET_DIR:-target}-cuda}" \
    cargo check --workspace --all-targets --features ecco-tests/cuda,ecco-cli/cuda
echo "ci_gpu.sh: cuda check took $(( $(date +%s) - start )) s"
