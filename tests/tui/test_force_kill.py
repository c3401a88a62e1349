"""`K` from the main screen: the kill dialog with SIGKILL as the signal and its own words,
on a real server that ignores SIGTERM, through the real collector and killer."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.tui.app import PortscopeApp
from portscope.tui.kill_modal import FORCE_WORDING, KillModal
from support import TERM_IGNORING_LISTENER, exited, pid_alive
from tui.screen_checks import screen_text
from tui.test_keys_wired import body, select_port
from tui.tui_fakes import static_text, until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def title(app: PortscopeApp) -> str:
    return static_text(app.screen.query_one("#kill-title"))


async def open_force_kill(app: PortscopeApp, pilot: object, port: int) -> KillModal:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await select_port(app, pilot, port)
    await pilot.press("K")
    await until(pilot, lambda: isinstance(app.screen, KillModal))
    modal = app.screen
    assert isinstance(modal, KillModal)
    await until(pilot, lambda: modal.stage == "confirm")
    return modal


async def test_shift_k_sends_sigkill_at_once_with_its_own_confirmation(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)  # SIGTERM would leave it running
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        modal = await open_force_kill(app, pilot, port)
        assert modal.signal_name == "KILL"
        assert title(app) == f"Force-kill what holds tcp port {port}?"
        assert FORCE_WORDING in " ".join(body(app).split())
        assert "y/Enter: send SIGKILL" in screen_text(app)  # on screen, not only in a widget
        assert "Signal: SIG" not in body(app)  # no "SIGTERM, then up to 5 s": no grace
        assert pid_alive(proc.pid)  # nothing is signalled before y
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=10)  # never asks again
        assert exited(proc)
        assert proc.returncode == -signal.SIGKILL
        assert "free" in body(app)


async def test_shift_k_then_n_signals_nothing(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_force_kill(app, pilot, port)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.main)
    assert proc.poll() is None and pid_alive(proc.pid)


async def test_k_keeps_its_sigterm_wording(spawn: Spawn) -> None:
    """The lower-case key is unchanged: SIGTERM first, SIGKILL only when asked again."""
    proc, line = spawn(TERM_IGNORING_LISTENER)
    port = int(line)
    app = PortscopeApp(ProcNetCollector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        await select_port(app, pilot, port)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KillModal))
        modal = app.screen
        assert isinstance(modal, KillModal)
        await until(pilot, lambda: modal.stage == "confirm")
        assert title(app) == f"Stop what holds tcp port {port}?"
        assert "Signal: SIGTERM" in body(app) and "Force-kill" not in body(app)
        assert "y/Enter: send SIGTERM" in screen_text(app)
        await pilot.press("n")
    assert pid_alive(proc.pid)
