"""Full garbage collections on the app's schedule, not CPython's: none before the first
poll, frozen start-up objects, no automatic generation-2 pass, and one only when no key
waits on it (tui/gc_pacing.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from portscope.tui import gc_pacing
from portscope.tui.app import PortscopeApp
from portscope.tui.gc_pacing import LONGEST, PERIOD, QUIET, FullCollections
from tui.tui_fakes import FakeSource, demo_snapshot, until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pacing() -> Iterator[tuple[FullCollections, Clock]]:
    clock = Clock()
    paced = FullCollections(clock)
    before = gc.get_threshold()
    try:
        yield paced, clock
    finally:
        paced.stop()
        gc_pacing._back_on()  # a test that turned it off and never on
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _full_passes_while(action: object) -> int:
    """How many generation-2 collections CPython runs while `action()` runs."""
    passes = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal passes
        if phase == "start" and info["generation"] == 2:
            passes += 1

    gc.callbacks.append(count)
    try:
        action()  # type: ignore[operator]
    finally:
        gc.callbacks.remove(count)
    return passes


def _churn() -> None:
    """Enough surviving cyclic garbage for CPython to start full collections by itself."""
    kept: list[object] = []
    for i in range(400_000):
        cycle: list[object] = []
        cycle.append(cycle)
        kept.append(cycle)
        if i % 50_000 == 0:
            kept.clear()


def test_started_it_freezes_and_cpython_runs_no_full_collection(
    pacing: tuple[FullCollections, Clock],
) -> None:
    paced, _ = pacing
    assert _full_passes_while(_churn) > 0  # the churn does make CPython run them
    paced.start()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == gc_pacing.NEVER
    assert _full_passes_while(_churn) == 0
    paced.stop()  # CPython's own schedule is back
    assert _full_passes_while(_churn) > 0


def test_what_lives_after_the_second_poll_is_frozen_too(
    pacing: tuple[FullCollections, Clock],
) -> None:
    paced, _ = pacing
    paced.freeze_more()  # not started: nothing frozen
    assert gc.get_freeze_count() == 0
    paced.start()
    frozen = gc.get_freeze_count()
    built = [[i] for i in range(10_000)]  # a collector's state, made after the first poll
    paced.freeze_more()
    assert gc.get_freeze_count() >= frozen + len(built)


def test_a_full_collection_waits_for_its_period_and_a_quiet_keyboard(
    pacing: tuple[FullCollections, Clock],
) -> None:
    paced, clock = pacing
    assert not paced.tick()  # not started: CPython's business
    paced.start()
    clock.now += PERIOD - 0.1
    assert not paced.tick()
    clock.now += 0.2
    paced.key_pressed()
    assert not paced.tick()  # a key just now: its answer may be on its way
    clock.now += QUIET
    assert not paced.tick(busy=True)  # a dialog's answer is on its way
    assert _full_passes_while(lambda: paced.tick()) == 1 and paced.runs == 1
    assert not paced.tick()  # the period starts again


def test_keys_that_never_stop_do_not_put_it_off_for_ever(
    pacing: tuple[FullCollections, Clock],
) -> None:
    paced, clock = pacing
    paced.start()
    for _ in range(int(LONGEST / QUIET)):
        clock.now += QUIET / 2
        paced.key_pressed()
        assert not paced.tick()
        clock.now += QUIET / 2
    clock.now += 0.1
    paced.key_pressed()
    assert paced.tick() and paced.runs == 1


async def test_the_app_takes_over_after_its_first_poll_and_gives_back_on_exit() -> None:
    before = gc.get_threshold()
    app = PortscopeApp(FakeSource([demo_snapshot()]), interval=3600)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.full_collections.started)
        assert gc.get_threshold()[2] == gc_pacing.NEVER and gc.get_freeze_count() > 0
        heard = app.full_collections.last_key
        await pilot.press("s")  # any key: the app hears it before its bindings do
        assert app.full_collections.last_key > heard
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_off_until_the_first_poll_then_on_and_frozen(
    pacing: tuple[FullCollections, Clock],
) -> None:
    """The monitor's start (launch.py) runs no collection at all; start() turns them on."""
    paced, _ = pacing
    gc_pacing.off_until_started()
    assert not gc.isenabled()
    assert _full_passes_while(_churn) == 0 and gc.get_count()[0] > 0  # not even young ones
    paced.start()
    assert gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.get_count()[0] < 100  # start() collected what had piled up


def test_no_first_poll_within_a_minute_gives_cpython_its_collections_back(
    pacing: tuple[FullCollections, Clock],
) -> None:
    paced, clock = pacing
    gc_pacing.off_until_started()
    clock.now += LONGEST - 1
    assert not paced.tick() and not gc.isenabled()
    clock.now += 1
    assert not paced.tick()  # not started: no full collection of its own
    assert gc.isenabled() and not paced.started
    paced.start()  # a first poll, late: the schedule as usual
    assert gc.isenabled() and gc.get_threshold()[2] == gc_pacing.NEVER


async def test_the_monitor_started_with_collections_off_turns_them_on_at_its_first_poll() -> (
    None
):
    gc_pacing.off_until_started()
    try:
        app = PortscopeApp(FakeSource([demo_snapshot()]), interval=3600)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.full_collections.started)
            assert gc.isenabled()
    finally:
        gc_pacing._back_on()
