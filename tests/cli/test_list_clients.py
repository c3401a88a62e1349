"""Issue 21: a client's sockets are summed per destination, never rows, whatever the number
of destinations. Real client TIME_WAIT (the client closes first) towards 3 loopback servers
of ours, one client port reused towards all three (the case that used to come back as a
"(no listener)" row), and one live connection each: `list --json` keeps none of our client
ports in "ports" and sums them in "clients"; neither `list` nor the TUI's rows show one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.collect.psutil_collector import PsutilCollector
from portscope.core.model import Snapshot
from portscope.tui.rows import build_rows
from support import tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SERVERS = 3
PER_SERVER = 6  # client TIME_WAIT per server, besides the shared client port's one


class Load:
    """Our servers, the client ports that hold TIME_WAIT towards them, and live clients."""

    def __init__(self) -> None:
        self.listeners = [tcp_listener() for _ in range(SERVERS)]
        self.servers = [s.getsockname()[1] for s in self.listeners]
        self.client_ports: set[int] = set()
        self.live: list[socket.socket] = []

    def time_wait(self, server: socket.socket, bind: int = 0) -> None:
        """One TIME_WAIT on the client's side: the client closes first."""
        client = socket.socket()
        if bind:  # one local port towards several servers: SO_REUSEADDR past its TIME_WAIT
            client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            client.bind(("127.0.0.1", bind))
        client.connect(server.getsockname())
        self.client_ports.add(client.getsockname()[1])
        conn, _ = server.accept()
        client.close()
        conn.recv(1)  # the client's FIN is in: the server side closes without TIME_WAIT
        conn.close()

    def close(self) -> None:
        for sock in [*self.live, *self.listeners]:
            sock.close()


def shared_client_port() -> int:
    """A port from the ephemeral range, free now (the kernel's own choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def load() -> Iterator[Load]:
    made = Load()
    try:
        shared = shared_client_port()
        for server in made.listeners:
            made.time_wait(server, bind=shared)
            for _ in range(PER_SERVER):
                made.time_wait(server)
            client = socket.create_connection(server.getsockname())
            made.client_ports.add(client.getsockname()[1])
            made.live.append(client)
            made.live.append(server.accept()[0])
        assert shared in made.client_ports
        yield made
    finally:
        made.close()


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=60
    )


def test_list_json_sums_clients_per_destination_and_keeps_ports_to_servers(load: Load) -> None:
    result = portscope("list", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    ports = {p["port"] for p in data["ports"]}
    assert not ports & load.client_ports, sorted(ports & load.client_ports)
    # Our servers' ports are there: each holds its side of a live connection.
    assert set(load.servers) <= ports
    clients = {(c["address"], c["port"]): c for c in data["clients"]}
    for server in load.servers:
        summed = clients[("127.0.0.1", server)]
        assert summed["destination"] == f"127.0.0.1:{server}"
        # Ours, and any an earlier test left towards a server that had this port number.
        assert summed["time_wait"] >= PER_SERVER + 1
        assert summed["states"].get("ESTABLISHED", 0) >= 1


def test_list_table_shows_no_client_port(load: Load) -> None:
    result = portscope("list")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    shown = {int(cells[0]) for cells in rows if cells and cells[0].isdigit()}
    assert set(load.servers) <= shown
    assert not shown & load.client_ports


@pytest.mark.parametrize("source", ["netlink", "proc", "psutil"])
def test_no_collector_makes_a_row_of_a_client_port(load: Load, source: str) -> None:
    """The TUI's rows (the same build_rows as `list`) from each collector; with the servers
    stopped too, when only the pattern across ports tells the clients' side."""
    def collect() -> Snapshot:
        if source == "psutil":
            return PsutilCollector().collect()
        return ProcNetCollector(netlink=source == "netlink").collect()

    for stopped in (False, True):
        if stopped:
            for listener in load.listeners:
                listener.close()
        snap = collect()
        rows = {row.port for row in build_rows(snap)}
        assert not rows & load.client_ports, (stopped, sorted(rows & load.client_ports))
        assert not {p.port for p in snap.ports} & load.client_ports
        summed = {(d.address, d.port): d for d in snap.client_time_wait.destinations}
        for server in load.servers:
            assert summed[("127.0.0.1", server)].time_wait >= PER_SERVER + 1


def test_the_server_row_details_sum_this_hosts_clients(load: Load) -> None:
    """The table has no client rows, so a server's row says what this host's clients hold
    towards it (the TUI's details pane, from a real poll)."""
    from portscope.tui.details import render_details
    from portscope.tui.rows import clients_of

    snap = ProcNetCollector().collect()
    rows = {row.port: row for row in build_rows(snap) if row.socket is not None}
    for server in load.servers:
        [summed] = clients_of(rows[server], snap)
        assert (summed.address, summed.port) == ("127.0.0.1", server)
        text = render_details(rows[server], snap.taken_at, {}, None, clients=(summed,)).plain
        assert f"ESTABLISHED from this host to 127.0.0.1:{server}" in text
        assert f"{summed.time_wait:,} TIME_WAIT, " in text
