"""Progress of long calls: a tqdm bar when tqdm is installed (``tqdm.auto``: a widget in
notebooks, text in terminals), else the Rust side's bar on a terminal, else nothing."""

from __future__ import annotations

from typing import Any, Callable, Optional


class _Tqdm:
    """Receives ``(message, position, length)`` of the running step (a few times a second)
    and mirrors it on one tqdm bar per step."""

    def __init__(self, tqdm: Callable[..., Any]) -> None:
        self._tqdm = tqdm
        self._bar: Any = None
        self._message: Optional[str] = None

    def __call__(self, message: str, position: int, length: int) -> None:
        if self._bar is None or message != self._message:
            self.close()
            self._bar = self._tqdm(total=length, desc=message, leave=False)
            self._message = message
        self._bar.n = position
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def reporter(progress: bool) -> tuple[bool, Optional[_Tqdm]]:
    """Whether the Rust side draws its terminal bar, and the tqdm mirror if any."""
    if not progress:
        return False, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return True, None
    return False, _Tqdm(tqdm)
