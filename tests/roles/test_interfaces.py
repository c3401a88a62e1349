"""Asking a manager through its own tool (roles/interfaces.py): as the manager's user, with
a deadline and a size limit, and as root only a tool root owns. Real processes, run by
the test; nothing else is signalled."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.roles import interfaces

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
ME = os.geteuid()
NOBODY = 65534


@pytest.fixture
def user_dir() -> Iterator[Path]:
    """A directory anyone may write to (like /tmp): no place for a tool root runs."""
    path = Path(tempfile.mkdtemp(prefix="portscope-tool-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_answer_is_the_tools_output() -> None:
    assert interfaces.ask(["/bin/echo", "web RUNNING"], ME, os.getegid(), {}) == "web RUNNING\n"


def test_the_environment_is_only_what_the_question_needs() -> None:
    answer = interfaces.ask(["/usr/bin/env"], ME, os.getegid(), {"PM2_HOME": "/x"})
    assert answer is not None
    names = {line.split("=", 1)[0] for line in answer.splitlines()}
    assert names == {"PATH", "HOME", "LANG", "PM2_HOME"}


def test_a_slow_tool_is_cut_off_with_everything_it_started(
    monkeypatch: pytest.MonkeyPatch, user_dir: Path
) -> None:
    monkeypatch.setattr(interfaces, "TIMEOUT", 0.5)
    pidfile = user_dir / "child"
    started = time.monotonic()
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    assert interfaces.ask(["/bin/sh", "-c", script], ME, os.getegid(), {}) is None
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and _state(child) != "Z":
        assert time.monotonic() < deadline, "the tool's child outlived the question"
        time.sleep(0.02)


def test_a_chatty_tool_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interfaces, "LIMIT", 4096)
    answer = interfaces.ask(["/bin/sh", "-c", "yes | head -c 100000"], ME, os.getegid(), {})
    assert answer is None


@pytest.mark.skipif(ME != 0, reason="only root may ask as another user")
def test_root_asks_as_the_managers_user_with_no_other_groups() -> None:
    answer = interfaces.ask(["/usr/bin/id"], NOBODY, NOBODY, {})
    assert answer is not None
    assert answer.startswith(f"uid={NOBODY}(") and f"gid={NOBODY}(" in answer
    assert "groups=" in answer and "root" not in answer


def test_a_user_may_not_ask_as_another_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interfaces.os, "geteuid", lambda: 1000)  # portscope run by a user
    assert interfaces.ask(["/bin/echo", "x"], NOBODY, NOBODY, {}) is None


def test_root_runs_only_tools_root_owns(user_dir: Path) -> None:
    tool = user_dir / "supervisorctl"
    tool.write_text("#!/bin/sh\necho planted\n")
    tool.chmod(0o755)
    assert not interfaces.trusted_file(str(tool))
    assert interfaces.find_tool("supervisorctl", str(user_dir / "supervisord"), "/nonexistent",
                                0) is None
    # The manager's own user may run its own tool (it could anyway).
    assert interfaces.find_tool("supervisorctl", str(user_dir / "supervisord"), "/nonexistent",
                                1000) == str(tool)
    assert interfaces.trusted_file("/bin/sh")


def test_a_root_owned_script_with_a_users_interpreter_is_not_trusted(user_dir: Path) -> None:
    if ME != 0:
        pytest.skip("needs root to make a root-owned file")
    safe = Path(tempfile.mkdtemp(prefix="portscope-root-", dir="/root"))
    try:
        os.chmod(safe, 0o755)
        script = safe / "pm2"
        script.write_text(f"#!{user_dir}/node\n")
        script.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        if not interfaces.trusted_file(str(script)):
            pytest.skip("/root is not a root-only directory here")
        assert interfaces.find_tool("pm2", None, str(safe), 0) is None
        script.write_text("#!/usr/bin/env sh\n")
        assert interfaces.find_tool("pm2", None, str(safe), 0) == str(script)
    finally:
        shutil.rmtree(safe, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "gone"
