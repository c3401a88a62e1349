"""Issue 19's keys for looking, through the real app: ctrl+c, Pause/Resume in the footer,
`r`, `t`, `a`, `S` and a click on a column's header. `a` and `r` run on real sockets this
test opens; the rest on the frozen demo machine (tui_fakes), whose rows never change."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from datetime import timedelta

from textual.pilot import Pilot

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.record import replace
from portscope.tui.app import PortscopeApp
from portscope.tui.footer import FittingFooter
from portscope.tui.port_table import PADDING, PortTable
from tui.screen_checks import screen_lines
from tui.test_app import _status, make_app, ports_in_order, refresh, started
from tui.test_keys_wired import select_port
from tui.tui_fakes import T0, FakeSource, demo_snapshot, holder, snap, sock, static_text, until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]

# Listens, accepts one connection and keeps it open (never closes it: once the client
# closes, the server's end waits in CLOSE_WAIT).
ACCEPTING_SERVER = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
print("accepted", flush=True)
while True:
    time.sleep(1)
"""


def details(app: PortscopeApp) -> str:
    return static_text(app.main.query_one("#details-body"))


def footer_line(app: PortscopeApp) -> str:
    return screen_lines(app)[-1]


async def quits(app: PortscopeApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: app.return_code is not None or not app.is_running)


async def test_ctrl_c_quits_from_the_table() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+c")
        await quits(app, pilot)
    assert app.return_code == 0 and app.crash is None


async def test_ctrl_c_quits_from_the_filter_input_and_a_dialog() -> None:
    """Priority: the input's own ctrl+c (copy) and the help screen do not swallow it."""
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("slash", "8")
        assert app.main.query_one("#filter-input").has_focus
        await pilot.press("ctrl+c")
        await quits(app, pilot)
    helped = make_app(demo_snapshot())
    async with helped.run_test(size=(120, 36)) as pilot:
        await started(helped, pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: helped.screen is not helped.main)
        await pilot.press("ctrl+c")
        await quits(helped, pilot)


async def test_the_footer_says_resume_while_paused() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        footer = app.main.query_one(FittingFooter)
        await until(pilot, lambda: "p Pause" in footer_line(app))
        assert "Resume" not in footer_line(app)
        await pilot.press("p")
        await until(pilot, lambda: "p Resume" in footer_line(app))
        assert "Pause" not in footer_line(app) and "resume" in footer.shown_actions()
        assert "PAUSED" in _status(app)
        await pilot.press("p")
        await until(pilot, lambda: "p Pause" in footer_line(app))
        assert "PAUSED" not in _status(app)


async def test_r_polls_now_and_while_paused_shows_one_poll_and_stays_paused() -> None:
    app = make_app(demo_snapshot())  # a 1 h interval: only `r` polls
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        source = app.source
        assert isinstance(source, FakeSource)
        newer = snap([sock(7000, holder(70, "seven"))], at=T0 + timedelta(seconds=5))
        source.set(newer)
        await pilot.press("r")
        await until(pilot, lambda: ports_in_order(app) == [7000])
        assert "polled 02:50:06" in _status(app)

        await pilot.press("p")
        calls = source.calls
        paused_poll = snap([sock(7001, holder(71, "later"))], at=T0 + timedelta(seconds=9))
        source.set(paused_poll)
        await pilot.press("r")
        await until(pilot, lambda: ports_in_order(app) == [7001])
        assert source.calls == calls + 1  # one poll, not the beat restarted
        status = _status(app)
        assert "PAUSED" in status and "showing the poll of 02:50:10" in status
        assert app.main.paused


async def test_t_cycles_tcp_udp_and_both_and_the_header_says_which() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        assert "TCP and UDP" in _status(app)
        await pilot.press("down", "down", "down")  # 5432 postgres: a TCP row
        picked = app.selected_row()
        assert picked is not None and picked.port == 5432
        await pilot.press("t")
        assert "TCP only" in _status(app)
        assert ports_in_order(app) == [22, 5173, 5432, 8000, 8080, 9000]  # not UDP 5353
        assert app.selected_row() == picked  # the cursor kept its row
        await pilot.press("t")
        assert "UDP only" in _status(app) and ports_in_order(app) == [5353]
        await pilot.press("t")
        assert "TCP and UDP" in _status(app) and len(ports_in_order(app)) == 7


async def test_a_lists_every_socket_of_the_port_and_r_shows_close_wait(spawn: Spawn) -> None:
    proc, line = spawn(ACCEPTING_SERVER)
    port = int(line)
    client = socket.create_connection(("127.0.0.1", port))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "accepted"
        app = PortscopeApp(ProcNetCollector(), interval=3600)
        async with app.run_test(size=(120, 36)) as pilot:
            await select_port(app, pilot, port)
            assert "every socket" not in details(app)
            await pilot.press("a")
            shown = details(app)
            assert f"every socket on tcp port {port}" in shown
            assert "LISTEN" in shown and "127.0.0.1" in shown and f"PID {proc.pid}" in shown
            assert "ESTABLISHED 1" in shown  # the server's end of our connection
            assert f"connections held by PID {proc.pid}" in shown

            client.close()  # the server never closes its end: CLOSE_WAIT
            await pilot.press("r")
            await until(pilot, lambda: "CLOSE_WAIT  1" in details(app), timeout=10)
            assert "ESTABLISHED" not in details(app)
            await pilot.press("a")  # again: back to the holders
            assert "every socket" not in details(app)
            assert f"PID {proc.pid}" in details(app)
    finally:
        client.close()


def header_x(table: PortTable, column: str) -> int:
    """The cell offset of `column`'s header, for a click on it."""
    x = 0
    for key in table.column_keys:
        if key == column:
            return x + 1
        x += table.column_width(key) + 2 * PADDING
    raise AssertionError(f"no column {column}")


async def test_a_header_click_sorts_by_its_column_and_again_reverses() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        table = app.main.table
        await pilot.press("down", "down", "down", "down")  # :8000, PID 31337
        picked = app.selected_row()
        assert picked is not None and picked.port == 8000

        await pilot.click(PortTable, offset=(header_x(table, "pids"), 0))
        assert "sort PID ▲" in _status(app)
        assert ports_in_order(app) == [5353, 5432, 8080, 5173, 8000, 22, 9000]
        assert app.selected_row() == picked
        assert ("pids", "PID", True) in table.column_labels()  # its header underlined

        await pilot.click(PortTable, offset=(header_x(table, "pids"), 0))
        assert "sort PID ▼" in _status(app)
        assert ports_in_order(app) == [9000, 22, 8000, 5173, 8080, 5432, 5353]
        assert app.selected_row() == picked

        await pilot.press("S")  # S reverses too: back to the lowest PID first
        assert "sort PID ▲" in _status(app)
        assert ports_in_order(app)[0] == 5353

        await pilot.click(PortTable, offset=(header_x(table, "user"), 0))
        assert "sort user ▲" in _status(app)
        assert ports_in_order(app) == [5353, 5173, 8000, 5432, 8080, 22, 9000]
        assert app.selected_row() == picked

        await pilot.click(PortTable, offset=(header_x(table, "time_wait"), 0))
        assert "sort TIME_WAIT ▼" in _status(app)  # busiest first
        assert ports_in_order(app)[:3] == [8080, 9000, 8000]


async def test_a_reversed_sort_holds_through_a_refresh() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("S")
        assert ports_in_order(app) == [9000, 8080, 8000, 5432, 5353, 5173, 22]
        old = demo_snapshot()
        newer = replace(old, sockets=(sock(3000, holder(555, "rails")), *old.sockets),
                        taken_at=T0 + timedelta(seconds=1))
        await refresh(app, pilot, newer)
        assert ports_in_order(app) == [9000, 8080, 8000, 5432, 5353, 5173, 3000, 22]
