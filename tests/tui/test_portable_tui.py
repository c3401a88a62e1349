"""The monitor on the portable path (issue 22), as on macOS and Windows: psutil's collector
fills the rows, the header says which path answered, and `b` and `k` answer on a real
pre-fork server (its master and workers), `k` stopping it and proving the port free."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from textual.widgets import Static

from portscope.core import platform_path
from portscope.core.collect import default_collector
from portscope.core.collect.psutil_collector import PsutilCollector
from portscope.core.model import Snapshot
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.kill_modal import KillModal
from portscope.tui.status_bar import Status, render_status
from support import PREFORK_SERVER, pid_alive, tcp_listener
from tui.tui_fakes import open_dialog, static_text, until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
# psutil's poll reads every socket on the machine (and each holder's relatives' lists): on
# a machine under load-test scale it takes seconds, so the deadlines are generous.
SLOW = 60.0


def test_the_header_names_the_portable_path_only() -> None:
    def header(source: str) -> str:
        snap = Snapshot(datetime.now(timezone.utc), (), (), source=source)
        return render_status(Status(snapshot=snap), timezone.utc).plain

    assert "via psutil (portable)" in header("psutil (portable)")
    assert "via psutil" in header("psutil")  # macOS and Windows
    assert "via" not in header("proc") and "via" not in header("fake")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux made portable")
async def test_rows_b_and_k_on_the_portable_path(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(platform_path.ENV, "1")
    proc, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    port, *workers = (int(x) for x in line.split())
    source = default_collector()
    assert isinstance(source, PsutilCollector)
    app = PortscopeApp(source, interval=0.3)
    key = f"tcp:ipv4:[127.0.0.1]:{port}"
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: key in app.main.table.rows_shown, timeout=SLOW)
        row = app.main.table.rows_shown[key]
        assert row.socket is not None and set(row.socket.pids) == {proc.pid, *workers}
        header = static_text(app.main.query_one("#status", Static))
        assert "via psutil (portable)" in header
        while app.selected_row() is None or app.selected_row().key != key:  # type: ignore[union-attr]
            await pilot.press("down")
        panel = await open_dialog(app, pilot, "b", BindPanel)
        await until(pilot, lambda: panel.verdict is not None, timeout=SLOW)
        assert panel.verdict is not None and panel.verdict.kind == "listening"
        assert {h.pid for h in panel.verdict.holders} == {proc.pid, *workers}
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BindPanel))
        modal = await open_dialog(app, pilot, "k", KillModal)
        await until(pilot, lambda: modal.stage == "confirm", timeout=SLOW)
        assert modal.plan is not None and [t.pid for t in modal.plan.targets] == [proc.pid]
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=SLOW)
        body = static_text(modal.query_one("#kill-body", Static))
        assert f"tcp port {port} is free" in body, body
    assert proc.wait(timeout=10) is not None
    assert not any(pid_alive(w) for w in workers)
    with tcp_listener(port=port):  # the proof, at the kernel: the port binds again
        pass
