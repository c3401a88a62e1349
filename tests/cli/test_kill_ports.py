"""`portscope kill` with several ports, `--dry-run` and `--pid`, against listeners the test
starts (every port a test kills is its own: a range is only ever one the test holds)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from cli.terminal import on_terminal
from portscope.core.contracts import SCHEMAS
from support import ROOT_LISTENER, TERM_IGNORING_LISTENER, exited

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sockets")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]

# One process listening on COUNT loopback ports next to each other (retried until the
# kernel's neighbours are free); prints them.
NEIGHBOURS = """
import socket, sys, time
count = int(sys.argv[1])
for _ in range(200):
    first = socket.socket(); first.bind(("127.0.0.1", 0)); first.listen()
    held = [first]
    try:
        for i in range(1, count):
            s = socket.socket(); s.bind(("127.0.0.1", first.getsockname()[1] + i)); s.listen()
            held.append(s)
        break
    except (OSError, OverflowError):
        for s in held:
            s.close()
print(" ".join(str(s.getsockname()[1]) for s in held), flush=True)
while True:
    time.sleep(1)
"""


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )


def kill_json(*args: str, code: int = 0) -> Any:
    result = portscope("kill", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stdout + result.stderr
    data = json.loads(result.stdout)
    schema = json.loads((resources.files("portscope") / "schemas/kill.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def neighbours(spawn: Spawn, count: int) -> tuple[subprocess.Popen[str], list[int]]:
    proc, line = spawn(NEIGHBOURS.replace("int(sys.argv[1])", str(count)))
    return proc, [int(p) for p in line.split()]


def test_two_ports_two_processes_one_array_both_stopped(spawn: Spawn) -> None:
    first, a = spawn(ROOT_LISTENER)
    second, b = spawn(ROOT_LISTENER)
    data = kill_json(a, b, "--yes")
    assert isinstance(data, list) and [d["port"] for d in data] == [int(a), int(b)]
    assert [d["exited"] for d in data] == [[first.pid], [second.pid]]
    assert all(d["schema"] == SCHEMAS["kill"] and d["port_free"] for d in data)
    assert all(d["after"]["verdict"] == "free" and d["dry_run"] is False for d in data)
    assert exited(first) and exited(second)


def test_a_range_held_by_one_process_is_stopped_once(spawn: Spawn) -> None:
    proc, ports = neighbours(spawn, 3)
    result = portscope("kill", f"{ports[0]}-{ports[-1]}", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("exited after SIGTERM") == 1
    assert out.count("had already exited") == 2  # the second and third port's plan
    for port in ports:
        assert f"port {port}/tcp:" in out and f"tcp port {port} is free" in out
    assert exited(proc) and proc.returncode == -signal.SIGTERM


def test_exit_1_when_one_of_the_ports_is_still_held(spawn: Spawn) -> None:
    stuck, a = spawn(TERM_IGNORING_LISTENER)
    fine, b = spawn(ROOT_LISTENER)
    data = kill_json(a, b, "--yes", "--timeout", "0.3", code=1)
    assert data[0]["still_running"] == [stuck.pid] and data[0]["port_free"] is False
    assert data[1]["exited"] == [fine.pid] and data[1]["port_free"] is True
    assert stuck.poll() is None and exited(fine)


def test_one_port_keeps_one_object(spawn: Spawn) -> None:
    proc, a = spawn(ROOT_LISTENER)
    data = kill_json(f"{a},{a}", "--yes")  # the same port twice is one port
    assert isinstance(data, dict) and data["exited"] == [proc.pid]


def test_one_question_lists_every_port(spawn: Spawn) -> None:
    first, a = spawn(ROOT_LISTENER)
    second, b = spawn(ROOT_LISTENER)
    seen, result = on_terminal(["kill", a, b], answer="n\n")
    prompt = seen.decode()
    assert f"port {a}/tcp:" in prompt and f"port {b}/tcp:" in prompt
    assert f"PID       {first.pid}" in prompt and f"PID       {second.pid}" in prompt
    assert prompt.count("[y/N]") == 1
    assert f"Send SIGTERM to PID {first.pid} (port {a}); send SIGTERM to PID {second.pid} " \
        f"(port {b})?" in " ".join(prompt.split())
    assert result.returncode == 1 and first.poll() is None and second.poll() is None

    _, result = on_terminal(["kill", a, b], answer="y\n")
    assert result.returncode == 0
    assert exited(first) and exited(second)


def test_dry_run_prints_the_plan_and_sends_nothing(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line, "--dry-run", "--timeout", "5", "--force")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"PID       {proc.pid}" in out and "Plan: " in out
    assert f"would send SIGTERM to PID {proc.pid} (python" in out
    assert "wait up to 5 s for it to exit; SIGKILL to any still running then (--force)" in out
    assert out.rstrip().endswith("dry run: nothing was sent")
    data = kill_json(line, "--dry-run", "--signal", "INT")
    assert data["dry_run"] is True and data["would_act"] is True
    assert data["targets"] == [{"pid": proc.pid, "name": data["targets"][0]["name"],
                                "signal": "INT"}]
    assert data["exited"] == [] and data["after"]["verdict"] == "listening"
    assert not exited(proc, timeout=0.2)  # nothing was sent, not even without --yes


def test_dry_run_that_would_refuse_exits_1(spawn: Spawn) -> None:
    """The test's own process group leader is portscope's ancestor here: refused."""
    parent, line = spawn(
        """
        import json, socket, subprocess, sys, time
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        port = str(s.getsockname()[1])
        r = subprocess.run([sys.executable, "-m", "portscope", "kill", port, "--dry-run"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        print(json.dumps({"code": r.returncode, "out": r.stdout}), flush=True)
        while True:
            time.sleep(1)
        """
    )
    report = json.loads(line)
    assert report["code"] == 1
    assert f"not signalled: PID {parent.pid} is an ancestor of portscope" in report["out"]
    assert "(rule: portscope's own session; --allow-system signals it)" in " ".join(
        report["out"].split()
    )
    assert parent.poll() is None


def test_dry_run_with_nothing_to_stop_exits_0() -> None:
    from cli.quiet_ports import quiet_ports

    first = quiet_ports(3)
    result = portscope("kill", f"{first}-{first + 2}", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"nothing holds tcp ports {first}-{first + 2}: they are free", "",
        "dry run: nothing was sent",
    ]
    one = portscope("kill", str(first), "--dry-run")
    assert one.returncode == 0
    assert one.stdout.splitlines() == [f"nothing holds tcp port {first}",
                                       "dry run: nothing was sent"]


def test_pid_stops_that_process_and_checks_every_port_it_held(spawn: Spawn) -> None:
    proc, ports = neighbours(spawn, 2)
    data = kill_json("--pid", str(proc.pid), "--yes")
    assert [d["port"] for d in data] == ports
    assert all(d["exited"] == [proc.pid] and d["port_free"] for d in data)
    assert data[0]["targets"] == [{"pid": proc.pid, "name": data[0]["targets"][0]["name"],
                                   "signal": "TERM"}]
    assert {f["fact"] for f in data[0]["evidence"]} == {"exe", "euid"}
    assert exited(proc) and proc.returncode == -signal.SIGTERM


def test_pid_asks_first_and_shows_the_ports(spawn: Spawn) -> None:
    proc, ports = neighbours(spawn, 2)
    seen, result = on_terminal(["kill", "--pid", str(proc.pid)], answer="n\n")
    prompt = " ".join(seen.decode().split())
    assert f"holds tcp 127.0.0.1:{ports[0]}, tcp 127.0.0.1:{ports[1]}" in prompt
    assert prompt.count("[y/N]") == 1 and f"Send SIGTERM to PID {proc.pid}?" in prompt
    assert result.returncode == 1 and proc.poll() is None
    text = portscope("kill", "--pid", str(proc.pid), "--yes")
    assert text.returncode == 0, text.stdout + text.stderr
    head, *rest = text.stdout.splitlines()
    assert head.startswith(f"PID {proc.pid} (") and head.endswith(") exited after SIGTERM")
    assert rest == [f"tcp port {ports[0]} is free", f"tcp port {ports[1]} is free"]
    assert exited(proc)


def test_pid_of_a_process_holding_no_port_is_refused(spawn: Spawn) -> None:
    proc, _ = spawn("import time\nprint('up', flush=True)\ntime.sleep(600)")
    result = portscope("kill", "--pid", str(proc.pid), "--yes")
    assert result.returncode == 1
    assert result.stderr.startswith(f"portscope: PID {proc.pid} (python")
    assert "holds no port" in result.stderr and f"kill {proc.pid}" in result.stderr
    assert proc.poll() is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kill"], "no port given: portscope kill PORT [PORT...], or --pid PID"),
        (["kill", "80", "--pid", "1"], "give ports or --pid PID, not both"),
        (["kill", "--pid", "1", "--udp"], "--pid names the process itself"),
        (["kill", "--pid", "0"], "not a PID: '0'"),
        (["kill", "1-2000", "--dry-run"], "at most 1,024 ports at once, got 2,000"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = portscope(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"portscope: {message}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
