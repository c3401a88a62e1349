"""Frozen data for the TUI tests and the screenshot script: a scripted snapshot source,
small builders, and one realistic machine. A real kernel cannot make these deterministic
(PIDs, start times, TIME_WAIT timers), so these are the only fakes the TUI tests use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from portscope.core.history.events import Restarter
from portscope.core.history.recorder import History
from portscope.core.model import ClientTimeWait, Holder, PortStats, Snapshot, Socket
from portscope.core.record import replace
from portscope.tui.relatives import Relatives

T0 = datetime(2026, 11, 22, 2, 50, 1, tzinfo=timezone.utc)
BOOT = T0.timestamp() - 3 * 3600  # processes started three hours before the poll


class FakeSource:
    """Returns its scripted snapshots in order, then repeats the last; thread-safe."""

    name = "fake"

    def __init__(self, snapshots: Sequence[Snapshot] = (), error: Exception | None = None):
        self._lock = threading.Lock()
        self._script = list(snapshots)
        self.error = error
        self.calls = 0

    def set(self, snapshot: Snapshot) -> None:
        """What every later poll returns."""
        with self._lock:
            self._script = [snapshot]
            self.error = None

    def collect(self) -> Snapshot:
        with self._lock:
            self.calls += 1
            if self.error is not None:
                raise self.error
            if len(self._script) > 1:
                return self._script.pop(0)
            return self._script[0]


def holder(
    pid: int, name: str, cmd: str = "", user: str = "dev", *, ppid: int = 1,
    cwd: str = "/home/dev/app", age: float = 3600.0,
) -> Holder:
    return Holder(
        pid=pid, name=name, user=user, cmdline=tuple((cmd or name).split()),
        started=T0.timestamp() - age, cwd=cwd, ppid=ppid,
    )


def sock(
    port: int, *holders: Holder, proto: str = "tcp", address: str = "127.0.0.1",
) -> Socket:
    family = "ipv6" if ":" in address else "ipv4"
    return Socket(proto, family, address, port, tuple(holders))  # type: ignore[arg-type]


def snap(
    sockets: Sequence[Socket], ports: Sequence[PortStats] = (), *, at: datetime = T0,
    hidden: int = 0, client: ClientTimeWait | None = None,
) -> Snapshot:
    return Snapshot(
        taken_at=at, sockets=tuple(sockets), ports=tuple(ports), hidden_owners=hidden,
        client_time_wait=client or ClientTimeWait(), source="fake", is_root=False,
    )


def fake_relatives(h: Holder) -> Relatives:
    """Parents from the holder itself, no children: a real psutil lookup of made-up PIDs
    would describe whatever process happens to have that PID on this machine."""
    return Relatives(parent=f"{h.ppid} parent" if h.ppid else None, children=())


# The screenshot machine: a dev box during a load test.
DEMO_MASTER = holder(
    4180, "gunicorn", "/srv/shop/.venv/bin/python /srv/shop/.venv/bin/gunicorn -w 3 "
    "-b 0.0.0.0:8080 shop.wsgi", "www", cwd="/srv/shop", age=7420,
)
DEMO_WORKERS = tuple(
    holder(pid, "gunicorn", " ".join(DEMO_MASTER.cmdline), "www", ppid=4180, cwd="/srv/shop",
           age=7410)
    for pid in (4187, 4188, 4189)
)
_HTTP = holder(31337, "python3", "python3 -m http.server 8000", age=95)
_PG = holder(
    812, "postgres", "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main",
    "postgres", cwd="/var/lib/postgresql/16/main", age=3 * 86400,
)
_AVAHI = holder(655, "avahi-daemon", "avahi-daemon: running [devbox.local]", "avahi",
                cwd="/", age=3 * 86400)
_VITE = holder(27001, "node", "node /home/dev/web/node_modules/.bin/vite --port 5173",
               cwd="/home/dev/web", ppid=26990, age=1500)


def demo_snapshot() -> Snapshot:
    sockets = [
        sock(22, proto="tcp", address="0.0.0.0"),  # sshd, owned by root: hidden to `dev`
        sock(5173, _VITE, address="::1"),
        sock(5353, _AVAHI, proto="udp", address="0.0.0.0"),
        sock(5432, _PG, address="127.0.0.1"),
        sock(8000, _HTTP, address="127.0.0.1"),
        sock(8080, DEMO_MASTER, *DEMO_WORKERS, address="0.0.0.0"),
    ]
    ports = [
        PortStats(5432, time_wait=0, states={"ESTABLISHED": 24}, holders=(_PG,)),
        PortStats(8000, time_wait=3, time_wait_first=12.4, time_wait_last=52.8,
                  states={"ESTABLISHED": 1}, holders=(_HTTP,)),
        PortStats(8080, time_wait=214, time_wait_first=0.7, time_wait_last=59.6,
                  states={"ESTABLISHED": 8, "CLOSE_WAIT": 1}, holders=DEMO_WORKERS),
        PortStats(9000, time_wait=37, time_wait_first=2.1, time_wait_last=41.2),
    ]
    client = ClientTimeWait(
        count=12_004, ports=12_004, by_remote_port=((5432, 11_990), (8080, 14)),
        last_expiry=59.9,
    )
    return snap(sockets, ports, hidden=1, client=client)


async def until(pilot: object, predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the app run until `predicate()` holds; polls arrive from a real thread."""
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.01)


S = TypeVar("S")


async def select_key(app: Any, pilot: Any, key: str) -> None:
    """Wait for the row `key`, then move the cursor onto it as a person would."""
    await until(pilot, lambda: key in app.main.table.rows_shown, timeout=10)
    table = app.main.table
    while getattr(app.selected_row(), "key", None) != key:
        await pilot.press("down" if table.cursor_row < table.get_row_index(key) else "up")


async def open_dialog(app: Any, pilot: Any, key: str, kind: type[S]) -> S:
    """Press `key` and return the dialog it opens (`b` and `k` open theirs once the answer
    is in, or after 0.1 s: wait for it rather than for idle)."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, kind))
    screen = app.screen
    assert isinstance(screen, kind)
    return screen


def demo_relatives(h: Holder) -> Relatives:
    """The demo machine's process tree: gunicorn's master and its three workers."""
    if h.pid == DEMO_MASTER.pid:
        return Relatives("1 systemd", tuple(f"{w.pid} gunicorn" for w in DEMO_WORKERS))
    if h.ppid == DEMO_MASTER.pid:
        return Relatives(f"{DEMO_MASTER.pid} gunicorn", ())
    return Relatives("1 systemd" if h.ppid == 1 else f"{h.ppid} bash", ())


def static_text(static: object) -> str:
    """A Static's text as a person reads it (rendered wide enough not to wrap)."""
    import io

    from rich.console import Console
    from textual.widgets import Static

    assert isinstance(static, Static)
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(static.content)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines())


# A machine where a local user chose every string (tests/hostile.py): names, argv, cwd, a
# user name, the parent's name, and a collector's note that quotes a path.
HOSTILE_USER = "[@click=app.quit]u[/]"
HOSTILE_NOTE = "could not read /proc/net/tcp6 \x1b[2J[/]: permission denied"
# ~13,000 cells, and one 3,000-cell word: both must wrap in the details pane.
LONG_ARGV = (*(f"--option-{i}=[b]{'x' * 30}[/b]" for i in range(300)), "y" * 3000)


# PIDs above any pid_max (2**22 at most): a kill dialog opened on these finds no process.
HOSTILE_PIDS = (9_999_998, 9_999_999)


def hostile_holder(pid: int = HOSTILE_PIDS[0], *, long: bool = False) -> Holder:
    from hostile import ARGS, ARGV0, COMM, CWD_NAME

    argv = (ARGV0, *ARGS, *(LONG_ARGV if long else ()))
    return Holder(
        pid=pid, name=COMM, user=HOSTILE_USER, cmdline=argv, started=T0.timestamp() - 60,
        cwd="/tmp/" + CWD_NAME, ppid=1,
    )


def hostile_snapshot() -> Snapshot:
    """Two hostile listeners (one with a 13,000-cell command line) and one normal one."""
    from portscope.core.record import replace

    sockets = [
        sock(4444, hostile_holder(HOSTILE_PIDS[0]), address="127.0.0.1"),
        sock(4445, hostile_holder(HOSTILE_PIDS[1], long=True), address="127.0.0.1"),
        sock(8000, _HTTP, address="127.0.0.1"),
    ]
    return replace(snap(sockets), notes=(HOSTILE_NOTE,))


def hostile_relatives(h: Holder) -> Relatives:
    from hostile import COMM

    return Relatives(parent=f"1 {COMM}", children=(f"{h.pid + 1} [@click=app.quit]c[/]",))


# -- ten minutes of history for the demo machine (screenshots, event-log pictures) --------

_HTTP_BEFORE = holder(31300, "python3", "python3 -m http.server 8000", age=400, ppid=4242)
_STRAY = holder(4000, "python3", "python3 -m http.server 9000", age=400, ppid=3100)


def _demo_at(second: int) -> Snapshot:
    """The demo machine `second` seconds into the last ten minutes (599: demo_snapshot).

    8080's TIME_WAIT climbs under a load test to 214; a stray server on 9000 listened for
    four minutes and its 37 TIME_WAIT drain; the server on 8000 came back under a new PID,
    started again by its shell loop."""
    final = demo_snapshot()
    at = T0 - timedelta(seconds=599 - second)
    sockets = [s for s in final.sockets if s.port not in (8000,)]
    http = replace(_HTTP, ppid=4242) if second >= 480 else _HTTP_BEFORE
    sockets.append(sock(8000, http, address="127.0.0.1"))
    if 240 <= second < 500:
        sockets.append(sock(9000, _STRAY, address="0.0.0.0"))
    sockets.sort(key=lambda s: (s.port, s.proto))
    load = min(214, max(0, (second - 380) * 2))
    drain = 0 if second < 300 else min(160, (second - 300) * 2) if second < 500 else max(
        37, 160 - (second - 500) * 2
    )
    ports = [p for p in final.ports if p.port not in (8000, 8080, 9000)]
    ports.append(replace(final.port_stats(8080), time_wait=load))  # type: ignore[arg-type]
    # 8000 serves a trickle: a few TIME_WAIT come and go (3 at the end, as demo_snapshot).
    trickle = 3 if second == 599 else (second // 60 * 5) % 7
    ports.append(replace(final.port_stats(8000), time_wait=trickle))  # type: ignore[arg-type]
    ports.append(PortStats(9000, time_wait=drain, time_wait_last=41.2 if drain else None))
    return snap(sockets, sorted(ports, key=lambda p: p.port), at=at, hidden=1,
                client=final.client_time_wait)


def demo_restarter(h: Holder) -> Restarter | None:
    return Restarter(4242, "bash", "shell loop") if h.ppid == 4242 else None


def demo_history() -> History:
    """What the monitor would have seen over the last ten minutes, frozen."""
    history = History(interval=1.0, find_restarter=demo_restarter)
    for second in range(600):
        history.update(_demo_at(second))
    return history
