"""`portscope wait PORT`: block until a server's plain bind() would succeed (with
`--reuseaddr`: the bind of a server that sets SO_REUSEADDR, which TIME_WAIT left by a
SO_REUSEADDR server does not block, so a restart need not wait for it).

Scripts call it between stopping and starting a server. Progress (what still blocks the
port, the TIME_WAIT countdown) goes to stderr; the final "is free" line goes to stdout.
Exit 0 when the port is free, 1 on timeout or when waiting cannot help (privileged port,
foreign address), 2 for bad input. `--host localhost` waits until both 127.0.0.1 and ::1
can be bound.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, TextIO

from ..core.collect import default_collector
from ..core.diagnose.bind_attempt import Bind
from ..core.diagnose.probe import diagnose, first_blocked
from ..core.diagnose.verdict import Verdict
from ..core.model import Proto
from ..core.text import seconds
from ..core.untrusted import fit, shown
from .check_cmd import UNAVAILABLE, add_target_arguments, bind_of, hosts_of, proto_of
from .common import TIMEOUT_MAX, duration_arg, fail
from .terminal import columns

POLL = 0.1  # seconds between plain binds: cheap, and quick to notice the port freeing
DESCRIBE_EVERY = 1.0  # seconds between full diagnoses (a snapshot can cost 100 ms or more)
HOPELESS = ("permission_denied", UNAVAILABLE, "excluded_range")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("wait", help="block until the port can be bound (exit 0), or time out")
    add_target_arguments(p)
    p.add_argument(
        "--timeout", type=duration_arg(0, TIMEOUT_MAX, "--timeout"), metavar="S",
        help=f"give up after S seconds, 0 to {TIMEOUT_MAX:g} (exit 1); default: never",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return wait_free(
        args.port, hosts_of(args), proto_of(args), args.timeout, sys.stderr, bind_of(args)
    )


def wait_free(
    port: int,
    addresses: tuple[str, ...],
    proto: Proto,
    timeout: float | None,
    out: TextIO,
    bind: Bind = "plain",
) -> int:
    """Poll `bind` binds until all succeed; describe what blocks them about once a second."""
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    progress = Progress(out)
    verdict: Verdict | None = None
    described = -math.inf
    collector = default_collector()  # one for the whole wait: warm from the second look on
    while True:
        now = time.monotonic()
        blocked = first_blocked(port, addresses, proto, bind)
        if blocked is None:
            progress.done("")
            where = " and ".join(addresses)
            free = "is free" if bind == "plain" else "can be bound with SO_REUSEADDR"
            print(f"port {port}/{proto} {free} on {where} (waited {now - start:.1f} s)")
            return 0
        if now - described >= DESCRIBE_EVERY or (verdict and verdict.address != blocked):
            verdict = diagnose(port, blocked, proto, suggest=False, collector=collector)
            described = time.monotonic()
            if verdict.kind == UNAVAILABLE and len(addresses) > 1:
                # ::1 on a machine without IPv6: "localhost" is only the other address here.
                addresses = tuple(a for a in addresses if a != blocked)
                verdict = None
                continue
            if verdict.kind in HOPELESS:
                progress.done("")
                return fail(f"waiting will not help: {verdict.sentence}", 1)
        on = f" on {blocked}" if len(addresses) > 1 else ""
        if verdict is not None and not verdict.can_bind(bind):
            progress.show(status(verdict, time.monotonic() - described, on, bind))
        if deadline is not None and time.monotonic() >= deadline:
            held = verdict.sentence if verdict is not None else "it is still in use"
            progress.done("")
            return fail(f"timed out after {timeout:g} s{on}: {held}", 1)
        pause = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
        time.sleep(pause)


def status(v: Verdict, age: float, on: str = "", bind: Bind = "plain") -> str:
    """One line: what blocks the port now, with the TIME_WAIT countdown. Escaped: the
    sentence names the holding process."""
    tw = v.time_wait
    if v.kind == "time_wait" and tw is not None:
        left = None if tw.expires_in is None else tw.expires_in - age
        # SO_REUSEADDR was asked for and still fails: the old server had not set it.
        why = "" if bind == "plain" else " (the old server did not set SO_REUSEADDR)"
        return f"waiting{on}: {tw.count} TIME_WAIT on {v.port}{why}, clears in {seconds(left)}"
    return f"waiting{on}: {shown(v.sentence)}"


class Progress:
    """Rewrites one line on a terminal; elsewhere prints a line only when the text changes
    (ignoring the countdown digits), so logs do not fill with one line per second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = ""

    def show(self, line: str) -> None:
        line = shown(line)  # the \r and \x1b[K below are the only controls written
        if self._tty:
            # One physical line only: \r cannot return to the start of a wrapped one.
            line = fit(line, max(20, columns(self._out) - 1))
            if line == self._last:
                return
            self._out.write("\r\x1b[K" + line)
            self._out.flush()
            self._last = line
            return
        key = "".join(c for c in line if not c.isdigit())
        if key != self._last:
            self._out.write(line + "\n")
            self._out.flush()
            self._last = key

    def done(self, line: str) -> None:
        if self._tty and self._last:
            self._out.write("\r\x1b[K")
        if line:
            self._out.write(shown(line) + "\n")
        self._out.flush()
