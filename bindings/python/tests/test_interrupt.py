"""Ctrl-C stops a long computation within a second, and the GIL is free while Rust computes."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

import ecco_rs
from conftest import PROMPT

LONG = {"generate": 6, "attribution": ["integrated_gradients"], "ig_steps": 3000}


def test_keyboard_interrupt_stops_integrated_gradients(lm: ecco_rs.LM) -> None:
    # Unstopped, this takes several seconds (checked below by a run the interrupt cannot reach).
    fired: list[float] = []

    def interrupt() -> None:
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    timer = threading.Timer(1.0, interrupt)
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        lm.generate(PROMPT, **LONG)
    stopped = time.perf_counter()
    timer.join()
    assert fired, "the computation ended before the interrupt"
    assert stopped - fired[0] < 1.0, f"stopped {stopped - fired[0]:.2f} s after the interrupt"
    assert stopped - start > 0.9
    # The model is usable afterwards.
    assert lm.generate(PROMPT, generate=1).tokens[-1] == "ĠParis"


def test_the_gil_is_released_while_rust_computes(lm: ecco_rs.LM) -> None:
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.01)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    lm.generate(PROMPT, generate=3, attribution=["integrated_gradients"], ig_steps=600)
    elapsed = time.perf_counter() - start
    done.set()
    counter.join()
    # With the GIL held for the whole call the counter would have moved once or twice; free, it
    # ticks every 10 ms (a busy machine stretches the sleeps, hence the margin).
    assert elapsed > 0.3, "the call was too short to tell"
    assert ticks >= max(10, 0.2 * elapsed / 0.01), (ticks, elapsed)
