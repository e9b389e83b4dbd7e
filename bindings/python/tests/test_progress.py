"""Progress: long calls drive a tqdm bar when tqdm is installed."""

from __future__ import annotations

import pytest

import ecco_rs
from conftest import PROMPT


def test_tqdm_follows_a_long_attribution(lm: ecco_rs.LM, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    lm.generate(PROMPT, generate=3, attribution=["integrated_gradients"], ig_steps=600, progress=True)
    err = capsys.readouterr().err
    assert "integrated_gradients" in err
    assert "/1800" in err


def test_quiet_when_asked(lm: ecco_rs.LM, capsys: pytest.CaptureFixture[str]) -> None:
    lm.generate(PROMPT, generate=3, attribution=["integrated_gradients"], ig_steps=600, progress=False)
    assert capsys.readouterr().err == ""
