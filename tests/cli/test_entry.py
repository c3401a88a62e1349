"""The installed `portscope` leaves with os._exit once a command answered: everything it
printed must still arrive whole, and its exit code must be the command's."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "portscope"


def test_the_console_script_is_the_fast_exit_entry() -> None:
    assert "from portscope.cli import entry" in SCRIPT.read_text()


def test_a_large_answer_arrives_whole_through_a_pipe() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(300)]
    try:
        out = subprocess.run(
            [str(SCRIPT), "list", "--json"], capture_output=True, text=True, timeout=60
        )
        ports = {s.getsockname()[1] for s in listeners}
    finally:
        for s in listeners:
            s.close()
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) > 300 * 100 and out.stdout.endswith("}\n")
    listed = {s["port"] for s in json.loads(out.stdout)["sockets"]}
    assert ports <= listed


def test_exit_codes_are_the_commands() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = str(held.getsockname()[1])
        taken = subprocess.run([str(SCRIPT), "check", port, "--host", "127.0.0.1"],
                               capture_output=True, text=True, timeout=60)
    assert taken.returncode == 1 and "in use" in taken.stdout.lower()
    bad = subprocess.run([str(SCRIPT), "check", "99999"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("portscope: ")


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(50)]
    try:
        shell = subprocess.run(
            f"'{SCRIPT}' list --json | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
            shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
        )
    finally:
        for s in listeners:
            s.close()
    assert shell.stdout.strip() in ("0", "141")  # 0 if it finished before head left
    assert "Traceback" not in shell.stderr
