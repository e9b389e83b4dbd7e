"""The package's numbers equal the `ecco` command's for the same inputs (same crate, same
computation): traces, tensors, attributions, logit lens, NMF and the report's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ecco_rs
from conftest import PROMPT, ROOT, Cli

def as_f32(predictions: list[list[dict]]) -> list[list[dict]]:
    """Predictions with `prob` as float32: the command line prints f32 values widened to f64,
    the package keeps their shortest f32 form; the values are the same f32."""
    return [[{**p, "prob": np.float32(p["prob"])} for p in layer] for layer in predictions]


METHODS = ["grad_x_input", "gradient", "integrated_gradients", "occlusion", "attention_rollout"]


@pytest.fixture(scope="module")
def pair(cli: Cli, lm: ecco_rs.LM, tmp_path_factory: pytest.TempPathFactory) -> tuple[ecco_rs.OutputSeq, Path]:
    """The same generation through Python and through the command line."""
    out = tmp_path_factory.mktemp("cli") / "trace"
    cli.ok(
        "generate", "--prompt", PROMPT, "--max-new-tokens", "3", "--attribution", ",".join(METHODS),
        "--ig-steps", "16", "--activations", "--hidden-states", "--attention", "--out", str(out),
    )  # fmt: skip
    output = lm.generate(PROMPT, generate=3, attribution=METHODS, ig_steps=16)
    return output, out


def test_trace_and_attributions_equal_the_cli(pair: tuple[ecco_rs.OutputSeq, Path]) -> None:
    output, out = pair
    trace = json.loads((out / "trace.json").read_text())
    assert output.tokens == trace["tokens"]
    assert output.token_ids.tolist() == trace["token_ids"]
    assert output.n_input_tokens == trace["n_input_tokens"]
    assert output.output_text == trace["output_text"]
    assert set(output.attribution) == set(METHODS) == set(trace["attributions"])
    for method in METHODS:
        rows = trace["attributions"][method]
        assert len(output.attribution[method]) == len(rows) == 3
        for ours, theirs in zip(output.attribution[method], rows):
            np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.float32))


def test_tensors_equal_the_cli(pair: tuple[ecco_rs.OutputSeq, Path]) -> None:
    output, out = pair
    theirs = ecco_rs.load(out)
    assert set(output.tensors) == set(theirs.tensors) == {"hidden_states.decoder", "activations.decoder", "attention.decoder"}
    for name, array in output.tensors.items():
        np.testing.assert_array_equal(array, theirs.tensors[name])


def test_logit_lens_equals_the_cli(pair: tuple[ecco_rs.OutputSeq, Path], cli: Cli) -> None:
    output, out = pair
    for lens in ["normed", "raw"]:
        ranks = cli.json("rankings", "--trace", str(out), "--lens", lens)
        view = output.rankings(lens=lens)
        assert view.rankings.tolist() == ranks["rankings"]
        assert view.tokens == ranks["tokens"]
        preds = cli.json("layer-predictions", "--trace", str(out), "--position", "5", "--topk", "4", "--lens", lens)
        assert as_f32(output.layer_predictions(position=5, topk=4, lens=lens).predictions) == as_f32(preds)
        watch = cli.json("rankings-watch", "--trace", str(out), "--watch", "1,2,3", "--position", "6", "--lens", lens)
        assert output.rankings_watch(watch=[1, 2, 3], position=6, lens=lens).rankings.tolist() == watch["rankings"]
    one = cli.json("layer-predictions", "--trace", str(out), "--position", "5", "--layer", "2")
    assert as_f32(output.layer_predictions(position=5, layer=2).predictions) == as_f32(one)


def test_nmf_equals_the_cli(pair: tuple[ecco_rs.OutputSeq, Path], cli: Cli) -> None:
    output, out = pair
    theirs = cli.json("nmf", "--trace", str(out), "--components", "3", "--from-layer", "1", "--to-layer", "3")
    nmf = output.run_nmf(n_components=3, from_layer=1, to_layer=3)
    assert nmf.layers == theirs["layers"] == [1, 2]
    np.testing.assert_array_equal(nmf.components, np.asarray(theirs["components"], dtype=np.float32))
    assert nmf.reconstruction_error == theirs["reconstruction_error"]
    assert nmf.n_iter == theirs["n_iter"]
    as_f32 = [[{**n, "weight": np.float32(n["weight"])} for n in factor] for factor in theirs["loadings"]]
    assert [[{**n, "weight": np.float32(n["weight"])} for n in factor] for factor in nmf.loadings] == as_f32


def test_report_json_equals_the_cli(pair: tuple[ecco_rs.OutputSeq, Path], cli: Cli) -> None:
    output, out = pair
    theirs = cli.json("report", "--trace", str(out), "--out", str(out.parent / "report.html"))
    assert output.report().to_dict() == theirs


def test_saved_bundle_reads_back(pair: tuple[ecco_rs.OutputSeq, Path], fresh_dir: Path, cli: Cli) -> None:
    output, _ = pair
    output.save(fresh_dir)
    again = ecco_rs.load(fresh_dir)
    assert again.tokens == output.tokens
    for name, array in output.tensors.items():
        np.testing.assert_array_equal(array, again.tensors[name])
    # The command line reads what the package wrote.
    assert cli.json("rankings", "--trace", str(fresh_dir))["rankings"] == output.rankings().rankings.tolist()


def test_sampling_and_contrast_equal_the_cli(cli: Cli, lm: ecco_rs.LM, fresh_dir: Path) -> None:
    cli.ok(
        "generate", "--prompt", PROMPT, "--max-new-tokens", "4", "--sample", "--seed", "7", "--temperature", "0.8",
        "--top-k", "50", "--attribution", "grad_x_input", "--contrast-with", " Berlin", "--attribution-target", "logit",
        "--out", str(fresh_dir),
    )  # fmt: skip
    trace = json.loads((fresh_dir / "trace.json").read_text())
    output = lm.generate(
        PROMPT, generate=4, do_sample=True, seed=7, temperature=0.8, attribution=["grad_x_input"],
        contrast_with=" Berlin", attribution_target="logit",
    )  # fmt: skip
    assert output.token_ids.tolist() == trace["token_ids"]
    for ours, theirs in zip(output.attribution["grad_x_input"], trace["attributions"]["grad_x_input"]):
        np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.float32))


def assert_same_trace(output: ecco_rs.OutputSeq, out: Path) -> None:
    trace = json.loads((out / "trace.json").read_text())
    assert output.tokens == trace["tokens"]
    assert output.token_ids.tolist() == trace["token_ids"]
    assert output.output_text == trace["output_text"]
    assert set(output.attribution) == set(trace["attributions"])
    for method, rows in trace["attributions"].items():
        for ours, theirs in zip(output.attribution[method], rows, strict=True):
            np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.float32))
    theirs = ecco_rs.load(out)
    assert set(output.tensors) == set(theirs.tensors)
    for name, array in output.tensors.items():
        np.testing.assert_array_equal(array, theirs.tensors[name])


def test_masked_lm_forward_equals_the_cli(cli: Cli, fresh_dir: Path) -> None:
    model = str(ROOT / "fixtures" / "bert-wordpiece")
    text = "the capital of france is [MASK] ."
    cli.ok("forward", "--model", model, "--text", text, "--attribution", "grad_x_input,gradient", "--activations", "--hidden-states", "--out", str(fresh_dir))
    lm = ecco_rs.from_pretrained(model, activations=True, verbose=False)
    output = lm(text, attribution=["grad_x_input", "gradient"])
    assert output.model_type == "mlm"
    assert_same_trace(output, fresh_dir)
    trace = json.loads((fresh_dir / "trace.json").read_text())
    assert output.masked_predictions == trace["masked_predictions"]
    assert output.hidden_states is output.tensors["hidden_states.encoder"]


def test_encoder_decoder_generate_equals_the_cli(cli: Cli, fresh_dir: Path) -> None:
    model = str(ROOT / "fixtures" / "t5-relu")
    prompt = "translate: hello world"
    cli.ok("generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "3", "--attribution", "grad_x_input", "--hidden-states", "--out", str(fresh_dir))
    output = ecco_rs.from_pretrained(model, verbose=False).generate(prompt, generate=3, attribution=["grad_x_input"])
    assert output.model_type == "enc-dec"
    assert_same_trace(output, fresh_dir)
    assert output.rankings().rankings.tolist() == cli.json("rankings", "--model", model, "--trace", str(fresh_dir))["rankings"]
