"""`portscope kill` as a person and a script use it, against processes the test started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from cli.terminal import on_terminal
from support import (
    PREFORK_SERVER,
    ROOT_LISTENER,
    TERM_IGNORING_LISTENER,
    UDP_LISTENER,
    exited,
    pid_alive,
    tcp_listener,
)

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    """No terminal on stdin, as in a script or CI."""
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def kill_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = portscope("kill", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_json_contract_for_a_single_listener(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    code, data = kill_json(line, "--yes")
    assert code == 0
    assert set(data) >= {
        "port", "targets", "refused", "exited", "still_running", "escalated", "after",
    }
    assert data["port"] == port
    assert data["targets"] == [{"pid": proc.pid, "name": data["targets"][0]["name"],
                                "signal": "TERM"}]
    assert data["targets"][0]["name"].startswith("python")
    assert data["refused"] == [] and data["still_running"] == []
    assert data["exited"] == [proc.pid]
    assert data["escalated"] is False
    assert data["after"]["port"] == port and data["after"]["verdict"] == "free"
    assert exited(proc) and proc.returncode == -signal.SIGTERM


def test_human_output_says_who_exited_and_that_the_port_is_free(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line, "--yes")
    assert result.returncode == 0, result.stderr
    assert f"PID {proc.pid} (" in result.stdout and "exited after SIGTERM" in result.stdout
    assert f"tcp port {line} is free" in result.stdout


def test_no_terminal_and_no_yes_is_refused_with_exit_2(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "portscope: no terminal to confirm on: pass --yes to kill without asking"
    )
    assert proc.poll() is None


def test_prefork_family_is_gone_and_the_port_free(spawn: Spawn) -> None:
    master, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = (int(x) for x in line.split())
    code, data = kill_json(str(port), "--yes")
    assert code == 0
    assert [t["pid"] for t in data["targets"]] == [master.pid]
    assert sorted(data["exited"]) == sorted([master.pid, *workers])
    assert data["after"]["verdict"] == "free"
    assert exited(master)
    assert not any(pid_alive(w) for w in workers)


def test_term_ignoring_process_escalates_only_with_force(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    code, data = kill_json(line, "--yes", "--timeout", "0.3")
    assert code == 1
    assert data["still_running"] == [proc.pid] and data["escalated"] is False
    assert data["after"]["verdict"] == "listening"
    assert proc.poll() is None

    code, data = kill_json(line, "--yes", "--timeout", "0.3", "--force")
    assert code == 0
    assert data["escalated"] is True
    assert data["targets"][0]["signal"] == "KILL"
    assert data["exited"] == [proc.pid]
    assert exited(proc) and proc.returncode == -signal.SIGKILL


def test_chosen_signal_is_sent(spawn: Spawn) -> None:
    # Python raises KeyboardInterrupt on SIGINT only if SIGINT was not ignored when it
    # started, and a shell ignores it in background jobs (`nohup ... &`): set it here.
    proc, line = spawn(
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        + ROOT_LISTENER
    )
    code, data = kill_json(line, "--yes", "--signal", "int")
    assert code == 0, data
    assert data["targets"][0]["signal"] == "INT"
    assert exited(proc)  # Python turns SIGINT into KeyboardInterrupt and exits
    assert proc.returncode != 0


def test_an_ancestor_holding_the_port_is_not_signalled(spawn: Spawn) -> None:
    """A process that listens, then runs `portscope kill` on its own port as its child."""
    parent, line = spawn(
        """
        import json, os, socket, subprocess, sys, time
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        port = str(s.getsockname()[1])
        r = subprocess.run(
            [sys.executable, "-m", "portscope", "kill", port, "--yes", "--json"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        print(json.dumps({"code": r.returncode, "out": r.stdout, "err": r.stderr}), flush=True)
        while True:
            time.sleep(1)
        """
    )
    report = json.loads(line)
    assert report["code"] == 1, report["err"]
    data = json.loads(report["out"])
    assert data["targets"] == [] and data["exited"] == []
    assert [r["pid"] for r in data["refused"]] == [parent.pid]
    assert "ancestor" in data["refused"][0]["reason"]
    assert data["after"]["verdict"] == "listening"
    assert parent.poll() is None


def test_udp_flag_targets_the_udp_socket(spawn: Spawn) -> None:
    proc, line = spawn(UDP_LISTENER)
    code, data = kill_json(line, "--udp", "--yes")
    assert code == 0 and data["exited"] == [proc.pid]
    assert data["after"]["proto"] == "udp" and data["after"]["verdict"] == "free"


def test_a_free_port_has_nothing_to_kill() -> None:
    with tcp_listener() as sock:
        port = str(sock.getsockname()[1])
    result = portscope("kill", port, "--yes")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [f"nothing holds tcp port {port}",
                                          f"tcp port {port} is free"]


def test_on_a_terminal_it_asks_and_no_signals_nothing(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    seen, result = on_terminal(["kill", line], answer="n\n")
    prompt = seen.decode()
    assert f"PID {proc.pid}" in prompt and "Send SIGTERM" in prompt and "[y/N]" in prompt
    assert result.returncode == 1
    assert proc.poll() is None

    _, result = on_terminal(["kill", line], answer="y\n")
    assert result.returncode == 0
    assert exited(proc)

