#!/usr/bin/env python3
"""``ecco batch`` against inseq on a corpus, side by side, and our peak memory as the corpus grows.

    python scripts/compare/batch_side_by_side.py corpus --n 1000 --out corpus-1000.jsonl
    python scripts/compare/batch_side_by_side.py ours --corpus corpus-1000.jsonl [--model DIR]
    python scripts/compare/batch_side_by_side.py inseq --corpus corpus-1000.jsonl [--model DIR] [--batch-size 16]

Run it with the fixture environment's Python (torch, transformers, captum). ``corpus`` writes
``--n`` documents of about 40 GPT-2 tokens (seeded, so every run gets the same texts). ``ours``
runs ``target/release/ecco batch`` on them (5 new tokens, grad_x_input) as one process and prints
documents per second of wall time and of CPU time, and the peak memory (max RSS); ``inseq`` does the same work with inseq's
``input_x_gradient`` (grad × input, captum's InputXGradient), 5 greedy new tokens, on the same
checkpoint, batched (``--batch-size``), in a child process; inseq is loaded from ``--overlay``
(``pip install --no-deps --target DIR inseq …``) laid over this Python's torch and transformers.
The checkpoint is the distilgpt2-sized bench model (``scripts/fixtures/gpt2.py bench-model``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_MODEL = ROOT / "target" / "bench-model" / "distilgpt2-random"
WORDS = ("the model reads every token and writes a trace of what it saw while the river runs past old "
         "stone houses in a quiet town where people meet at noon to talk about weather books music and work").split()


def corpus(n: int, out: Path) -> None:
    """``n`` documents of 40 words (about 40 GPT-2 tokens) drawn with a fixed seed."""
    rng = random.Random(1234)
    with out.open("w") as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(40)).capitalize()
            f.write(json.dumps({"id": f"doc-{i:05d}", "text": text}) + "\n")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def children_cpu_seconds() -> float:
    """CPU time (user + system) of the finished child processes: a fairer clock than wall time
    on a machine shared with other work."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(args) -> dict:
    binary = ROOT / "target" / "release" / "ecco"
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(binary), "batch", "--model", str(args.model), "--input", str(args.corpus), "--id-field", "id",
                   "--max-new-tokens", "5", "--attribution", "grad_x_input", "--out", str(Path(tmp) / "out")]
        start, cpu = time.perf_counter(), children_cpu_seconds()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    n = sum(1 for line in args.corpus.open() if line.strip())
    return {"side": "ecco batch", "documents": n, "seconds": seconds, "docs_per_s": n / seconds, "cpu_seconds": cpu,
            "docs_per_cpu_s": n / cpu, "peak_rss_mib": peak_rss_mib()}


INSEQ_JOB = r"""
import json, sys, time
import inseq
model_dir, corpus, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = [json.loads(line)["text"] for line in open(corpus) if line.strip()]
model = inseq.load_model(model_dir, "input_x_gradient")
start, cpu = time.perf_counter(), time.process_time()
model.attribute(texts, generation_args={"max_new_tokens": 5, "do_sample": False}, batch_size=batch_size, show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "documents": len(texts)}))
"""


def inseq(args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(args.overlay) if args.overlay else None, os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", INSEQ_JOB, str(args.model), str(args.corpus), str(args.batch_size)],
                         check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    result = json.loads(out.stdout.strip().splitlines()[-1])
    n = result["documents"]
    # inseq's CPU time is that of `attribute` alone (not Python's start-up or the model's loading).
    return {"side": f"inseq (batch_size {args.batch_size})", "documents": n, "seconds": wall, "attribute_seconds": result["seconds"],
            "docs_per_s": n / wall, "cpu_seconds": result["cpu_seconds"], "docs_per_cpu_s": n / result["cpu_seconds"],
            "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["corpus", "ours", "inseq"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--model", type=Path, default=BENCH_MODEL)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--overlay", type=Path, help="a directory of inseq and its pure-Python dependencies installed with --no-deps (pip install --target), put on sys.path before the fixture environment")
    args = parser.parse_args()
    if args.mode == "corpus":
        corpus(args.n, args.out or Path(f"corpus-{args.n}.jsonl"))
    elif args.mode == "ours":
        print(json.dumps(ours(args)))
    else:
        print(json.dumps(inseq(args)))


if __name__ == "__main__":
    main()
