"""`portscope watch`: listener events as they happen, one line each, until stopped.

Polls the collector every --interval and prints what changed: `listen`, `unlisten`,
`holders`, `restart` (core/history/events.py says what each means). Listeners that exist
when the watch starts are the present, not news: `--initial` prints them first, as `listen`
events with "at_start": true.

Each line is flushed as it is written, so a script reads it live. The watch has no end of
its own: Ctrl-C ends it with exit 130 (as every command does: the shell's "ended by SIGINT",
which a script can tell apart from a failure), and a reader that goes away (`| head -n 1`)
ends it at once with exit 141 (a broken pipe, as `list | head` gives), without waiting for
the next event to find out.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time
from typing import Any, TextIO

from ..core.collect import default_collector
from ..core.history.events import ListenerEvent, ListenerWatch
from ..core.history.wording import event_json, event_line
from ..core.untrusted import shown
from .common import add_json_arguments, duration_arg, port_arg


def add_parser(sub: Any) -> None:
    p = sub.add_parser("watch", help="print listeners appearing, stopping, changing, restarting")
    p.add_argument("--port", type=port_arg, metavar="P", help="only this port")
    p.add_argument(
        "--interval", type=duration_arg(0.1, 3600, "--interval"), default=1.0, metavar="S",
        help="seconds between polls, 0.1 to 3600 (default 1)",
    )
    add_json_arguments(p, "one JSON object per line")
    p.add_argument(
        "--initial", action="store_true",
        help="first print the listeners already there, as listen events",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    collector = default_collector(polling=True)
    watch = ListenerWatch(port=args.port)
    if out.isatty() and not args.json:
        only = f"port {args.port}" if args.port is not None else "every port"
        print(f"watching {only} every {args.interval:g} s; Ctrl-C to stop", file=sys.stderr)
    said: set[str] = set()  # notes and errors are said once each, not once a poll
    first = True
    while True:
        started = time.monotonic()
        try:
            snap = collector.collect()
        except Exception as exc:  # a watch outlives one failed poll, as the monitor does
            say_once(f"a poll failed: {type(exc).__name__}: {exc}", said)
        else:
            for note in snap.notes:
                say_once(note, said)
            events = watch.update(snap)
            if first and not args.initial:
                events = []  # the present, not news
            first = False
            for event in events:
                emit(event, out, as_json=args.json, pretty=args.pretty)
        if not pause(started + args.interval - time.monotonic(), out):
            raise BrokenPipeError("the reader of stdout went away")


def say_once(message: str, said: set[str]) -> None:
    if message not in said:
        said.add(message)
        print(f"portscope: {shown(message)}", file=sys.stderr, flush=True)


def emit(event: ListenerEvent, out: TextIO, *, as_json: bool, pretty: bool = False) -> None:
    if as_json:
        # ensure_ascii: a non-UTF-8 argv byte survives. One object a line (a script reads
        # lines), compact for a program; indented only when asked (--pretty).
        value = event_json(event)
        if pretty:
            line = json.dumps(value, indent=2)
        else:
            line = json.dumps(value, separators=None if out.isatty() else (",", ":"))
    else:
        line = event_line(event, event.at.astimezone().strftime("%H:%M:%S"))
    out.write(line + "\n")
    out.flush()


def pause(seconds: float, out: TextIO) -> bool:
    """Sleep up to `seconds`; False as soon as nobody can read `out` any more.

    The kernel flags a pipe's write end with POLLERR once its reader has closed (POLLHUP
    for a terminal that hung up), and poll() reports those whatever events were asked for.
    A file or /dev/null never wakes it. Where poll() is missing (Windows), plain sleep: a
    closed pipe is then noticed at the next write.
    """
    seconds = max(0.0, seconds)
    try:
        fd = out.fileno()
    except (AttributeError, ValueError, OSError):
        fd = -1
    if fd < 0 or not hasattr(select, "poll"):
        time.sleep(seconds)
        return True
    poller = select.poll()
    poller.register(fd, 0)
    deadline = time.monotonic() + seconds
    while True:
        ready = poller.poll(max(0, round((deadline - time.monotonic()) * 1000)))
        if any(mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, mask in ready):
            return False
        if time.monotonic() >= deadline:
            return True
