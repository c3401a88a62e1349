"""Every command against a real process whose name, argv and cwd are hostile: the text
output shows them escaped (nothing reaches the terminal raw), --json keeps them raw, and
the table stays aligned when a name has wide characters."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator

import pytest

import hostile
from cli.terminal import assert_safe, on_terminal, portscope
from support import exited, reap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl, /proc")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
Hostile = tuple[subprocess.Popen[str], int]

WIDE_NAME = "日本語srv"  # 12 bytes: fits the 15 of comm whole
WIDE_LISTENER = f"""
import ctypes, socket, time
ctypes.CDLL(None).prctl(15, ctypes.c_char_p({WIDE_NAME!r}.encode()), 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""
ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def listener() -> Iterator[Hostile]:
    proc, port = hostile.spawn_hostile()
    yield proc, port
    reap(proc)


def cells(text: str) -> int:
    """Terminal cells, measured here independently of the code under test."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--port", "{port}"],
        ["check", "{port}"],
        ["check", "{port}", "--udp"],
        ["check", "{port}", "--host", "localhost"],
        ["wait", "{port}", "--timeout", "0.3"],
    ],
)
def test_text_output_shows_the_hostile_fields_escaped(listener: Hostile, args: list[str]) -> None:
    proc, port = listener
    result = portscope(*(a.format(port=port) for a in args))
    out, err = assert_safe(result.stdout), assert_safe(result.stderr)
    assert result.returncode == (0 if args[0] == "list" else 1), err
    assert hostile.SHOWN_COMM in out + err
    assert f"{hostile.SHOWN_COMM} (pid {proc.pid}" in out + err or args[0] == "list"
    assert proc.poll() is None


@pytest.mark.parametrize(
    "args",
    [["list", "--json"], ["list", "--port", "{port}", "--json"], ["check", "{port}", "--json"],
     ["check", "{port}", "--udp", "--json"]],
)
def test_json_keeps_the_raw_strings(listener: Hostile, args: list[str]) -> None:
    proc, port = listener
    result = portscope(*(a.format(port=port) for a in args))
    data = json.loads(assert_safe(result.stdout))  # JSON escapes every control itself
    if args[0] == "list":
        holders = [h for s in data["sockets"] if s["port"] == port for h in s["processes"]]
        assert len(holders) == 2  # the TCP and the UDP socket
    else:
        holders = data["holders"]
    me = next(h for h in holders if h["pid"] == proc.pid)
    assert me["name"] == hostile.COMM
    assert me["cmdline"][0] == hostile.ARGV0
    assert me["cmdline"][3:] == [hostile.COMM, *hostile.ARGS]


def test_kill_prompt_escapes_and_fits_and_no_signals_nothing(listener: Hostile) -> None:
    proc, port = listener
    seen, result = on_terminal(["kill", str(port)], answer="n\n", columns=80)
    prompt = assert_safe(seen)
    assert result.returncode == 1
    assert proc.poll() is None  # "n": nothing was signalled
    lines = prompt.splitlines()
    fields = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert fields["PID"].split() == ["PID", str(proc.pid)]
    assert fields["name"].split() == ["name", hostile.SHOWN_COMM]
    assert fields["user"].split() == ["user", ME]
    assert fields["command"].split()[1] == hostile.SHOWN_ARGV0
    assert fields["command"].endswith("…")  # the long command line is cut ...
    assert f"tcp 127.0.0.1:{port}" in fields["holds"]  # ... so these stay on screen
    assert {"uptime", "children"} <= set(fields)
    assert all(cells(line) <= 80 for line in lines), lines
    assert f"Send SIGTERM to PID {proc.pid}? [y/N]" in prompt
    # the forged "PID 1" field of argv is inside the escaped command, not a line of its own
    assert not any(line.split()[:2] == ["PID", "1"] for line in lines)


def test_kill_yes_reports_the_exit_escaped(listener: Hostile) -> None:
    proc, port = listener
    result = portscope("kill", str(port), "--yes")
    out = assert_safe(result.stdout)
    assert_safe(result.stderr)
    assert result.returncode == 0, result.stderr
    assert f"PID {proc.pid} ({hostile.SHOWN_COMM}) exited after SIGTERM" in out
    assert f"tcp port {port} is free" in out
    assert exited(proc) and proc.returncode == -signal.SIGTERM


def test_kill_yes_json_keeps_the_raw_name(listener: Hostile) -> None:
    proc, port = listener
    result = portscope("kill", str(port), "--yes", "--json")
    data = json.loads(assert_safe(result.stdout))
    assert result.returncode == 0
    assert data["targets"] == [{"pid": proc.pid, "name": hostile.COMM, "signal": "TERM"}]
    assert data["exited"] == [proc.pid]
    assert exited(proc)


def test_list_columns_align_with_wide_and_escaped_names(listener: Hostile, spawn: Spawn) -> None:
    proc, port = listener
    wide, wide_port = spawn(WIDE_LISTENER)
    table = assert_safe(portscope("list").stdout).splitlines()
    header = table[0]
    starts = {name: header.index(name) for name in ("PID", "PROCESS", "USER")}
    rows = {
        pid: next(line for line in table if line.startswith(f"{p} ") and f" {pid} " in line)
        for pid, p in ((proc.pid, str(port)), (wide.pid, wide_port))
    }
    for pid, name in ((proc.pid, hostile.SHOWN_COMM), (wide.pid, WIDE_NAME)):
        row = rows[pid]
        assert cells(row[: row.index(f" {pid} ") + 1]) == starts["PID"], row
        assert cells(row[: row.index(name)]) == starts["PROCESS"], row
        assert row.endswith(f"  {ME}")  # no TIME_WAIT, no connections: USER comes last
        assert cells(row) - cells(ME) == starts["USER"], (row, header)
