"""Type stubs of the native module ``ecco_rs._ecco_rs`` (the Rust half of the package).

Users call the pure-Python layer (``ecco_rs``); these are its building blocks.
"""

from os import PathLike
from typing import Any, Callable, Optional, Union

DEMO_NAME: str

_Progress = Optional[Callable[[str, int, int], None]]

def from_pretrained(name: str, *, device: str = "flex", progress: bool = True) -> Lm: ...
def load(path: Union[str, PathLike[str]], lm: Optional[Lm] = None) -> Output: ...

class Lm:
    @property
    def name(self) -> str: ...
    def info_json(self) -> str: ...
    def tokenize(self, text: str) -> tuple[list[str], list[int]]: ...
    def token_id(self, token: str) -> int: ...
    def generate(
        self,
        text: str,
        *,
        max_new_tokens: int,
        sample: bool,
        seed: int,
        temperature: float,
        top_k: Optional[int],
        top_p: Optional[float],
        attribution: list[str],
        attribution_target: str,
        contrast_with: Optional[str],
        ig_steps: int,
        activations: bool,
        layers: Optional[list[int]],
        hidden_states: bool,
        attention: bool,
        progress: bool,
        on_progress: _Progress,
    ) -> Output: ...
    def forward(
        self,
        text: str,
        *,
        attribution: list[str],
        attribution_target: str,
        contrast_with: Optional[str],
        ig_steps: int,
        activations: bool,
        layers: Optional[list[int]],
        hidden_states: bool,
        attention: bool,
        mask_topk: int,
        decoder_text: Optional[str],
        progress: bool,
        on_progress: _Progress,
    ) -> Output: ...

class Output:
    def trace_json(self) -> str: ...
    def tensor_names(self) -> list[str]: ...
    def tensor(self, name: str) -> Tensor: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    def token_id(self, token: str) -> int: ...
    def with_attributions(
        self,
        methods: list[str],
        *,
        attribution_target: str,
        contrast_with: Optional[str],
        ig_steps: int,
        progress: bool,
        on_progress: _Progress,
    ) -> Optional[Output]: ...
    def with_model(self, lm: Lm) -> Output: ...
    def primary_attributions(self, method: str) -> tuple[View, list[list[float]]]: ...
    def layer_predictions(self, position: int, topk: int, layer: Optional[int], lens: str) -> tuple[View, str]: ...
    def rankings(self, lens: str) -> tuple[View, list[list[int]]]: ...
    def rankings_watch(self, watch: list[int], position: int, lens: str) -> tuple[View, list[list[int]]]: ...
    def run_nmf(
        self,
        *,
        components: int,
        from_layer: Optional[int],
        to_layer: Optional[int],
        layers: Optional[list[int]],
        seed: int,
        max_iter: int,
        tol: float,
        top_neurons: int,
        progress: bool,
    ) -> Nmf: ...
    def report(
        self,
        *,
        title: Optional[str],
        lens: str,
        position: Optional[int],
        topk: int,
        watch: Optional[list[int]],
        components: int,
        attention_topk: int,
        progress: bool,
    ) -> View: ...

class Tensor:
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    @property
    def name(self) -> str: ...

class View:
    def to_html(self) -> str: ...
    def to_json(self) -> str: ...
    @property
    def title(self) -> str: ...

class Nmf:
    def explore(self) -> View: ...
    @property
    def components(self) -> list[list[float]]: ...
    def loadings_json(self) -> str: ...
    @property
    def layers(self) -> list[int]: ...
    @property
    def reconstruction_error(self) -> float: ...
    @property
    def n_iter(self) -> int: ...
    @property
    def converged(self) -> bool: ...
    @property
    def clamped_from(self) -> Optional[int]: ...
