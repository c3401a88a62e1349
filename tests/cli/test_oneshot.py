"""One-shot commands as whole processes, sharing an owner store between runs as a person's
shell does: a warm start must never give a stale answer, a question asks only for what it
needs, and a command imports only what it uses.

Each test gives the commands a runtime directory of its own (XDG_RUNTIME_DIR), so the
store they share is theirs alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from portscope.cli import COMMANDS, build_parser
from portscope.core.collect.owner_store import NAME
from support import ROOT_LISTENER, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux store")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    base = tmp_path / "run"
    base.mkdir(mode=0o700)
    return base


def portscope(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


def listed_pids(run_dir: Path, port: int) -> set[int]:
    result = portscope(run_dir, "list", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {p["pid"] for s in data["sockets"] if s["port"] == port for p in s["processes"]}


def checked_pids(run_dir: Path, port: int) -> set[int]:
    result = portscope(run_dir, "check", str(port), "--host", "127.0.0.1", "--json")
    assert result.returncode == 1, result.stderr
    return {h["pid"] for h in json.loads(result.stdout)["holders"]}


def store_file(run_dir: Path) -> Path:
    return run_dir / "portscope" / NAME


def test_a_restarted_server_is_seen_under_its_new_pid(spawn: Spawn, run_dir: Path) -> None:
    old, line = spawn(ROOT_LISTENER)
    port = int(line)
    assert listed_pids(run_dir, port) == {old.pid}
    assert store_file(run_dir).exists()  # the next command starts from it
    old.kill()
    old.wait(timeout=5)
    new, _ = spawn(
        f"""
        import socket, time
        s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen()
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    assert listed_pids(run_dir, port) == {new.pid}
    assert checked_pids(run_dir, port) == {new.pid}


def test_a_listener_handed_to_a_new_child_between_runs(
    passer: subprocess.Popen[str], run_dir: Path
) -> None:
    assert passer.stdout is not None and passer.stdin is not None
    port = int(passer.stdout.readline())
    assert listed_pids(run_dir, port) == {passer.pid}
    assert checked_pids(run_dir, port) == {passer.pid}
    passer.stdin.write("\n")
    passer.stdin.flush()
    child = int(passer.stdout.readline())
    assert listed_pids(run_dir, port) == {child}
    assert checked_pids(run_dir, port) == {child}


def test_check_on_a_free_port_looks_up_no_process(run_dir: Path) -> None:
    """Nothing to own: no /proc/*/fd walk, so nothing learned and no store written."""
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
    result = portscope(run_dir, "check", str(port), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == "free"
    assert not store_file(run_dir).exists()
    # A held port does need owners, and the store appears.
    with tcp_listener() as sock:
        result = portscope(run_dir, "check", str(sock.getsockname()[1]), "--json")
    assert result.returncode == 1
    assert store_file(run_dir).exists()


def test_list_port_builds_only_that_port(run_dir: Path) -> None:
    with tcp_listener() as mine, tcp_listener():
        port = mine.getsockname()[1]
        result = portscope(run_dir, "list", "--port", str(port), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {s["port"] for s in data["sockets"]} == {port}
    [sock] = data["sockets"]
    assert [p["pid"] for p in sock["processes"]] == [os.getpid()]


def imported_by(args: list[str], run_dir: Path) -> set[str]:
    """Modules loaded by `portscope ARGS` (which exits through argparse or returns)."""
    probe = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from portscope.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main({args!r})
        print("\\n".join(sorted(sys.modules)))
        """
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
        env=env,
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_no_command(args: list[str], run_dir: Path) -> None:
    loaded = imported_by(args, run_dir)
    assert "portscope.cli" in loaded
    heavy = {"psutil", "textual", "portscope.core.diagnose.probe", "portscope.core.roles.cast"}
    assert not loaded & heavy
    assert not {f"portscope.cli.{module}" for module, _ in COMMANDS.values()} & loaded


def test_list_json_loads_neither_the_probe_nor_the_monitor(run_dir: Path) -> None:
    loaded = imported_by(["list", "--json", "--port", "1"], run_dir)
    assert "portscope.cli.list_cmd" in loaded
    assert not {"portscope.core.diagnose.probe", "textual", "portscope.cli.check_cmd"} & loaded


# Each costs a whole process milliseconds to import, and none is needed to answer: the model
# is built without dataclasses (core/record.py) or typing (core/hints.py), processes are read
# from /proc without psutil (core/proc_facts.py), terminal widths come without shutil.
NEVER_IMPORTED = {"dataclasses", "inspect", "typing", "psutil", "shutil", "subprocess", "rich"}


@pytest.mark.parametrize(
    "args", [["list"], ["list", "--json"], ["check", "{held}", "--json"], ["check", "{free}"]]
)
def test_list_and_check_import_nothing_they_do_not_use(
    args: list[str], spawn: Spawn, run_dir: Path
) -> None:
    # A holder in another directory, whose parent is this test: `check` works out its roles,
    # its parent, and whether another process runs the same command (an earlier copy).
    _, port = spawn(ROOT_LISTENER, cwd="/")
    with tcp_listener() as free_socket:
        free = free_socket.getsockname()[1]
    asked = [a.format(held=port, free=free) for a in args]
    loaded = imported_by(asked, run_dir)
    assert f"portscope.cli.{args[0]}_cmd" in loaded
    assert not loaded & NEVER_IMPORTED, sorted(loaded & NEVER_IMPORTED)


def test_the_help_lines_are_the_commands_own() -> None:
    """`portscope --help` lists the commands from the registry without importing them;
    with each command's own module loaded the page must read the same."""
    stubs_only = build_parser().format_help()
    for name in COMMANDS:
        assert build_parser(name).format_help() == stubs_only, name


def test_json_is_valid_and_one_process_a_line(spawn: Spawn, run_dir: Path) -> None:
    """The fast writer: with --pretty (as on a terminal), one line per process record; piped
    without it, compact: one line, no spaces. The same data either way."""
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    result = portscope(run_dir, "list", "--port", str(port), "--json", "--pretty")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    [record] = [ln for ln in result.stdout.splitlines() if f'"pid": {proc.pid},' in ln]
    assert json.loads(record.strip().rstrip(",")) == data["sockets"][0]["processes"][0]
    piped = portscope(run_dir, "list", "--port", str(port), "--json")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("\n") == 1 and f'"pid":{proc.pid},' in piped.stdout
    assert json.loads(piped.stdout)["sockets"] == data["sockets"]
