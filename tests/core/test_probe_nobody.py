"""What an unprivileged user meets: privileged ports and ports held by root's processes.

The probe runs in a forked child that dropped to nobody (support.run_as_nobody), so it sees
exactly what a non-root user's portscope would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from subprocess import Popen
from typing import Any

import pytest

from portscope.core.diagnose.probe import diagnose
from portscope.core.serialize import verdict_json
from support import ROOT_LISTENER, run_as_nobody

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux privileges"),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="only root can drop to nobody to test the unprivileged paths",
    ),
]

Spawn = Callable[..., tuple[Popen[str], str]]


def unprivileged_start() -> int:
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as fh:
        return int(fh.read())


def test_privileged_port_as_nobody_is_permission_denied() -> None:
    start = unprivileged_start()
    if start <= 1:
        pytest.skip("this host lets every user bind every port")
    port = start - 1

    def probe() -> dict[str, Any]:
        return verdict_json(diagnose(port, "127.0.0.1"))

    result: Any = run_as_nobody(probe)
    assert result["verdict"] == "permission_denied"
    assert result["attempts"][0]["error"] == "EACCES"
    assert result["attempts"][0]["errno"] == 13
    text = " ".join(result["advice"])
    assert "CAP_NET_BIND_SERVICE" in text or "cap_net_bind_service" in text
    assert "ip_unprivileged_port_start" in text
    # The suggestion is a port nobody can really bind.
    assert result["suggested_port"] is not None and result["suggested_port"] >= start


def test_root_listener_is_owner_hidden_for_nobody(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    as_root = diagnose(port, "127.0.0.1", cwd="/")
    assert as_root.kind == "listening" and [h.pid for h in as_root.holders] == [proc.pid]

    def probe() -> dict[str, Any]:
        return verdict_json(diagnose(port, "127.0.0.1", cwd="/"))

    result: Any = run_as_nobody(probe)
    assert result["verdict"] == "owner_hidden"
    assert result["holders"] == []
    assert result["attempts"][0]["error"] == "EADDRINUSE"
    assert any("sudo portscope check" in line for line in result["advice"])
