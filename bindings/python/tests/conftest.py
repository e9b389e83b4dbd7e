"""Shared fixtures: the demo model, and the `ecco` command built from the same sources (the
reference the package's numbers must equal)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import ecco_rs

ROOT = Path(__file__).resolve().parents[3]
PROMPT = "The capital of France is"


def ecco_binary() -> Path:
    """`$ECCO_BIN`, else `ecco` in the cargo target directory (scripts/test.sh builds it)."""
    if "ECCO_BIN" in os.environ:
        return Path(os.environ["ECCO_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "ecco"


@pytest.fixture(scope="session")
def ecco_bin() -> Path:
    path = ecco_binary()
    if not path.is_file():
        pytest.fail(f"the ecco binary is not at {path}: build it (cargo build --release) or set ECCO_BIN")
    return path


class Cli:
    """Runs the `ecco` command."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=600)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))

    def error(self, *args: str) -> str:
        """The one-line error message (after `error: `) of a failing command."""
        done = self.run(*args)
        assert done.returncode != 0
        line = done.stderr.strip().splitlines()[-1]
        assert line.startswith("error: "), done.stderr
        return line[len("error: ") :]


@pytest.fixture(scope="session")
def cli(ecco_bin: Path) -> Cli:
    return Cli(ecco_bin)


@pytest.fixture(scope="session")
def lm() -> ecco_rs.LM:
    return ecco_rs.from_pretrained("ecco-demo", activations=True, attention=True, verbose=False)


@pytest.fixture()
def fresh_dir(tmp_path: Path) -> Path:
    out = tmp_path / "trace"
    shutil.rmtree(out, ignore_errors=True)
    return out
