"""Issue 11: `list` counts hidden owners among the rows it shows, and its JSON keeps what the
kernel says about a hidden owner (uid, user). Seen as nobody, in a forked child (domain.md
section 6), while root holds another port."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from portscope.cli.list_cmd import render
from portscope.core.collect import default_collector
from portscope.core.serialize import snapshot_json
from support import NOBODY, ROOT_LISTENER, run_as_nobody

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux privileges"),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="only root can drop to nobody to test the unprivileged paths",
    ),
]

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
PR_SET_DUMPABLE = 4


def test_list_port_counts_hidden_owners_among_the_rows_shown(spawn: Spawn) -> None:
    root_proc, line = spawn(ROOT_LISTENER)
    root_port = int(line)

    def as_nobody() -> tuple[str, str, int, dict[str, Any], int, int]:
        # Changing uid made this process undumpable, so its own /proc/PID/fd is root's;
        # a process nobody starts is dumpable. Be that process again.
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        with socket.socket() as mine:
            mine.bind(("127.0.0.1", 0))
            mine.listen()
            my_port = mine.getsockname()[1]
            snap = default_collector().collect()
            return (
                render(snap, my_port), render(snap, root_port), snap.hidden_owners,
                snapshot_json(snap, root_port), my_port, os.getpid(),
            )

    result: Any = run_as_nobody(as_nobody)
    mine, roots, machine_wide, data, my_port, child = result
    assert machine_wide >= 1  # root's listener, at least, is hidden from nobody
    # Our own port: its owner is shown, so no hidden-owner line at all.
    assert mine.splitlines()[1].split()[:4] == [str(my_port), "tcp", "127.0.0.1", str(child)]
    assert "hidden owner" not in mine
    # root's port: exactly the one hidden socket shown.
    assert roots.splitlines()[-1] == "1 socket has a hidden owner: run with sudo to see it"
    [sock] = data["sockets"]
    assert sock["processes"] == [] and sock["port"] == root_port
    assert (sock["uid"], sock["user"]) == (0, "root")
    assert root_proc.poll() is None


def test_list_json_socket_objects_keep_their_owner_uid() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        data = snapshot_json(default_collector().collect(), port)
    [found] = data["sockets"]
    assert (found["uid"], found["user"], found["v6only"]) == (os.geteuid(), "root", None)
    assert found["uid"] != NOBODY
