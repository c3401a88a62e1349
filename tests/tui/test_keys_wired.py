"""`b` and `k` from the main screen, end to end: the real collector, a real server this
test started, the real probe and the real killer."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from textual.pilot import Pilot

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.kill_modal import KillModal
from support import ROOT_LISTENER, pid_alive
from tui.tui_fakes import static_text, until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


async def select_port(app: PortscopeApp, pilot: Pilot[None], port: int) -> None:
    await until(pilot, lambda: app.latest_snapshot is not None)
    await pilot.press("slash", *str(port), "enter")
    await until(pilot, lambda: (row := app.selected_row()) is not None and row.port == port)


def body(app: PortscopeApp) -> str:
    return static_text(app.screen.query_one("#kill-body"))


async def open_kill_dialog(app: PortscopeApp, pilot: Pilot[None], port: int) -> KillModal:
    await select_port(app, pilot, port)
    await pilot.press("k")
    # The dialog opens once its plan is in (or after 0.1 s): wait for it, not for idle.
    await until(pilot, lambda: isinstance(app.screen, KillModal))
    modal = app.screen
    assert isinstance(modal, KillModal)
    await until(pilot, lambda: modal.stage == "confirm")
    return modal


async def test_k_then_y_stops_the_server_and_says_the_port_is_free(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        modal = await open_kill_dialog(app, pilot, port)
        assert str(proc.pid) in body(app) and pid_alive(proc.pid)
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=10)
        assert proc.wait(timeout=5) is not None
        assert "free" in body(app)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main)
        # the kill asked for a poll: the row is gone without waiting for the 1 h interval
        await until(pilot, lambda: not app.latest_snapshot.listeners_on(port))  # type: ignore[union-attr]


async def test_k_then_n_signals_nothing(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_kill_dialog(app, pilot, port)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.main)
    assert proc.poll() is None and pid_alive(proc.pid)


async def test_b_probes_the_selected_port_at_once(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        await select_port(app, pilot, port)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BindPanel))
        panel = app.screen
        assert isinstance(panel, BindPanel)
        await until(pilot, lambda: getattr(panel, "verdict", None) is not None, timeout=10)
        verdict = panel.verdict
        assert verdict is not None and verdict.kind == "listening"
        assert proc.pid in {h.pid for h in verdict.holders}
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
    assert proc.poll() is None  # a probe never touches the holder
