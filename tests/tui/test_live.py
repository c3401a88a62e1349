"""The app on the real collector: a listener this test opens shows up with this PID, and
the TIME_WAIT it leaves on its port is counted, on the next poll."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from portscope.core.collect import default_collector
from portscope.core.platform_path import portable
from portscope.tui.app import PortscopeApp
from portscope.tui.port_table import PortTable
from support import make_server_time_wait, tcp_listener
from tui.tui_fakes import until


async def test_new_listener_and_its_time_wait_appear_within_a_poll() -> None:
    app = PortscopeApp(default_collector(), interval=0.25)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        listener = tcp_listener()
        port = listener.getsockname()[1]
        key = f"tcp:ipv4:[127.0.0.1]:{port}"
        table = app.main.query_one(PortTable)
        opened = datetime.now(timezone.utc)
        try:
            # A poll that started after the socket opened shows it (counted in polls, not
            # seconds: a loaded machine may be slow, never wrong). A snapshot is stamped when
            # it is built, so the first one stamped later may have started earlier: the one
            # after it cannot have.
            await until(pilot, lambda: taken_after(app, opened))
            first = app.latest_snapshot
            await until(pilot, lambda: app.latest_snapshot is not first)
            assert key in table.rows_shown
            row = table.rows_shown[key]
            assert os.getpid() in row.socket.pids  # type: ignore[union-attr]
            make_server_time_wait(listener, 5)
            await until(pilot, lambda: table.rows_shown[key].time_wait == 5)
            stats = table.rows_shown[key].stats
            assert stats is not None
            if portable():  # psutil gives no TIME_WAIT timers: unknown, never guessed
                assert stats.time_wait_last is None
            else:
                assert stats.time_wait_last is not None and 0 < stats.time_wait_last <= 60
        finally:
            listener.close()
        # The listener is gone, its TIME_WAIT is not: the port becomes a no-listener row.
        await until(pilot, lambda: f"tcp:port:{port}" in table.rows_shown)
        assert key not in table.rows_shown


def taken_after(app: PortscopeApp, moment: datetime) -> bool:
    snap = app.latest_snapshot
    return snap is not None and snap.taken_at > moment
