"""The first frame: the sockets alone (no process looked up), shown before the first whole
poll, whose walk of every fd table takes a second and more at 2,000 processes. The sketch
says its holders are being looked up, feeds no trend or event, and leaves no cell behind."""

from __future__ import annotations

import threading
from datetime import timezone

import pytest

from portscope.core.collect import NOT_LOOKED_UP, proc_collector
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.model import Snapshot
from portscope.core.record import replace
from portscope.tui.app import PortscopeApp
from portscope.tui.port_table import PortTable
from portscope.tui.rows import LOOKING_UP, LOOKING_UP_ALL, UNKNOWN
from portscope.tui.status_bar import StatusBar
from support import make_server_time_wait, quiet_port, tcp_listener
from tui.tui_fakes import fake_relatives, holder, snap, sock, until

WHOLE = snap([sock(8080, holder(4242, "gunicorn")), sock(9090)], hidden=1)
SKETCH = replace(snap([sock(8080), sock(9090)], hidden=2), notes=(NOT_LOOKED_UP,))


class SlowOwners:
    """A narrowing source: the sockets alone at once; the whole poll only once released
    (as a cold fd walk would take its time)."""

    name = "fake"
    narrows = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[bool | None] = []

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        self.asked.append(owners)
        if owners is False:
            return SKETCH
        self.release.wait(10)
        return WHOLE


def _cells(app: PortscopeApp) -> list[str]:
    table = app.main.query_one(PortTable)
    return [cell for key in table.ordered_keys for cell in table.get_row(key)]


async def test_the_sockets_show_first_then_their_holders() -> None:
    source = SlowOwners()
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, sketch=True
    )
    updates: list[Snapshot] = []
    update = app.history.update
    app.history.update = lambda s: updates.append(s) or update(s)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main.query_one(PortTable)
        await until(pilot, lambda: len(table.rows_shown) == 2)
        cells = _cells(app)
        assert "…" in cells and "gunicorn" not in cells
        await pilot.resize_terminal(80, 30)  # new columns: the sketch's cells, made again
        await until(pilot, lambda: table.narrow)
        assert "…" in _cells(app) and "(hidden)" not in _cells(app)
        header = str(app.main.query_one(StatusBar).render())
        assert LOOKING_UP in header
        assert NOT_LOOKED_UP not in header and "hidden owner" not in header
        assert app.latest_snapshot is None  # no trend, event or `b`/`k` rests on it
        source.release.set()
        await until(pilot, lambda: app.latest_snapshot is WHOLE)
        await pilot.pause()
        cells = _cells(app)
        assert "gunicorn" in cells and "…" not in cells
        assert "(hidden)" in cells  # 9090 really has no visible holder: said so now
        header = str(app.main.query_one(StatusBar).render())
        assert LOOKING_UP not in header
        assert source.asked[:2] == [False, True]
        assert updates and all(s is WHOLE for s in updates)  # trends and events: whole polls


async def test_no_sketch_unless_asked() -> None:
    source = SlowOwners()
    source.release.set()
    app = PortscopeApp(source, interval=3600, tz=timezone.utc, relatives=fake_relatives)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is WHOLE)
        assert False not in source.asked


class OffersSketch(SlowOwners):
    """A source that says whether a sketch is worth drawing (ProcNetCollector.sketch)."""

    def __init__(self, worth: bool) -> None:
        super().__init__()
        self.worth = worth

    def sketch(self) -> Snapshot | None:
        self.asked.append(False)
        return SKETCH if self.worth else None


@pytest.mark.parametrize("worth", [True, False], ids=["heavy", "quick"])
async def test_the_source_decides_whether_the_sockets_show_first(worth: bool) -> None:
    """A first whole poll that will be quick is the first frame itself: a sketch before it
    would only delay the frame naming the processes."""
    source = OffersSketch(worth)
    if not worth:
        source.release.set()  # no sketch to look at before the whole poll
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, sketch=True
    )
    shown: list[bool] = []
    receive = app.main.receive
    app.main.receive = (  # type: ignore[method-assign]
        lambda snapshot, ready: shown.append(ready.sketch) or receive(snapshot, ready)
    )
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: bool(shown))
        assert shown == [worth]
        source.release.set()
        await until(pilot, lambda: app.latest_snapshot is WHOLE)
    assert shown[-1] is False and shown.count(True) == int(worth)
    assert source.asked[:2] == [False, True]  # the offer asked for, then the whole poll


class SlowWholePolls:
    """The real collector, whose whole polls wait until released: its sketch, the
    listeners alone (no TIME_WAIT: 100,000 of them cost ~0.5 s), is what the first frame
    shows (drawn here whatever the machine: the thresholds are set to none)."""

    narrows = True

    def __init__(self) -> None:
        self.real = ProcNetCollector()
        self.name = self.real.name
        self.release = threading.Event()
        self.sketched = 0

    def sketch(self) -> Snapshot | None:
        self.sketched += 1
        return self.real.sketch()

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        self.release.wait(10)
        return self.real.collect(port, owners=owners)


async def test_the_first_frame_shows_real_listeners_before_their_time_wait_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proc_collector, "SKETCH_PROCESSES", 0)
    with tcp_listener(port=quiet_port()) as listener:
        make_server_time_wait(listener, 3)
        key = f"tcp:ipv4:[127.0.0.1]:{listener.getsockname()[1]}"
        source = SlowWholePolls()
        app = PortscopeApp(
            source, interval=3600, tz=timezone.utc, relatives=fake_relatives, sketch=True
        )
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.main.query_one(PortTable)
            await until(pilot, lambda: key in table.rows_shown)
            assert table.get_cell(key, "time_wait") == UNKNOWN  # not "none": not read yet
            assert table.get_cell(key, "process") == UNKNOWN
            assert LOOKING_UP_ALL in str(app.main.query_one(StatusBar).render())
            assert source.sketched == 1
            source.release.set()
            await until(pilot, lambda: app.latest_snapshot is not None)
            await pilot.pause()
            assert table.get_cell(key, "time_wait").startswith("3, clears in")
            assert LOOKING_UP_ALL not in str(app.main.query_one(StatusBar).render())


def test_the_portable_path_always_draws_the_sockets_first() -> None:
    """The psutil collector (macOS, Windows, PORTSCOPE_PORTABLE) cannot tell whether its
    first whole poll will be quick: the monitor's source (WithContainers, as run_tui makes
    it) gives its sockets without owners first, every time."""
    from portscope.core.collect.psutil_collector import PsutilCollector
    from portscope.core.roles.published import WithContainers
    from portscope.tui.poller import Poller
    from portscope.tui.rows import sketch_rows

    source = WithContainers(PsutilCollector())
    poller = Poller(source, 3600, lambda message: None, sketch=sketch_rows)
    assert poller._sketch is not None  # a source that narrows is asked for a sketch
    sockets = poller._sockets()
    assert sockets is not None and NOT_LOOKED_UP in sockets.notes
    assert sketch_rows(sockets).sketch
