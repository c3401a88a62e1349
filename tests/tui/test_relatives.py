"""Parent and children of a real pre-fork server, looked up as the details pane does."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from portscope.core.processes import describe
from portscope.tui.relatives import lookup_relatives
from support import PREFORK_SERVER, reap


def test_master_lists_its_workers_and_a_worker_its_master(
    spawn: Callable[..., tuple[subprocess.Popen[str], str]],
) -> None:
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    _, *workers = (int(x) for x in line.split())
    master = describe(proc.pid)
    assert master is not None
    found = lookup_relatives(master)
    assert not found.gone
    assert sorted(int(c.split()[0]) for c in found.children) == sorted(workers)
    assert found.parent is not None and found.parent.startswith(f"{os.getpid()} ")
    worker = describe(workers[0])
    assert worker is not None
    assert lookup_relatives(worker).parent == f"{proc.pid} {master.name}"


def test_exited_process_is_reported_gone(
    spawn: Callable[..., tuple[subprocess.Popen[str], str]],
) -> None:
    proc, _ = spawn("print('ready', flush=True)\nimport time; time.sleep(60)")
    holder = describe(proc.pid)
    assert holder is not None
    reap(proc)
    assert lookup_relatives(holder).gone
