"""A real Prometheus scrapes a real `portscope export` every second on loopback, and its
HTTP API (/api/v1/query) gives the very numbers `portscope list --json` and `check --json`
give: listeners and their processes, server-side TIME_WAIT on a port, client TIME_WAIT and
ephemeral ports taken towards one destination. It also loads the shipped rules (healthy),
counts a restart, and runs every query of the shipped dashboard.

One exporter and one Prometheus for the module; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from export.exporting import Exporter, Prometheus, fetch, portscope_json, promtool, tool, until
from portscope.cli.export_cmd import DASHBOARD, RULES
from support import PREFORK_SERVER, ROOT_LISTENER, make_server_time_wait, tcp_listener

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="Linux: the exporter's warm collector"
)

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


class Stack:
    def __init__(self, base: Path) -> None:
        tool("prometheus")
        tool("promtool")
        self.run_dir = base / "run"
        self.run_dir.mkdir(mode=0o700)
        self.exporter = Exporter(self.run_dir, "--interval", "0.5")
        try:
            self.prometheus = Prometheus(base, f"127.0.0.1:{self.exporter.port}", RULES)
        except BaseException:
            self.exporter.stop()
            raise

    def stop(self) -> None:
        self.prometheus.stop()
        assert self.exporter.stop() == 0, self.exporter.errors()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    made = Stack(tmp_path_factory.mktemp("prometheus"))
    yield made
    made.stop()


def pressure(destination: socket.socket, time_wait: int, live: int) -> list[socket.socket]:
    """Client sockets towards one destination: `time_wait` left in TIME_WAIT on the client
    side (the client closes first) and `live` connections kept open (returned, with their
    accepted ends)."""
    address = destination.getsockname()
    for _ in range(time_wait):
        client = socket.create_connection(address)
        accepted, _ = destination.accept()
        client.close()  # the client's FIN first: the TIME_WAIT stays with the client
        accepted.recv(1)
        accepted.close()
    kept = []
    for _ in range(live):
        kept.append(socket.create_connection(address))
        kept.append(destination.accept()[0])
    return kept


def test_prometheus_finds_what_list_and_check_find(stack: Stack, spawn: Spawn) -> None:
    _, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    prefork = int(line.split()[0])
    _, line = spawn(ROOT_LISTENER)
    lone = int(line)
    with tcp_listener() as closing:  # TIME_WAIT left on a port whose server then stops
        waiting = closing.getsockname()[1]
        make_server_time_wait(closing, 40)
    with tcp_listener() as destination:
        target = f"127.0.0.1:{destination.getsockname()[1]}"
        kept = pressure(destination, 60, 5)
        try:
            listed = portscope_json(stack.run_dir, "list")
            checked = portscope_json(stack.run_dir, "check", str(waiting), "--host",
                                     "127.0.0.1", code=1)
            low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
                            .split())
            # What list and check say, first: the load is what it should be ...
            sockets = {s["port"]: s for s in listed["sockets"]}
            ports = {p["port"]: p for p in listed["ports"]}
            [client] = [c for c in listed["clients"] if c["destination"] == target]
            master = next(p for p in sockets[prefork]["processes"] if p["role"] == "master")
            assert len(sockets[prefork]["processes"]) == 3 and len(sockets[lone]["processes"]) == 1
            assert ports[waiting]["time_wait"] == checked["time_wait"]["count"] == 40
            assert client["time_wait"] == 60 and sum(client["states"].values()) == 5
            # ... and Prometheus has the same numbers.
            wanted = {
                f'portscope_listener_processes{{port="{prefork}"}}':
                    len(sockets[prefork]["processes"]),
                f'portscope_listener_processes{{port="{lone}"}}': len(sockets[lone]["processes"]),
                f'portscope_time_wait_sockets{{port="{waiting}"}}': checked["time_wait"]["count"],
                f'portscope_client_time_wait_sockets{{destination="{target}"}}':
                    client["time_wait"],
                f'portscope_ephemeral_ports_used{{destination="{target}"}}':
                    client["time_wait"] + sum(client["states"].values()),
                f'portscope_listener_info{{port="{prefork}", process="{master["name"]}", '
                f'role="master", user="{master["user"]}"}}': 1,
                "portscope_ephemeral_port_range_size": high - low + 1,
            }

            def got() -> dict[str, float | None]:
                return {expr: stack.prometheus.value(expr) for expr in wanted}

            until(lambda: got() == wanted, describe=got)
            clears = stack.prometheus.value(
                f'portscope_time_wait_clears_seconds{{port="{waiting}"}}'
            )
            assert clears is not None
            assert abs(clears - checked["time_wait"]["expires_in"]) < 10
        finally:
            for sock in kept:
                sock.close()


def test_the_exposition_passes_promtool(stack: Stack) -> None:
    status, headers, body = fetch(stack.exporter.url, headers={"Accept": "text/plain"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    checked = promtool("check", "metrics", stdin=body)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked
    # Prometheus asks for OpenMetrics, and reads it
    until(lambda: stack.prometheus.value('up{job="portscope"}') == 1)
    status, headers, body = fetch(
        stack.exporter.url,
        headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"},
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")


RESTARTING = """
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port})); s.listen()
print("ready", flush=True)
time.sleep(600)
"""


def test_a_restart_and_a_stop_reach_prometheus(stack: Stack, spawn: Spawn) -> None:
    with tcp_listener() as probe:
        port = probe.getsockname()[1]
    first, _ = spawn(RESTARTING.format(port=port))
    restarts = f'portscope_listener_restarts_total{{proto="tcp", port="{port}"}}'
    until(lambda: stack.prometheus.value(restarts) == 0)  # exists at 0 before it restarts
    unlisten = 'portscope_listener_events_total{event="unlisten"}'
    before = stack.prometheus.value(unlisten) or 0
    first.kill()
    first.wait(timeout=5)
    second, _ = spawn(RESTARTING.format(port=port))  # the same command back: a restart
    until(lambda: stack.prometheus.value(restarts) == 1)
    second.kill()
    second.wait(timeout=5)
    until(lambda: stack.prometheus.value(f'portscope_listener_processes{{port="{port}"}}')
          is None)
    until(lambda: (stack.prometheus.value(unlisten) or 0) > before)


def test_the_shipped_rules_load_and_evaluate(stack: Stack) -> None:
    alerts = set(re.findall(r"alert: (\w+)", RULES.read_text()))
    assert len(alerts) == 4

    def rules() -> list[tuple[str, str, str]]:
        groups = stack.prometheus.api("rules")["groups"]
        return [(r["name"], r["health"], r.get("lastError", "")) for g in groups
                for r in g["rules"]]

    until(lambda: {(name, "ok", "") for name in alerts} == set(rules()), describe=rules)


def test_every_dashboard_query_is_valid_promql(stack: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["definition"].replace(
        "label_values(portscope_listeners, instance)", "portscope_listeners"))
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")
        stack.prometheus.api("query", query=concrete)  # fails unless "success"
    assert stack.prometheus.query('portscope_listeners{job="portscope"}')
