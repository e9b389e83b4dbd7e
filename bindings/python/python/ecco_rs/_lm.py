"""``from_pretrained`` and :class:`LM`: Ecco's entry points on the Rust ``ecco`` crate."""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence, Union

from ecco_rs import _ecco_rs
from ecco_rs._errors import EccoValueError
from ecco_rs._output import OutputSeq
from ecco_rs._progress import reporter


def from_pretrained(
    hf_model_id: Union[str, os.PathLike[str]],
    model_config: Optional[dict[str, Any]] = None,
    activations: bool = False,
    attention: bool = False,
    hidden_states: bool = True,
    activations_layer_nums: Optional[Sequence[int]] = None,
    verbose: bool = True,
    gpu: bool = True,
    *,
    device: str = "flex",
) -> "LM":
    """Loads a model, as Ecco's ``ecco.from_pretrained``.

    Args:
        hf_model_id: a checkpoint directory, a Hugging Face id (found in the Hugging Face
            cache, else downloaded) or ``"ecco-demo"``, the small GPT-2 built into the package.
        model_config: not needed: the architecture comes from the checkpoint's
            ``config.json``; passing one is an error.
        activations, attention, hidden_states: what ``generate`` and ``__call__`` capture by
            default (FFN activations for ``run_nmf``; attention weights; hidden states for the
            logit lens). Each call can override them.
        activations_layer_nums: only these layers' activations.
        verbose: progress bars for long calls (tqdm when installed).
        gpu: ignored (kept for Ecco's signature): ``device`` picks the backend.
        device: ``"flex"`` (the CPU, default), ``"wgpu"`` or ``"cuda"`` when built with them.

    Raises:
        EccoFileNotFoundError: no such directory or cached model.
        EccoValueError: an unsupported architecture, corrupt files.
    """
    if model_config is not None:
        raise EccoValueError("model_config is not needed: the architecture comes from the checkpoint's config.json")
    del gpu
    native = _ecco_rs.from_pretrained(os.fspath(hf_model_id), device=device, progress=verbose)
    layers = list(activations_layer_nums) if activations_layer_nums is not None else None
    return LM(native, activations=activations, attention=attention, hidden_states=hidden_states, layers=layers, verbose=verbose)


def load(path: Union[str, os.PathLike[str]], lm: Optional["LM"] = None) -> OutputSeq:
    """Reads a trace bundle written by :meth:`OutputSeq.save` or ``ecco generate --out DIR``.

    ``lm`` is the model that made it, for the logit lens (a trace of ``ecco-demo`` finds its
    model by itself).
    """
    return OutputSeq(_ecco_rs.load(os.fspath(path), lm._native if lm is not None else None))


class LM:
    """A loaded language model and its tokenizer (Ecco's ``LM``)."""

    def __init__(
        self,
        native: Any,
        *,
        activations: bool = False,
        attention: bool = False,
        hidden_states: bool = True,
        layers: Optional[list[int]] = None,
        verbose: bool = True,
    ) -> None:
        self._native = native
        self.collect_activations_flag = activations
        self.collect_activations_layer_nums = layers
        self.attention = attention
        self.hidden_states = hidden_states
        self.verbose = verbose

    @property
    def model_name(self) -> str:
        """The name traces record: the directory as given, the Hub id, or ``ecco-demo``."""
        return self._native.name

    @property
    def info(self) -> dict[str, Any]:
        """The model's shape: ``family``, ``kind``, ``n_layers``, ``hidden_size``, ``vocab_size``, …"""
        return json.loads(self._native.info_json())

    def tokenize(self, text: str) -> tuple[list[str], list[int]]:
        """The raw tokens (``Ġworld``) and ids of ``text``, without special tokens."""
        return self._native.tokenize(text)

    def token_id(self, token: Union[str, int]) -> int:
        """The id of a token given as an id, a raw token (``"ĠParis"``) or a text that is one
        token (``" Paris"``)."""
        return self._native.token_id(str(token))

    def _captures(self, activations: Optional[bool], attention: Optional[bool], hidden_states: Optional[bool]) -> dict[str, Any]:
        acts = self.collect_activations_flag if activations is None else activations
        return {
            "activations": acts,
            "layers": self.collect_activations_layer_nums if acts else None,
            "attention": self.attention if attention is None else attention,
            "hidden_states": self.hidden_states if hidden_states is None else hidden_states,
        }

    def generate(
        self,
        input_str: str,
        max_length: Optional[int] = 8,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        do_sample: Optional[bool] = False,
        attribution: Sequence[str] = (),
        generate: Optional[int] = None,
        beam_size: int = 1,
        *,
        seed: int = 0,
        attribution_target: str = "prob",
        contrast_with: Union[str, int, None] = None,
        ig_steps: int = 50,
        activations: Optional[bool] = None,
        attention: Optional[bool] = None,
        hidden_states: Optional[bool] = None,
        progress: Optional[bool] = None,
    ) -> OutputSeq:
        """Generates after ``input_str`` and records what the model did (Ecco's ``generate``).

        Args:
            input_str: the prompt.
            max_length: prompt plus generated tokens, when ``generate`` is not given.
            temperature, top_k, top_p: sampling settings (with ``do_sample``; as Ecco,
                ``top_k`` defaults to 50 and ``temperature`` to 1).
            do_sample: seeded sampling (``seed``) instead of greedy decoding.
            attribution: methods to run for every generated token: ``grad_x_input``,
                ``gradient`` (``saliency``), ``integrated_gradients`` (``ig``), ``occlusion``,
                ``attention_rollout`` (``rollout``).
            generate: how many tokens to generate.
            beam_size: 1 (beam search is not supported).
            seed: the sampling seed.
            attribution_target: ``"prob"`` (Ecco) or ``"logit"``.
            contrast_with: contrastive attribution: the target minus this foil token (an id,
                a raw token or a one-token text such as ``" dog"``).
            ig_steps: integrated gradients' number of points (captum's default: 50).
            activations, attention, hidden_states: override ``from_pretrained``'s choice.
            progress: progress bars (default: ``from_pretrained``'s ``verbose``).

        Returns:
            An :class:`OutputSeq`.
        """
        if beam_size != 1:
            raise EccoValueError("beam search is not supported: beam_size must be 1")
        if generate is None:
            if max_length is None:
                raise EccoValueError("give generate (the number of tokens) or max_length")
            n_input = len(self.tokenize(input_str)[1])
            if n_input >= max_length:
                raise EccoValueError(
                    f"max_length set to {max_length} while input token has more tokens ({n_input}). Consider increasing max_length"
                )
            generate = max_length - n_input
        draw, on_progress = reporter(self.verbose if progress is None else progress)
        try:
            native = self._native.generate(
                input_str,
                max_new_tokens=generate,
                sample=bool(do_sample),
                seed=seed,
                temperature=1.0 if temperature is None else temperature,
                top_k=50 if top_k is None else top_k,
                top_p=top_p,
                attribution=list(attribution),
                attribution_target=attribution_target,
                contrast_with=None if contrast_with is None else str(contrast_with),
                ig_steps=ig_steps,
                progress=draw,
                on_progress=on_progress,
                **self._captures(activations, attention, hidden_states),
            )
        finally:
            if on_progress is not None:
                on_progress.close()
        return OutputSeq(native, self.verbose)

    def forward(
        self,
        text: str,
        *,
        attribution: Sequence[str] = (),
        attribution_target: str = "prob",
        contrast_with: Union[str, int, None] = None,
        ig_steps: int = 50,
        activations: Optional[bool] = None,
        attention: Optional[bool] = None,
        hidden_states: Optional[bool] = None,
        mask_topk: int = 10,
        decoder_text: Optional[str] = None,
        progress: Optional[bool] = None,
    ) -> OutputSeq:
        """One forward pass over ``text`` (Ecco's ``lm(inputs)``, which takes the text here).

        On a masked LM (``[MASK]`` in the text) the output holds the predictions at each mask
        (``output.masked_predictions``) and, with ``attribution``, which tokens drove the top
        one. On an encoder-decoder (T5) the decoder reads its start token and
        ``decoder_text``.
        """
        draw, on_progress = reporter(self.verbose if progress is None else progress)
        try:
            native = self._native.forward(
                text,
                attribution=list(attribution),
                attribution_target=attribution_target,
                contrast_with=None if contrast_with is None else str(contrast_with),
                ig_steps=ig_steps,
                mask_topk=mask_topk,
                decoder_text=decoder_text,
                progress=draw,
                on_progress=on_progress,
                **self._captures(activations, attention, hidden_states),
            )
        finally:
            if on_progress is not None:
                on_progress.close()
        return OutputSeq(native, self.verbose)

    def __call__(self, text: str, **kwargs: Any) -> OutputSeq:
        """:meth:`forward`."""
        return self.forward(text, **kwargs)

    def __repr__(self) -> str:
        return repr(self._native)
