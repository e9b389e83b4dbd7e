"""The exceptions ecco_rs raises.

Every error of the Rust side is an :class:`EccoError`; invalid input is also a
``ValueError`` (:class:`EccoValueError`), a missing model, file or trace also a
``FileNotFoundError`` (:class:`EccoFileNotFoundError`), so ``except ValueError`` works as
it would with any Python library. The message is the one line the ``ecco`` command prints.
Ctrl-C during a long call raises ``KeyboardInterrupt`` and stops the computation.
"""


class EccoError(Exception):
    """An error of ecco_rs (the Rust side's one-line message)."""


class EccoValueError(EccoError, ValueError):
    """Invalid input: an empty prompt, an unknown method, a position out of range, …"""


class EccoFileNotFoundError(EccoError, FileNotFoundError):
    """A model, checkpoint file or trace that is not there."""
