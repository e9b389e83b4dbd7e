"""Ecco's tutorial calls, unchanged but for `import ecco_rs as ecco` and the model name."""

from __future__ import annotations

import numpy as np

import ecco_rs as ecco


def test_the_tutorial_runs_unchanged() -> None:
    lm = ecco.from_pretrained("ecco-demo", activations=True)
    text = "The capital of France is"
    output = lm.generate(text, generate=5, do_sample=True)

    saliency = output.saliency()
    assert "<iframe" in saliency._repr_html_()
    assert len(saliency.attributions) == 5
    for k, row in enumerate(saliency.attributions):
        assert row.shape == (output.n_input_tokens + k,)
        assert abs(float(row.sum()) - 1.0) < 1e-5

    nmf = output.run_nmf(n_components=10)
    explorer = nmf.explore()
    assert "<iframe" in explorer._repr_html_()
    # Ten components asked of nine positions: clamped to nine, as Ecco does.
    positions = len(output.tokens) - 1
    assert nmf.components.shape == (min(10, positions), positions)

    output.layer_predictions(position=5, topk=10, layer=3)
    output.rankings()
    output.rankings_watch(watch=[lm.token_id(" Paris"), lm.token_id(" Berlin")], position=5)
    output.primary_attributions(attr_method="grad_x_input")


def test_greedy_demo_answers_paris() -> None:
    lm = ecco.from_pretrained("ecco-demo", verbose=False)
    output = lm.generate("The capital of France is", generate=1, attribution=["grad_x_input"])
    assert output.tokens[-1] == "ĠParis"
    weights = output.primary_attributions(attr_method="grad_x_input").attributions[0]
    assert output.tokens[int(np.argmax(weights))] == "ĠFrance"
    ranks = output.rankings_watch(watch=[" Paris"], position=5).rankings
    assert ranks[-1, 0] == 1
