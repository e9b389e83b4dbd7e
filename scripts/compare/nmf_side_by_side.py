#!/usr/bin/env python3
"""scikit-learn's NMF against ours on the 157 x 18432 benchmark matrix, side by side.

    python scripts/compare/nmf_side_by_side.py [--rounds 9] [--threads 2] [--bin PATH]

Run it with the fixture environment's Python (scripts/fixtures/requirements-factor.txt).
The matrix is ``factor.py``'s ``synthetic_activations`` (which
``ecco_factor::synthetic_activations`` reproduces bit for bit), as float32, as Ecco feeds
scikit-learn. Each round times a scikit-learn fit (``NMF(n_components=10, init='random',
random_state=0, max_iter=500)``, in this process, the second of two back to back, so that
its BLAS threads are awake; Python start-up not counted), waits a second (BLAS worker
threads spin for a while after a call and would slow the other side), then times one fit
of ours (``ecco-factor``'s ``nmf_time`` example, fit only, data generation not counted,
in a fresh process), so both sides see the same moment of a noisy machine. It prints each
side's median and minimum, and scikit-learn's time over ours per round and overall.
The binary is built with ``cargo build --release -p ecco-factor --example nmf_time``
unless ``--bin`` is given.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import numpy as np  # noqa: E402
from factor import BIG, synthetic_activations  # noqa: E402
from sklearn.decomposition import NMF  # noqa: E402

# Seconds to wait between the two sides.
IDLE = 1.0
RUN = re.compile(r"run 0: ([0-9.]+) s wall, [0-9.]+ s CPU, (\d+) iterations, error ([0-9.]+)")


def build() -> Path:
    subprocess.run(["cargo", "build", "--release", "-p", "ecco-factor", "--example", "nmf_time"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    target = re.search(r'"target_directory":"([^"]+)"', meta).group(1)
    return Path(target) / "release" / "examples" / "nmf_time"


def ours(binary: Path, threads: int) -> tuple[float, int, float]:
    out = subprocess.run([str(binary), "1", str(threads)], check=True, capture_output=True, text=True).stdout
    m = RUN.search(out)
    if not m:
        sys.exit(f"unexpected output from {binary}: {out!r}")
    return float(m.group(1)), int(m.group(2)), float(m.group(3))


def sklearn_fit(x: np.ndarray) -> tuple[float, int, float]:
    """What factor.py's ``sklearn_nmf`` runs, with only the fit timed (not the error)."""
    t0 = time.perf_counter()
    model = NMF(n_components=BIG["components"], init="random", random_state=0, max_iter=500)
    w = model.fit_transform(x)
    secs = time.perf_counter() - t0
    err = float(np.linalg.norm(x.astype(np.float64) - w.astype(np.float64) @ model.components_.astype(np.float64)))
    return secs, int(model.n_iter_), err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2, help="threads of our fit (scikit-learn uses its BLAS's)")
    ap.add_argument("--bin", type=Path, help="a built nmf_time example")
    args = ap.parse_args()
    binary = args.bin or build()
    x = synthetic_activations(BIG["positions"], BIG["neurons"], BIG["rank"], BIG["seed"]).astype(np.float32)
    ours(binary, args.threads)  # warm-up (the binary into the page cache)
    sk, me, ratios = [], [], []
    for r in range(args.rounds):
        # Two fits back to back; the second, with its BLAS threads awake, is timed.
        sklearn_fit(x)
        sk_fit = sklearn_fit(x)
        # OpenBLAS's and OpenMP's worker threads spin for a while after a call:
        # let them go idle before timing ours.
        time.sleep(IDLE)
        our_fit = ours(binary, args.threads)
        time.sleep(IDLE)
        sk.append(sk_fit[0])
        me.append(our_fit[0])
        ratios.append(sk_fit[0] / our_fit[0])
        print(f"round {r}: scikit-learn {sk_fit[0]:.3f} s ({sk_fit[1]} it, error {sk_fit[2]:.4f}), "
              f"ours {our_fit[0]:.4f} s ({our_fit[1]} it, error {our_fit[2]:.4f}), ratio {ratios[-1]:.2f}")
    print(f"scikit-learn median {statistics.median(sk):.3f} s (min {min(sk):.3f}); "
          f"ours median {statistics.median(me):.4f} s (min {min(me):.4f}); "
          f"ratio of medians {statistics.median(sk) / statistics.median(me):.2f}, "
          f"median of round ratios {statistics.median(ratios):.2f}, min {min(ratios):.2f}")


if __name__ == "__main__":
    main()
