"""`portscope wait PORT`: block until a server's plain bind() would succeed.

Scripts call it between stopping and starting a server. Progress (what still blocks the
port, the TIME_WAIT countdown) goes to stderr; the final "is free" line goes to stdout.
Exit 0 when the port is free, 1 on timeout or when waiting cannot help (privileged port,
foreign address), 2 for bad input.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from typing import Any, TextIO

from ..core.diagnose.bind_attempt import try_bind
from ..core.diagnose.probe import diagnose
from ..core.diagnose.verdict import Verdict
from ..core.model import Proto
from ..core.text import seconds
from .check_cmd import add_target_arguments, parse_target
from .common import fail

POLL = 0.1  # seconds between plain binds: cheap, and quick to notice the port freeing
DESCRIBE_EVERY = 1.0  # seconds between full diagnoses (a snapshot can cost 100 ms or more)
HOPELESS = ("permission_denied", "address_not_available")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("wait", help="block until the port can be bound (exit 0), or time out")
    add_target_arguments(p)
    p.add_argument("--timeout", metavar="S", help="give up after S seconds (exit 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = parse_target(args)
    if isinstance(target, str):
        return fail(target)
    timeout = None
    if args.timeout is not None:
        try:
            timeout = float(args.timeout)
        except ValueError:
            return fail(f"--timeout: not a number: {args.timeout!r}")
        if not timeout > 0 or math.isinf(timeout):
            return fail(f"--timeout must be a positive number of seconds, got {args.timeout}")
    port, address, proto = target
    return wait_free(port, address, proto, timeout, sys.stderr)


def wait_free(
    port: int, address: str, proto: Proto, timeout: float | None, out: TextIO
) -> int:
    """Poll a plain bind until it succeeds; describe what blocks it about once a second."""
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    progress = Progress(out)
    verdict: Verdict | None = None
    described = -math.inf
    while True:
        now = time.monotonic()
        if try_bind(port, address, proto, "plain").ok:
            progress.done("")
            print(f"port {port}/{proto} is free on {address} (waited {now - start:.1f} s)")
            return 0
        if now - described >= DESCRIBE_EVERY:
            verdict = diagnose(port, address, proto, suggest=False)
            described = time.monotonic()
            if verdict.kind in HOPELESS:
                progress.done("")
                return fail(f"waiting will not help: {verdict.sentence}", 1)
        if verdict is not None and not verdict.free:
            progress.show(status(verdict, time.monotonic() - described))
        if deadline is not None and time.monotonic() >= deadline:
            blocked = verdict.sentence if verdict is not None else "it is still in use"
            progress.done("")
            return fail(f"timed out after {timeout:g} s: {blocked}", 1)
        pause = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
        time.sleep(pause)


def status(v: Verdict, age: float) -> str:
    """One line: what blocks the port now, with the TIME_WAIT countdown."""
    tw = v.time_wait
    if v.kind == "time_wait" and tw is not None:
        left = None if tw.expires_in is None else tw.expires_in - age
        return f"waiting: {tw.count} TIME_WAIT on {v.port}, clears in {seconds(left)}"
    return f"waiting: {v.sentence}"


class Progress:
    """Rewrites one line on a terminal; elsewhere prints a line only when the text changes
    (ignoring the countdown digits), so logs do not fill with one line per second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = ""

    def show(self, line: str) -> None:
        if self._tty:
            # One physical line only: \r cannot return to the start of a wrapped one.
            line = line[: max(20, shutil.get_terminal_size().columns - 1)]
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
            self._out.write(line + "\n")
        self._out.flush()
