"""Notebook display: every view is the self-contained HTML report page the ``ecco`` command
writes, shown inline in an ``<iframe srcdoc=… sandbox="allow-scripts">``. The page carries
its own script and style (pinned by its Content-Security-Policy) and makes no request, so it
draws in JupyterLab, VS Code and Colab without trusted-notebook JavaScript or a network.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any


class View:
    """One report page: ``_repr_html_`` for notebooks, :meth:`show`, :meth:`to_html`,
    :meth:`to_json`.

    Subclasses carry the numbers the page shows as attributes (``rankings``,
    ``predictions``, …).
    """

    #: Height of the inline frame, in CSS pixels (the frame can be resized).
    height = 480

    def __init__(self, native: Any, summary: str) -> None:
        self._native = native
        self._summary = summary

    @property
    def title(self) -> str:
        """The page's title."""
        return self._native.title

    def to_html(self) -> str:
        """The page: one HTML file with no external resource (as ``ecco report`` writes)."""
        return self._native.to_html()

    def to_json(self) -> str:
        """The JSON the page embeds (``ecco report --json``)."""
        return self._native.to_json()

    def to_dict(self) -> dict[str, Any]:
        """:meth:`to_json`, parsed."""
        return json.loads(self.to_json())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the page to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())

    def _repr_html_(self) -> str:
        # `srcdoc` is an attribute value: escaping &, <, >, " and ' keeps the page intact
        # and keeps it from closing the attribute. `allow-scripts` without
        # `allow-same-origin` runs the page's own script in an opaque origin, away from the
        # notebook.
        page = html.escape(self.to_html(), quote=True)
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-scripts" title="{html.escape(self.title, quote=True)}" '
            f'style="width: 100%; height: {self.height}px; border: 0; resize: vertical; overflow: auto"></iframe>'
        )

    def show(self) -> None:
        """Displays the page: inline in a notebook, else in a browser (from a temporary file)."""
        try:
            from IPython import get_ipython  # type: ignore[import-not-found]
            from IPython.display import display  # type: ignore[import-not-found]

            if get_ipython() is not None:
                display(self)
                return
        except ImportError:
            pass
        import tempfile
        import webbrowser

        with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
            f.write(self.to_html())
        webbrowser.open("file://" + f.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._summary}>"


class Report(View):
    """The page with every view an output supports (``output.report()``)."""

    height = 900


class Attributions(View):
    """Primary attributions of one method: ``attributions[k]`` weighs the tokens read by the
    ``k``-th generated token (each row sums to 1)."""

    def __init__(self, native: Any, method: str, attributions: list[Any]) -> None:
        super().__init__(native, f"{method}, {len(attributions)} generated tokens")
        self.method = method
        self.attributions = attributions


class LayerPredictions(View):
    """The logit lens's top-k tokens per layer at one position: ``predictions[layer]`` is a
    list of ``{"token_id", "token", "prob", "ranking"}``."""

    def __init__(self, native: Any, position: int, predictions: list[list[dict[str, Any]]]) -> None:
        best = [layer[0]["token"] if layer else "" for layer in predictions]
        super().__init__(native, f"position {position}, top token per layer {best}")
        self.position = position
        self.predictions = predictions


class Rankings(View):
    """``rankings[layer, k]``: the rank (1 = top) each layer gives the ``k``-th generated token."""

    def __init__(self, native: Any, rankings: Any, tokens: list[str]) -> None:
        super().__init__(native, f"{rankings.shape[0]} layers x {rankings.shape[1]} generated tokens {tokens}")
        self.rankings = rankings
        self.tokens = tokens


class RankingsWatch(View):
    """``rankings[layer, j]``: the rank each layer gives the ``j``-th watched token at
    ``position``."""

    def __init__(self, native: Any, position: int, watch: list[int], rankings: Any) -> None:
        super().__init__(native, f"position {position}, tokens {watch}, last layer's ranks {rankings[-1].tolist()}")
        self.position = position
        self.watch = watch
        self.rankings = rankings


class Explorer(View):
    """The NMF explorer: a sparkline per factor, tokens coloured by their dominant factor."""

    height = 560
