"""Frozen verdicts for the bind panel's Pilot and snapshot tests (no tests in here).

A real TIME_WAIT lasts 60 s and real PIDs change every run, so the screenshots use these;
their words still come from the real advice module, so they read exactly like `check`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from textual.app import App
from textual.pilot import Pilot

from portscope.core.diagnose.advice import Facts, compose
from portscope.core.diagnose.bind_attempt import Attempt
from portscope.core.diagnose.verdict import TimeWaitInfo, Verdict, VerdictKind
from portscope.core.model import Holder, Proto, Socket
from portscope.core.record import replace
from portscope.tui.bind_panel import BindPanel
from tui.tui_fakes import until as wait_until

IN_USE = Attempt("plain", False, 98, "EADDRINUSE", "Address already in use", "bind")
IN_USE_REUSE = Attempt("SO_REUSEADDR", False, 98, "EADDRINUSE", "Address already in use", "bind")
OK = (Attempt("plain", True), Attempt("SO_REUSEADDR", True))
NODE = Holder(
    pid=4242, name="node", user="dev", cmdline=("node", "server.js"),
    started=1_700_000_000.0, cwd="/home/dev/app", ppid=4100,
)
FROZEN_NOW = datetime(2026, 11, 22, 2, 51, 4, tzinfo=timezone.utc)


def frozen_verdict(
    kind: VerdictKind,
    port: int = 8080,
    *,
    expires_in: float | None = 42.4,
    proto: Proto = "tcp",
    count: int = 3,
) -> Verdict:
    attempts: tuple[Attempt, ...] = (IN_USE, IN_USE_REUSE)
    holders: tuple[Holder, ...] = ()
    sockets: tuple[Socket, ...] = ()
    time_wait = None
    suggested: int | None = port + 1
    already = False
    if kind == "free":
        attempts, suggested = OK, None
    elif kind == "listening":
        holders = (NODE,)
        sockets = (Socket("tcp", "ipv4", "0.0.0.0", port, holders, 1234, 1000),)
        already = True
    elif kind == "time_wait":
        time_wait = TimeWaitInfo(count, expires_in, False)
    facts = Facts(
        port=port, address="0.0.0.0", proto=proto, kind=kind, attempts=attempts,
        holders=holders, sockets=sockets, time_wait=time_wait, live=0,
        already_running=already, inherited=(), suggested_port=suggested, is_root=False,
    )
    text = compose(facts)
    return Verdict(
        port=port, address="0.0.0.0", proto=proto, kind=kind, attempts=attempts,
        holders=holders, time_wait=time_wait, sentence=text.sentence,
        explanation=text.explanation, advice=text.advice, suggested_port=suggested,
        already_running=already,
    )


class ScriptedDiagnose:
    """Returns its verdicts in order (then repeats the last) and records every call."""

    def __init__(self, *verdicts: Verdict | Exception) -> None:
        self._script: Iterator[Verdict | Exception] = iter(verdicts)
        self._last: Verdict | Exception = verdicts[-1]
        self.calls: list[tuple[int, str, Proto]] = []

    def __call__(self, port: int, address: str, proto: Proto) -> Verdict:
        self.calls.append((port, address, proto))
        result = next(self._script, self._last)
        if isinstance(result, Exception):
            raise result
        return result


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


class Host(App[None]):
    """The smallest app that can show the panel, as the main app's `b` key will."""

    def __init__(self, panel: BindPanel) -> None:
        super().__init__()
        self.panel = panel

    def on_mount(self) -> None:
        self.push_screen(self.panel)


async def until(pilot: Pilot[None], condition: Callable[[], object], timeout: float = 10) -> None:
    """Let the app run until `condition` holds (the probe runs in a thread), then let the
    message that made it true finish rendering."""
    await wait_until(pilot, condition, timeout)
    await asyncio.sleep(0)
    await pilot.pause()


def hostile_verdict(port: int = 4444) -> Verdict:
    """A verdict whose every line quotes a name a hostile user chose, unescaped (as a core
    that forgot to escape would hand it over): the panel must still show it literally."""
    from hostile import COMM
    from tui.tui_fakes import hostile_holder

    listening = frozen_verdict("listening", port)
    return replace(
        listening,
        holders=(hostile_holder(),),
        sentence=f"Port {port}/tcp is in use: {COMM} [@click=app.quit]x[/] is listening.",
        explanation=(f"{COMM} x[/]y holds it.",),
        advice=(f"Stop it: kill {COMM}", "[b]python: sock.close()[/b]"),
    )
