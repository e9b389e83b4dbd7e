""":class:`OutputSeq` (what ``generate`` and ``lm(text)`` return) and :class:`NMF`."""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from ecco_rs import _views
from ecco_rs._progress import reporter

# numpy is imported where arrays are made, not with the package: `import ecco_rs` stays fast.
if TYPE_CHECKING:
    import numpy as np


class OutputSeq:
    """A generation (or forward pass), what it captured and the analyses on it (Ecco's
    ``OutputSeq``).

    Unlike Ecco's, the arrays have no batch axis: an output is one sequence. Captured tensors
    are numpy views of the Rust side's memory (read-only, no copy).
    """

    def __init__(self, native: Any, verbose: bool = True) -> None:
        self._native = native
        self._verbose = verbose

    @cached_property
    def trace(self) -> dict[str, Any]:
        """``trace.json``: tokens, ids, attributions, the model's shape and settings."""
        return json.loads(self._native.trace_json())

    @property
    def tokens(self) -> list[str]:
        """Every token, raw as the tokenizer gives it (``Ġworld``): input, then generated."""
        return self.trace["tokens"]

    @cached_property
    def token_ids(self) -> np.ndarray:
        """The token ids, ``int64`` of shape ``(tokens,)``."""
        import numpy as np

        return np.asarray(self.trace["token_ids"], dtype=np.int64)

    @property
    def n_input_tokens(self) -> int:
        """The prompt's tokens (an encoder-decoder's: the encoder's)."""
        return self.trace["n_input_tokens"]

    @property
    def output_text(self) -> str:
        """The decoded text (an encoder-decoder's: the generated text)."""
        return self.trace["output_text"]

    @property
    def model_type(self) -> str:
        """``causal``, ``mlm`` (a masked LM) or ``enc-dec`` (an encoder-decoder), as in Ecco."""
        return self.trace["model"]["model_type"]

    @property
    def masked_predictions(self) -> Optional[list[dict[str, Any]]]:
        """A masked LM's predictions at each mask token (``position``, ``predictions``)."""
        return self.trace.get("masked_predictions")

    @cached_property
    def attribution(self) -> dict[str, list[np.ndarray]]:
        """Per method, one ``float32`` array per generated token (Ecco's ``attribution``)."""
        import numpy as np

        return {m: [np.asarray(r, dtype=np.float32) for r in rows] for m, rows in self.trace.get("attributions", {}).items()}

    @cached_property
    def tensors(self) -> dict[str, np.ndarray]:
        """Every captured tensor by its bundle name (``hidden_states.decoder``,
        ``activations.decoder``, ``attention.decoder``, ``….encoder``, ``attention.cross``)."""
        import numpy as np

        return {name: np.asarray(self._native.tensor(name)) for name in self._native.tensor_names()}

    def _stack(self, kind: str) -> Optional[np.ndarray]:
        stack = "encoder" if self.model_type == "mlm" else "decoder"
        return self.tensors.get(f"{kind}.{stack}")

    @property
    def activations(self) -> dict[str, np.ndarray]:
        """FFN activations per stack (``{"decoder": …}``; masked LMs ``"encoder"``, T5 both),
        each ``float32`` of shape ``(layers, neurons, positions)``, as Ecco's without the batch
        axis."""
        return {name.split(".", 1)[1]: t for name, t in self.tensors.items() if name.startswith("activations.")}

    @property
    def activation_layers(self) -> list[int]:
        """The layers the activations hold (all unless ``activations_layer_nums`` chose)."""
        layers = self.trace.get("activation_layers")
        if layers is not None:
            return layers
        acts = self._stack("activations")
        return list(range(acts.shape[0])) if acts is not None else []

    @property
    def hidden_states(self) -> Optional[np.ndarray]:
        """``float32`` ``(layers + 1, positions, hidden)``: the embeddings, then each block's
        output (the decoder's; a masked LM's encoder's)."""
        return self._stack("hidden_states")

    @property
    def attention(self) -> Optional[np.ndarray]:
        """``float32`` ``(layers, heads, query, key)`` attention weights (the decoder's self
        attention; a masked LM's encoder's)."""
        return self._stack("attention")

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes the trace bundle (``trace.json`` + ``tensors.safetensors``) into ``path``,
        which must not exist or be empty; ``ecco report --trace PATH`` reads it, and so does
        :func:`ecco_rs.load`."""
        self._native.save(os.fspath(path))

    def primary_attributions(self, attr_method: str = "grad_x_input", style: str = "minimal", **kwargs: Any) -> _views.Attributions:
        """Which input tokens drove each generated token (Ecco's ``primary_attributions``):
        a view that shows the page inline in a notebook; ``.attributions`` holds the rows.

        ``attr_method`` is an attribution method (``grad_x_input``, ``ig``, …); one that
        ``generate(attribution=[…])`` did not run is computed now, with its defaults.
        ``style`` is accepted for Ecco's signature; the page has one style.
        """
        import numpy as np

        del style, kwargs
        self._attribute([attr_method])
        native, rows = self._native.primary_attributions(attr_method)
        return _views.Attributions(native, attr_method, [np.asarray(r, dtype=np.float32) for r in rows])

    def _attribute(self, methods: Sequence[str]) -> None:
        """Adds the attributions of ``methods`` the output lacks."""
        draw, on_progress = reporter(self._verbose)
        try:
            more = self._native.with_attributions(
                list(methods), attribution_target="prob", contrast_with=None, ig_steps=50, progress=draw, on_progress=on_progress
            )
        finally:
            if on_progress is not None:
                on_progress.close()
        if more is not None:
            self._native = more
            for cached in ("trace", "attribution", "tensors", "token_ids"):
                self.__dict__.pop(cached, None)

    def saliency(self, attr_method: str = "grad_x_input", **kwargs: Any) -> _views.Attributions:
        """:meth:`primary_attributions` (the name of earlier Ecco versions)."""
        return self.primary_attributions(attr_method, **kwargs)

    def layer_predictions(self, position: int = 1, topk: int = 10, layer: Optional[int] = None, lens: str = "normed", **kwargs: Any) -> _views.LayerPredictions:
        """Per layer (or only ``layer``), the ``topk`` tokens its hidden state predicts for
        ``position`` (the logit lens; Ecco's ``layer_predictions``).

        ``lens="normed"`` applies the final layer norm before the LM head (the ``ecco``
        command's default); ``lens="raw"`` does not (Ecco 0.1.2).
        """
        del kwargs
        native, preds = self._native.layer_predictions(position, topk, layer, lens)
        return _views.LayerPredictions(native, position, json.loads(preds))

    def rankings(self, lens: str = "normed", **kwargs: Any) -> _views.Rankings:
        """Per layer, the rank of every generated token (Ecco's ``rankings``): ``.rankings``
        is ``int64`` ``(layers, generated)``."""
        import numpy as np

        del kwargs
        native, ranks = self._native.rankings(lens)
        generated = self.tokens[len(self.tokens) - (len(ranks[0]) if ranks else 0) :]
        return _views.Rankings(native, np.asarray(ranks, dtype=np.int64), generated)

    def rankings_watch(self, watch: Sequence[Union[int, str]] = (), position: Optional[int] = None, lens: str = "normed", **kwargs: Any) -> _views.RankingsWatch:
        """Per layer, the ranks of the ``watch`` tokens (ids, raw tokens or one-token texts)
        at ``position`` (default: the last token), Ecco's ``rankings_watch``."""
        import numpy as np

        del kwargs
        ids = [int(w) if isinstance(w, (int, np.integer)) else self._native.token_id(w) for w in watch]
        if position is None or position == -1:
            position = len(self.tokens) - 1
        native, ranks = self._native.rankings_watch(ids, position, lens)
        return _views.RankingsWatch(native, position, ids, np.asarray(ranks, dtype=np.int64))

    def run_nmf(
        self,
        n_components: int = 10,
        from_layer: Optional[int] = None,
        to_layer: Optional[int] = None,
        *,
        layers: Optional[Sequence[int]] = None,
        seed: int = 0,
        max_iter: int = 500,
        tol: float = 1e-4,
        top_neurons: int = 10,
        progress: bool = False,
        **kwargs: Any,
    ) -> "NMF":
        """Factorises the FFN activations into ``n_components`` factors (Ecco's ``run_nmf``;
        the layers ``from_layer`` up to, not including, ``to_layer``, or exactly ``layers``).
        Needs ``activations=True``."""
        del kwargs
        native = self._native.run_nmf(
            components=n_components,
            from_layer=from_layer,
            to_layer=to_layer,
            layers=list(layers) if layers is not None else None,
            seed=seed,
            max_iter=max_iter,
            tol=tol,
            top_neurons=top_neurons,
            progress=progress,
        )
        return NMF(native, self)

    def report(
        self,
        *,
        title: Optional[str] = None,
        lens: str = "normed",
        position: Optional[int] = None,
        topk: int = 10,
        watch: Optional[Sequence[int]] = None,
        components: int = 5,
        attention_topk: int = 8,
    ) -> _views.Report:
        """The page with every view the output supports (``ecco report``)."""
        native = self._native.report(
            title=title,
            lens=lens,
            position=position,
            topk=topk,
            watch=list(watch) if watch is not None else None,
            components=components,
            attention_topk=attention_topk,
            progress=False,
        )
        return _views.Report(native, f"report of {self.output_text!r}")

    def to_html(self) -> str:
        """:meth:`report`'s page."""
        return self.report().to_html()

    def to_json(self) -> str:
        """:meth:`report`'s JSON."""
        return self.report().to_json()

    def show(self) -> None:
        """Displays :meth:`report`."""
        self.report().show()

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()

    def __str__(self) -> str:
        return f"<LMOutput {self.output_text!r} # of lm outputs: {len(self.tokens) - self.n_input_tokens}>"

    def __repr__(self) -> str:
        captured = ", ".join(f"{k} {list(v.shape)}" for k, v in self.tensors.items())
        methods = ", ".join(self.attribution) or "none"
        return f"<ecco_rs.OutputSeq {self.output_text!r}: {len(self.tokens)} tokens ({self.n_input_tokens} input); attributions: {methods}; captured: {captured or 'nothing'}>"


class NMF:
    """An NMF of an output's FFN activations (Ecco's ``NMF``): ``components`` is ``float32``
    ``(n_components, positions)``; :meth:`explore` shows the explorer."""

    def __init__(self, native: Any, output: OutputSeq) -> None:
        import numpy as np

        self._native = native
        self._output = output
        self.components = np.asarray(native.components, dtype=np.float32)
        self.layers: list[int] = native.layers
        self.reconstruction_error: float = native.reconstruction_error
        self.n_iter: int = native.n_iter
        self.converged: bool = native.converged

    @cached_property
    def loadings(self) -> list[list[dict[str, Any]]]:
        """Per factor, its top neurons: ``{"layer", "neuron", "weight"}``."""
        return json.loads(self._native.loadings_json())

    def explore(self, **kwargs: Any) -> _views.Explorer:
        """The explorer page: a sparkline per factor, tokens coloured by their dominant
        factor, factors toggled."""
        del kwargs
        return _views.Explorer(self._native.explore(), f"{self.components.shape[0]} factors over {self.components.shape[1]} positions")

    def _repr_html_(self) -> str:
        return self.explore()._repr_html_()

    def __repr__(self) -> str:
        return f"<ecco_rs.NMF {self.components.shape[0]} factors of layers {self.layers}, error {self.reconstruction_error:.4g}>"
