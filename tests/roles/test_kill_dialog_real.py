"""`k` in the TUI carries out the same stop plan as `portscope kill`, on real servers: a
Docker container is stopped through the Engine API after `y`, a shell loop is stopped
before its server, and `n` touches nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

from textual.widgets import Static

from portscope.core.collect import default_collector
from portscope.core.roles.port import holders_on
from portscope.tui.kill_modal import KillModal
from real_servers import Running, docker_api, listener_holders
from tui.test_kill_modal import Host, open_dialog
from tui.tui_fakes import static_text, until

StartServer = Callable[..., Running]


def dialog_for(port: int) -> Callable[[], KillModal]:
    snap = default_collector().collect()
    holders, _ = holders_on(snap, port, "tcp")
    return lambda: KillModal([h.identity for h in holders], port, snapshot=snap)


def body(modal: KillModal) -> str:
    return static_text(modal.query_one("#kill-body", Static))


def container_running(name: str) -> bool:
    status, answer = docker_api("GET", f"/containers/{name}/json")
    return status == 200 and bool(json.loads(answer)["State"]["Running"])


async def test_k_on_a_docker_port_stops_the_container_not_the_proxy(
    real_server: StartServer,
) -> None:
    srv = real_server("docker")
    proxies = set(srv.pids_holding)
    app = Host(dialog_for(srv.port))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        text = body(modal)
        assert f"docker stop {srv.container}" in text
        assert f"Stop Docker container {srv.container}" in text
        assert container_running(srv.container)  # nothing before the answer
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=30)
        assert f"stopped Docker container {srv.container}" in body(modal)
        assert f"tcp port {srv.port} is free" in body(modal)
    assert not container_running(srv.container)
    assert not listener_holders(srv.port) and proxies


async def test_k_then_n_on_a_docker_port_leaves_it_running(real_server: StartServer) -> None:
    srv = real_server("docker")
    app = Host(dialog_for(srv.port))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dialog(pilot)
        await pilot.press("n")
        await until(pilot, lambda: app.results != [])
    assert app.results == [None] and container_running(srv.container)


async def test_k_on_a_shell_loop_stops_the_loop_then_the_server(
    real_server: StartServer,
) -> None:
    srv = real_server("shell-loop")
    (server,) = srv.pids_holding
    app = Host(dialog_for(srv.port))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        assert modal.plan is not None
        assert [t.pid for t in modal.plan.targets] == [srv.root_pid, server]
        assert "shell loop" in body(modal)
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=30)
        assert f"tcp port {srv.port} is free" in body(modal)
    assert not listener_holders(srv.port)
