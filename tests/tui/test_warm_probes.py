"""`b` and `k` answer from the monitor's own collector (warm: its owner index is current),
never from a new one: with `default_collector` made to fail, both still answer."""

from __future__ import annotations

import os

import pytest
from textual.widgets import Static

import portscope.core.collect as collect
import portscope.core.diagnose.probe as probe
from portscope.core.collect import default_collector
from portscope.core.roles.published import WithContainers
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.kill_modal import KillModal
from support import tcp_listener
from tui.tui_fakes import open_dialog, static_text, until


async def test_b_and_k_reuse_the_monitors_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    source = WithContainers(default_collector())
    app = PortscopeApp(source, interval=0.3)

    def no_second_collector() -> object:
        raise AssertionError("a probe built a second collector")

    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        key = f"tcp:ipv4:[127.0.0.1]:{port}"
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: key in app.main.table.rows_shown, timeout=10)
            # Wherever a probe, the kill planner or the after-check would build one.
            monkeypatch.setattr(collect, "default_collector", no_second_collector)
            monkeypatch.setattr(probe, "default_collector", no_second_collector)
            while app.selected_row() is None or app.selected_row().key != key:  # type: ignore[union-attr]
                await pilot.press("down")
            panel = await open_dialog(app, pilot, "b", BindPanel)
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            assert panel.verdict is not None and panel.verdict.kind == "listening"
            assert [h.pid for h in panel.verdict.holders] == [os.getpid()]
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, BindPanel))
            modal = await open_dialog(app, pilot, "k", KillModal)
            await until(pilot, lambda: modal.stage == "confirm", timeout=10)
            # The holder is this test (portscope's own process): refused, never signalled.
            body = static_text(modal.query_one("#kill-body", Static))
            assert f"PID {os.getpid()} is portscope itself" in body
            await pilot.press("escape")
