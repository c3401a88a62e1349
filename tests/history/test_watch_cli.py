"""`portscope watch` as a script sees it: a real process printing JSON lines live, ended by
Ctrl-C or by a reader that went away."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from hostile import COMM, SHOWN_COMM, spawn_hostile
from real_servers import missing
from support import reap, spawn_python, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, poll()")

WATCH = [sys.executable, "-m", "portscope", "watch"]

# A listener that keeps running (a busy server). The watch polls on its own clock, and the
# collector reads the socket table and then the processes' fds: a socket opened between the
# two by a process that then sleeps stays without holders until the next full fd walk
# (reported); one whose process runs again is found at the next poll.
BUSY_LISTENER = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(0.005)
"""


def default_sigint() -> None:
    # A test runner started in the background inherits SIGINT ignored; Python then keeps
    # it ignored. The watch must see Ctrl-C as a person's terminal delivers it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Lines:
    """A child's stdout, line by line, with a deadline per wait."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        self.seen: list[str] = []

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, match: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if match(line):
                return line
        raise AssertionError(f"no such line; got {self.seen[-5:]!r}")


def start_watch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, preexec_fn=default_sigint,
    )


def on_port(port: int, event: str) -> Callable[[str], bool]:
    def match(line: str) -> bool:
        data = json.loads(line)
        return bool(data["port"] == port and data["event"] == event)

    return match


def test_watch_json_prints_listen_and_unlisten_live_and_ctrl_c_ends_it() -> None:
    with tcp_listener() as sentinel:
        sentinel_port = sentinel.getsockname()[1]
        watch = start_watch("--json", "--initial", "--interval", "0.2")
        child = None
        try:
            lines = Lines(watch)
            # --initial: the present first; once it is printed the watch has its baseline.
            lines.until(on_port(sentinel_port, "listen"))
            child, out = spawn_python(BUSY_LISTENER)
            port = int(out)
            listen = json.loads(lines.until(on_port(port, "listen")))
            reap(child)
            unlisten = json.loads(lines.until(on_port(port, "unlisten")))
            watch.send_signal(signal.SIGINT)
            _, err = watch.communicate(timeout=20)
        finally:
            if child is not None:
                reap(child)
            if watch.poll() is None:
                watch.kill()
                watch.wait()
    assert watch.returncode == 130
    assert err == ""  # quiet: no traceback, no message
    assert set(listen) == {"schema", "at", "event", "proto", "family", "address", "port", "pids",
                           "names", "at_start"}
    assert (listen["proto"], listen["family"], listen["address"]) == ("tcp", "ipv4", "127.0.0.1")
    # The child runs this suite's interpreter: "python3" under .venv/bin/pytest, "python"
    # under `.venv/bin/python -m pytest` (its name is the binary's, up to 15 characters).
    assert listen["pids"] == [child.pid]
    assert listen["names"] == [os.path.basename(sys.executable)[:15]]
    assert listen["at_start"] is False
    assert unlisten["pids"] == [child.pid]
    assert isinstance(unlisten["listened_for"], float) and unlisten["listened_for"] >= 0
    for data in (listen, unlisten):
        assert datetime.fromisoformat(data["at"]).tzinfo is not None
    # Every line on stdout is one JSON object.
    assert all(isinstance(json.loads(line), dict) for line in lines.seen)


def test_a_closed_pipe_ends_the_watch_quietly() -> None:
    with tcp_listener() as sentinel:
        port = sentinel.getsockname()[1]
        command = (
            f"{' '.join(WATCH)} --json --initial --interval 0.2 --port {port} | head -n 1; "
            'echo "watch exit ${PIPESTATUS[0]}" >&2'
        )
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=60)
        took = time.monotonic() - started
    [line] = done.stdout.splitlines()
    assert json.loads(line)["port"] == port
    # No event follows the first line: the watch noticed its reader leave by itself.
    assert done.stderr == "watch exit 141\n"
    assert took < 30


def test_jq_reads_the_watch_live() -> None:
    if shutil.which("jq") is None:
        missing("jq is not installed (.ci/services installs it under CI)")
    with tcp_listener() as sentinel:
        port = sentinel.getsockname()[1]
        jq = """jq --unbuffered -r 'select(.event == "listen") | "\\(.port) \\(.pids[0])"'"""
        watch = f"{' '.join(WATCH)} --json --initial --interval 0.2 --port {port}"
        pipeline = subprocess.Popen(
            ["bash", "-c", f"{watch} | {jq}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True,  # its own group: the test ends all of it
        )
        try:
            line = Lines(pipeline).until(lambda line: True)
        finally:
            os.killpg(pipeline.pid, signal.SIGKILL)
            _, err = pipeline.communicate(timeout=20)
    assert line == f"{port} {os.getpid()}\n", err


def test_text_lines_escape_what_the_process_chose() -> None:
    proc, port = spawn_hostile()
    watch = start_watch("--initial", "--interval", "0.2", "--port", str(port))
    try:
        lines = Lines(watch)
        tcp = lines.until(lambda line: " tcp " in line)
    finally:
        watch.kill()
        watch.wait()
        reap(proc)
    assert "\x1b" not in tcp and "\x07" not in tcp
    assert f"listen    tcp 127.0.0.1:{port}  PID {proc.pid} ({SHOWN_COMM})" in tcp
    assert "already listening at start" in tcp
    assert COMM not in tcp


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "--interval"),
        (["--interval", "1e3"], "--interval"),
        (["--port", "99999"], "port must be 1-65535"),
        (["--bogus"], "unrecognized argument '--bogus'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([*WATCH, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("portscope: ") and message in line
