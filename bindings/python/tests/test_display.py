"""Notebook display: the report page inside a sandboxed iframe's srcdoc, and the text forms."""

from __future__ import annotations

import html
import json
import re

import ecco_rs
from conftest import PROMPT


def srcdoc(fragment: str) -> str:
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" title="[^"]*" style="[^"]*"></iframe>', fragment)
    assert match, fragment[:200]
    return html.unescape(match.group(1))


def test_every_view_is_the_report_page_in_a_sandboxed_iframe(lm: ecco_rs.LM) -> None:
    output = lm.generate(PROMPT, generate=2, attribution=["grad_x_input"])
    views = [
        output.primary_attributions(),
        output.layer_predictions(position=5),
        output.rankings(),
        output.rankings_watch(watch=[" Paris"], position=5),
        output.run_nmf(n_components=2).explore(),
        output.report(),
    ]
    for view in views:
        page = view.to_html()
        assert srcdoc(view._repr_html_()) == page
        assert page.startswith("<!DOCTYPE html>")
        assert "Content-Security-Policy" in page and "default-src 'none'" in page
        json.loads(view.to_json())
        assert repr(view).startswith(f"<{type(view).__name__}: ")
    assert srcdoc(output._repr_html_()) == output.report().to_html()


def test_markup_in_tokens_stays_text(lm: ecco_rs.LM) -> None:
    output = lm.generate("<script>alert(1)</script>\" onload=\"x", generate=1)
    fragment = output.primary_attributions(attr_method="grad_x_input")._repr_html_()
    # Nothing inside the attribute can end it or open a tag in the notebook.
    inner = fragment[len('<iframe srcdoc="') : fragment.index('" sandbox=')]
    assert "<" not in inner and '"' not in inner
    assert "<script>alert(1)</script>" not in srcdoc(fragment)


def test_text_forms(lm: ecco_rs.LM) -> None:
    output = lm.generate(PROMPT, generate=1)
    assert str(output) == "<LMOutput 'The capital of France is Paris' # of lm outputs: 1>"
    assert "hidden_states.decoder" in repr(output)
    assert repr(lm) == "<ecco_rs.LM ecco-demo (gpt2, 4 layers)>"
    assert "factors" in repr(output.run_nmf(n_components=2))
