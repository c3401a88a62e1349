"""Two processes listening on one address and port with SO_REUSEPORT: two sockets, one row
whose holders are both, in `list`'s rows and in the TUI, and a header count that matches."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable

import pytest

from portscope.core.collect import default_collector
from portscope.core.rows import build_rows, listening_count
from portscope.tui.app import PortscopeApp
from portscope.tui.status_bar import StatusBar
from tui.tui_fakes import until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]

REUSEPORT_LISTENER = """
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", {port})); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""

needs_reuseport = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here"
)


def two_listeners(spawn: Spawn) -> tuple[int, list[int]]:
    first, line = spawn(REUSEPORT_LISTENER.format(port=0))
    port = int(line)
    second, _ = spawn(REUSEPORT_LISTENER.format(port=port))
    return port, sorted([first.pid, second.pid])


@needs_reuseport
def test_both_processes_are_holders_of_one_row(spawn: Spawn) -> None:
    port, pids = two_listeners(spawn)
    snap = default_collector().collect()
    sockets = snap.listeners_on(port)
    assert len(sockets) == 2  # the kernel has two listening sockets ...
    rows = [r for r in build_rows(snap, port) if r.socket is not None]
    assert len(rows) == 1  # ... a person reads one row
    assert [h.pid for h in rows[0].holders] == pids  # every holder, by PID
    assert listening_count(build_rows(snap)) == len({s.key for s in snap.sockets})


@needs_reuseport
async def test_the_tui_shows_both_and_counts_one_row(spawn: Spawn) -> None:
    port, pids = two_listeners(spawn)
    app = PortscopeApp(default_collector(), interval=3600)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        await pilot.pause()
        rows = app.main.table.rows_shown.values()
        with_listener = sum(r.socket is not None for r in rows)
        header = str(app.main.query_one(StatusBar).render())
        match = re.search(r"(\d+) listening", header)
        assert match is not None and int(match.group(1)) == with_listener
        await pilot.press("slash", *str(port), "enter")
        await until(pilot, lambda: app.main.table.row_count == 1)
        row = app.selected_row()
        assert row is not None and [h.pid for h in row.holders] == pids
