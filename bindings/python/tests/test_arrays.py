"""Arrays: shapes, dtypes, and captures shared with numpy without a copy."""

from __future__ import annotations

import numpy as np

import ecco_rs
from conftest import PROMPT


def test_shapes_and_dtypes(lm: ecco_rs.LM) -> None:
    info = lm.info
    output = lm.generate(PROMPT, generate=3, attribution=["grad_x_input"])
    n = len(output.tokens)
    assert n == output.n_input_tokens + 3
    assert output.token_ids.dtype == np.int64 and output.token_ids.shape == (n,)
    # Captures come from one pass over every token but the last.
    hidden = output.hidden_states
    assert hidden.dtype == np.float32 and hidden.shape == (info["n_layers"] + 1, n - 1, info["hidden_size"])
    acts = output.activations["decoder"]
    assert acts.dtype == np.float32 and acts.shape == (info["n_layers"], info["intermediate_size"], n - 1)
    att = output.attention
    assert att.dtype == np.float32 and att.shape == (info["n_layers"], info["n_heads"], n - 1, n - 1)
    np.testing.assert_allclose(att.sum(axis=-1), 1.0, rtol=1e-5)
    ranks = output.rankings().rankings
    assert ranks.dtype == np.int64 and ranks.shape == (info["n_layers"], 3)
    rows = output.attribution["grad_x_input"]
    assert [r.shape for r in rows] == [(output.n_input_tokens + k,) for k in range(3)]


def test_captures_are_shared_not_copied(lm: ecco_rs.LM) -> None:
    output = lm.generate(PROMPT, generate=1)
    a = output.hidden_states
    b = np.asarray(output._native.tensor("hidden_states.decoder"))
    assert np.shares_memory(a, b)
    assert not a.flags.writeable and not a.flags.owndata
    # The array keeps the Rust memory alive after the output is gone.
    expected = a.copy()
    del output, b
    np.testing.assert_array_equal(a, expected)


def test_activation_layers_follow_the_selection() -> None:
    lm = ecco_rs.from_pretrained("ecco-demo", activations=True, activations_layer_nums=[1, 3], verbose=False)
    output = lm.generate(PROMPT, generate=2)
    assert output.activation_layers == [1, 3]
    assert output.activations["decoder"].shape[0] == 2
    assert output.run_nmf(n_components=2).layers == [1, 3]


def test_forward(lm: ecco_rs.LM) -> None:
    output = lm(PROMPT)
    assert len(output.tokens) == 5 and output.n_input_tokens == 5
    assert output.hidden_states.shape[1] == 5
