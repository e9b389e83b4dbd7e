#!/usr/bin/env python3
"""Python Ecco 0.1.2 against our release binary, side by side, on the same checkpoint and inputs.

    python scripts/compare/compare.py [--runs 5] [--model DIR] [--only gxi20,forward] [--json OUT]

Run it with the fixture environment's Python (scripts/fixtures/requirements.txt: torch,
transformers, captum, scikit-learn). It

1. builds the distilgpt2-sized bench checkpoint with ``scripts/fixtures/gpt2.py bench-model``
   (random weights, fixed seed) unless ``--model`` is given, plus a copy whose tokenizer is
   ``vocab.json`` + ``merges.txt``, the format transformers 4.38 (Ecco's) reads;
2. installs Ecco 0.1.2 and the versions it runs with (``requirements-ecco.txt``) into an overlay
   directory with ``pip install --no-deps --target``, laid over this Python's torch, numpy and
   scikit-learn;
3. builds ``target/release/ecco`` (``cargo build --release``) unless ``--ecco-bin`` is given;
4. runs every scenario ``--runs`` times as whole processes, alternating Ecco and ours, and prints
   each side's median wall time and peak memory (max RSS) and Ecco's time over ours.

Scenarios: greedy20 (20 greedy tokens), gxi20 (20 tokens with grad_x_input and activations),
ig5 (5 tokens with integrated gradients), forward (~150 tokens with activations and hidden
states), nmf (that forward pass, then NMF with 10 components; ours is two processes, both timed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from texts import FORWARD_TEXT, PROMPT  # noqa: E402

SCENARIOS = ["greedy20", "gxi20", "ig5", "forward", "nmf"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecco-rs" / "compare"


def run(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"compare: `{' '.join(cmd)}` failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def ours(binary: str, scenario: str, model: Path, out: Path) -> list[list[str]]:
    """The `ecco` command lines of a scenario (one or two processes)."""
    shutil.rmtree(out, ignore_errors=True)
    gen = [binary, "generate", "--model", str(model), "--prompt", PROMPT, "--out", str(out)]
    fwd = [binary, "forward", "--model", str(model), "--text", FORWARD_TEXT,
           "--activations", "--hidden-states", "--out", str(out)]
    return {
        "greedy20": [gen + ["--max-new-tokens", "20"]],
        "gxi20": [gen + ["--max-new-tokens", "20", "--attribution", "grad_x_input", "--activations"]],
        "ig5": [gen + ["--max-new-tokens", "5", "--attribution", "integrated_gradients"]],
        "forward": [fwd],
        "nmf": [fwd, [binary, "nmf", "--trace", str(out), "--components", "10", "--json"]],
    }[scenario]


def python_model(model: Path) -> Path:
    """A copy of `model` whose tokenizer transformers 4.38 reads (vocab.json + merges.txt)."""
    dest = CACHE / f"{model.name}-ecco"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        target = dest / name
        if not target.exists():
            target.symlink_to(model.resolve() / name)
    tok = json.loads((model / "tokenizer.json").read_text())["model"]
    (dest / "vocab.json").write_text(json.dumps(tok["vocab"], ensure_ascii=False))
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["merges"]]
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return dest


def overlay() -> Path:
    """Ecco 0.1.2 and its pinned companions, installed once."""
    target = CACHE / "ecco-overlay"
    stamp = target / ".requirements"
    wanted = (HERE / "requirements-ecco.txt").read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        "-r", str(HERE / "requirements-ecco.txt")], check=True)
        stamp.write_text(wanted)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", type=Path, help="a GPT-2 checkpoint (default: the bench model, built)")
    ap.add_argument("--ecco-bin", help="our binary (default: target/release/ecco, built)")
    ap.add_argument("--only", help="comma-separated scenarios (default: all)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    scenarios = args.only.split(",") if args.only else SCENARIOS
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.exit(f"compare: unknown scenario {unknown[0]} (known: {', '.join(SCENARIOS)})")

    model = args.model
    if model is None:
        model = CACHE / "bench-model"
        if not (model / "model.safetensors").exists():
            subprocess.run([sys.executable, str(ROOT / "scripts/fixtures/gpt2.py"), "bench-model",
                            "--out", str(model)], check=True)
    binary = args.ecco_bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        binary = str(target / "release" / "ecco")
    py_model = python_model(model)
    env = dict(os.environ, PYTHONPATH=f"{overlay()}:{HERE}", TOKENIZERS_PARALLELISM="false")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace"
        for scenario in scenarios:
            times = {"ecco": [], "ours": []}
            peaks = {"ecco": [], "ours": []}
            for i in range(args.runs):
                # Alternate which side goes first, so neither always meets a warm cache.
                for side in (("ecco", "ours") if i % 2 == 0 else ("ours", "ecco")):
                    if side == "ecco":
                        wall, peak = run([sys.executable, str(HERE / "ecco_job.py"), scenario, str(py_model)], env)
                    else:
                        wall, peak = 0.0, 0
                        for cmd in ours(binary, scenario, model, out):
                            w, p = run(cmd)
                            wall, peak = wall + w, max(peak, p)
                    times[side].append(wall)
                    peaks[side].append(peak)
            r = {side: {"median_s": statistics.median(times[side]), "runs_s": times[side],
                        "peak_mib": max(peaks[side]) / 2**20} for side in times}
            r["speedup"] = r["ecco"]["median_s"] / r["ours"]["median_s"]
            results[scenario] = r
            print(f"{scenario:9} ecco {r['ecco']['median_s']:7.2f} s {r['ecco']['peak_mib']:6.0f} MiB | "
                  f"ours {r['ours']['median_s']:6.2f} s {r['ours']['peak_mib']:6.0f} MiB | "
                  f"{r['speedup']:5.1f}x", flush=True)

    print("\n| scenario | Python Ecco 0.1.2 | ecco-rs | Ecco / ours | peak memory, Ecco / ours |")
    print("|---|---|---|---|---|")
    for scenario, r in results.items():
        print(f"| {scenario} | {r['ecco']['median_s']:.2f} s | {r['ours']['median_s']:.2f} s | "
              f"{r['speedup']:.1f}× | {r['ecco']['peak_mib']:.0f} / {r['ours']['peak_mib']:.0f} MiB |")
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "runs": args.runs,
               "load_average": os.getloadavg()}
    print(f"\n{machine}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1))


if __name__ == "__main__":
    main()
