"""`portscope wait PORT`: block until a server's plain bind() would succeed (with
`--reuseaddr`: the bind of a server that sets SO_REUSEADDR, which TIME_WAIT left by a
SO_REUSEADDR server does not block, so a restart need not wait for it). With `--listening`,
the other way round: block until a TCP connect succeeds (the wait-for-it job), also for
`HOST:PORT` on another machine; that only connects, it never binds.

Scripts call it between stopping and starting a server, or before starting what needs a
database. Progress (what still blocks the port, the TIME_WAIT countdown) goes to stderr;
the final "is free" line goes to stdout. Several ports (`wait 5432 6379`, `8000-8002`) are
waited for in turn, within one --timeout. Exit 0 when every port is free (accepts), 1 on
timeout or when waiting cannot help (privileged port, foreign address), 2 for bad input.
`--host localhost` waits until both 127.0.0.1 and ::1 can be bound.
"""

from __future__ import annotations

import argparse
import errno
import math
import socket
import sys
import time
from typing import Any, TextIO

from ..core.collect import default_collector
from ..core.diagnose.bind_attempt import Bind
from ..core.diagnose.probe import diagnose, first_blocked
from ..core.diagnose.verdict import Verdict
from ..core.inputs import parse_connect_host, parse_host, parse_target
from ..core.model import Proto
from ..core.text import seconds
from ..core.untrusted import fit, shown
from .argparser import strict
from .common import TIMEOUT_MAX, add_bind_arguments, duration_arg, fail
from .terminal import columns

POLL = 0.1  # seconds between plain binds: cheap, and quick to notice the port freeing
CONNECT_EVERY = 0.2  # seconds between connects: a remote host sees 5 a second at most
CONNECT_TIMEOUT = 1.0  # seconds one connect may take (a host that drops SYNs)
DESCRIBE_EVERY = 1.0  # seconds between full diagnoses (a snapshot can cost 100 ms or more)
UNAVAILABLE = "address_not_available"
HOPELESS = ("permission_denied", UNAVAILABLE, "excluded_range")

Target = tuple["str | None", tuple[int, ...]]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("wait", help="block until the port can be bound (exit 0), or time out")
    p.add_argument(
        "targets", type=strict(parse_target), nargs="+", metavar="PORT",
        help="a port, a range A-B, a comma list; with --listening also HOST:PORT",
    )
    p.add_argument(
        "--host", default=None, metavar="ADDR",
        help="address to bind (default 0.0.0.0; ::, [::1], any literal address, and "
        "localhost for both 127.0.0.1 and ::1); with --listening, the host to connect to "
        "(default localhost; a name is looked up at each try)",
    )
    add_bind_arguments(p)
    p.add_argument(
        "--listening", action="store_true",
        help="wait until a TCP connect succeeds instead (something accepts on the port)",
    )
    p.add_argument(
        "--timeout", type=duration_arg(0, TIMEOUT_MAX, "--timeout"), metavar="S",
        help=f"give up after S seconds, 0 to {TIMEOUT_MAX:g} (exit 1); default: never",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets: list[Target] = args.targets
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    if args.listening:
        if args.udp or args.reuseaddr:
            return fail("--listening waits for a TCP connect: --udp and --reuseaddr do not "
                        "apply (UDP has no handshake to wait for)")
        try:
            default = parse_connect_host(args.host) if args.host is not None else "localhost"
        except ValueError as exc:
            return fail(str(exc))
        for host, ports in targets:
            for port in ports:
                code = wait_listening(host or default, port, args.timeout, sys.stderr,
                                      deadline=deadline)
                if code:
                    return code
        return 0
    remote = next((host for host, _ in targets if host is not None), None)
    if remote is not None:
        return fail(f"HOST:PORT ({remote}) is for --listening, which connects; to wait for a "
                    "bind on an address of this machine use --host ADDR")
    try:
        hosts = parse_host(args.host) if args.host is not None else ("0.0.0.0",)
    except ValueError as exc:
        return fail(str(exc))
    proto: Proto = "udp" if args.udp else "tcp"
    bind: Bind = "reuseaddr" if args.reuseaddr else "plain"
    for _, ports in targets:
        for port in ports:
            code = wait_free(port, hosts, proto, args.timeout, sys.stderr, bind, deadline=deadline)
            if code:
                return code
    return 0


def wait_free(
    port: int,
    addresses: tuple[str, ...],
    proto: Proto,
    timeout: float | None,
    out: TextIO,
    bind: Bind = "plain",
    done: TextIO | None = None,
    *,
    deadline: float | None = None,
) -> int:
    """Poll `bind` binds until all succeed; describe what blocks them about once a second.
    The final line goes to `done` (stdout; `run` sends it to stderr, COMMAND owns stdout).
    `deadline` (monotonic): where several ports share one `timeout`."""
    start = time.monotonic()
    if deadline is None and timeout is not None:
        deadline = start + timeout
    progress = Progress(out)
    verdict: Verdict | None = None
    described = -math.inf
    # One for the whole wait: warm from the second look on.
    collector = default_collector(polling=True)
    while True:
        now = time.monotonic()
        blocked = first_blocked(port, addresses, proto, bind)
        if blocked is None:
            progress.done("")
            where = " and ".join(addresses)
            free = "is free" if bind == "plain" else "can be bound with SO_REUSEADDR"
            print(f"port {port}/{proto} {free} on {where} (waited {now - start:.1f} s)",
                  file=done or sys.stdout)
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


def wait_listening(
    host: str,
    port: int,
    timeout: float | None,
    out: TextIO,
    done: TextIO | None = None,
    *,
    deadline: float | None = None,
) -> int:
    """Connect until one connect succeeds; say why each failed, once per new reason."""
    start = time.monotonic()
    if deadline is None and timeout is not None:
        deadline = start + timeout
    progress = Progress(out)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        problem = connect_once(host, port, CONNECT_TIMEOUT if left is None else
                               max(0.05, min(CONNECT_TIMEOUT, left)))
        now = time.monotonic()
        if problem is None:
            progress.done("")
            print(f"{where} accepts connections (waited {now - start:.1f} s)",
                  file=done or sys.stdout)
            return 0
        progress.show(f"waiting for {where}: {problem}")
        if deadline is not None and now >= deadline:
            progress.done("")
            return fail(f"timed out after {timeout:g} s: {where}: {problem}", 1)
        pause = CONNECT_EVERY if deadline is None else min(CONNECT_EVERY, deadline - now)
        time.sleep(max(0.0, pause))


def connect_once(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connect to `host`:`port` (any address it resolves to) succeeds, else
    why not. The socket is closed at once: nothing is sent."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve {host} ({getattr(exc, 'strerror', None) or exc})"
    problem = "no address to connect to"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except TimeoutError:
                problem = f"no answer within {timeout:g} s"
                continue
            except OSError as exc:
                refused = exc.errno == errno.ECONNREFUSED
                problem = "connection refused (nothing listens)" if refused else (
                    exc.strerror or str(exc)
                )
                continue
            # With nothing listening on a port of the ephemeral range, Linux may pick that
            # very port as the connect's own source: the socket then connects to itself
            # (TCP simultaneous open). That is not a server.
            if sock.getsockname() == sock.getpeername():
                problem = "connection refused (nothing listens)"
                continue
            return None
    return problem


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
