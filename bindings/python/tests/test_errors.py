"""Errors: Python exception classes by cause, with the command line's one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import ecco_rs
from conftest import PROMPT, Cli


def test_missing_model_is_file_not_found(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ecco_rs.EccoFileNotFoundError) as caught:
        ecco_rs.from_pretrained(str(missing), verbose=False)
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, ecco_rs.EccoError)
    message = cli.error("generate", "--model", str(missing), "--prompt", PROMPT, "--max-new-tokens", "1", "--out", str(tmp_path / "o"))
    assert str(caught.value) == message


def test_missing_trace_is_file_not_found(cli: Cli, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        ecco_rs.load(tmp_path / "nothing")
    assert str(caught.value) == cli.error("rankings", "--trace", str(tmp_path / "nothing"))


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (lambda lm: lm.generate("", generate=1), ["--prompt", ""]),
        (lambda lm: lm.generate(PROMPT, generate=1, attribution=["shap"]), ["--prompt", PROMPT, "--attribution", "shap"]),
        (lambda lm: lm.generate(PROMPT, generate=1, contrast_with=" Paris is", attribution=["grad_x_input"]),
         ["--prompt", PROMPT, "--attribution", "grad_x_input", "--contrast-with", " Paris is"]),
    ],
)  # fmt: skip
def test_bad_input_is_value_error_with_the_cli_message(lm: ecco_rs.LM, cli: Cli, tmp_path: Path, call, args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ecco_rs.EccoValueError) as caught:
        call(lm)
    assert isinstance(caught.value, ValueError)
    max_new = [] if "--max-new-tokens" in args else ["--max-new-tokens", "1"]
    assert str(caught.value) == cli.error("generate", *args, *max_new, "--out", str(tmp_path / "o"))


def test_checks_of_the_crate_are_value_errors(lm: ecco_rs.LM) -> None:
    with pytest.raises(ecco_rs.EccoValueError, match="integrated gradients takes 1 to"):
        lm.generate(PROMPT, generate=1, ig_steps=0, attribution=["ig"])
    with pytest.raises(ValueError, match="beam"):
        lm.generate(PROMPT, generate=1, beam_size=2)
    with pytest.raises(ValueError, match="max_length"):
        lm.generate(PROMPT, max_length=3)


def test_lens_errors(lm: ecco_rs.LM, cli: Cli, tmp_path: Path) -> None:
    output = lm.generate(PROMPT, generate=1)
    output.save(tmp_path / "t")
    with pytest.raises(ValueError) as caught:
        output.layer_predictions(position=99)
    assert str(caught.value) == cli.error("layer-predictions", "--trace", str(tmp_path / "t"), "--position", "99")
    with pytest.raises(ValueError, match="lens"):
        output.rankings(lens="sideways")
    with pytest.raises(ValueError, match="shap"):
        output.primary_attributions(attr_method="shap")


def test_save_refuses_a_non_empty_directory(lm: ecco_rs.LM, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ecco_rs.EccoError):
        lm.generate(PROMPT, generate=1).save(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
