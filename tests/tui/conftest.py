"""Every TUI test leaves CPython's garbage collector as it found it: the app takes full
collections over while it runs (tui/gc_pacing.py) and must give them back when it exits."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collector_given_back() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    after, frozen = gc.get_threshold(), gc.get_freeze_count()
    if not gc.isenabled():
        gc.enable()
        pytest.fail("the app left the garbage collector off")
    if after != before or frozen:
        gc.set_threshold(*before)
        gc.unfreeze()
        pytest.fail(f"the app left gc thresholds {after} and {frozen} frozen objects")
