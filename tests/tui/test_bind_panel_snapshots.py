"""Screenshots of the bind panel with frozen verdicts and a frozen clock, at two sizes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from portscope.core.diagnose.verdict import VerdictKind
from portscope.tui.bind_panel import BindPanel
from tui.test_bind_panel_fakes import (
    FROZEN_NOW,
    FakeClock,
    Host,
    ScriptedDiagnose,
    frozen_verdict,
    until,
)

SIZES = [(80, 24), (120, 36)]


def host(kind: VerdictKind) -> Host:
    panel = BindPanel(
        8080,
        diagnose=ScriptedDiagnose(frozen_verdict(kind)),
        clock=FakeClock(),
        now=lambda: FROZEN_NOW,
    )
    return Host(panel)


def settled(app: Host) -> Callable[[Pilot[None]], object]:
    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.panel.verdict is not None)
        for field in app.panel.query(Input).results(Input):
            field.cursor_blink = False  # a blinking cursor would make the picture flaky
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_listening(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    app = host("listening")
    assert snap_compare(app, terminal_size=size, run_before=settled(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_time_wait(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    app = host("time_wait")
    assert snap_compare(app, terminal_size=size, run_before=settled(app))
