"""The stop plan for what cannot run here, from recorded process trees and command output:
systemd units and socket activation, podman, macOS and Windows (tests/recorded/)."""

from __future__ import annotations

import pytest

from portscope.core.model import Container
from portscope.core.roles import services
from portscope.core.roles.cast import cast_roles
from portscope.core.roles.docker_api import (
    DockerUnavailable,
    Inspected,
    Listed,
    Listing,
    Published,
)
from portscope.core.roles.model import Cast
from portscope.core.roles.procs import ProcInfo
from recorded_views import RecordedView, macos, recorded_container, systemd, windows


class RecordedDocker:
    """Docker's answer as recorded: `container` publishing the port on 0.0.0.0 and ::
    (None: no daemon)."""

    def __init__(self, container: Container | None, port: int) -> None:
        self.container, self.port = container, port

    def listing(self, deadline: float) -> Listing:
        if self.container is None:
            raise DockerUnavailable("no daemon in a recording")
        published = tuple(Published(ip, self.port, "tcp") for ip in ("0.0.0.0", "::"))
        return Listing(0, (Listed(self.container, published),))

    def inspect(self, container_id: str, deadline: float) -> Inspected | None:
        raise DockerUnavailable("no daemon in a recording")


def cast(view: RecordedView, port: int, lookup: Container | None = None) -> Cast:
    return cast_roles(
        view.holders(port), port, "tcp", view, is_root=True,
        containers=RecordedDocker(lookup, port),
    )


def test_nginx_under_systemd_is_stopped_through_its_unit() -> None:
    view, _ = systemd("nginx-systemd")
    plan = cast(view, 80).plan
    assert plan.how == "service" and plan.pids == ()
    assert plan.unit == "nginx.service"
    assert plan.command == "sudo systemctl stop nginx.service"
    assert "restart" in plan.why


def test_socket_activation_names_the_socket_unit_and_never_pid_1() -> None:
    view, _ = systemd("ssh-socket-activated-idle")
    c = cast(view, 22)
    assert c.plan.how == "service" and c.plan.pids == ()
    assert c.plan.unit == "ssh.socket"
    assert c.plan.command == "sudo systemctl stop ssh.socket"
    assert c.role(1) is not None and c.role(1).kind == "service"  # type: ignore[union-attr]


def test_socket_activated_service_running_stops_socket_and_service() -> None:
    view, _ = systemd("ssh-socket-activated-running")
    plan = cast(view, 22).plan
    assert plan.command == "sudo systemctl stop ssh.socket ssh.service"
    assert plan.pids == ()


@pytest.mark.parametrize("answers", [True, False])
def test_docker_proxies_in_a_recording_are_not_confirmed(answers: bool) -> None:
    """A recording holds no kernel facts (no /proc/PID/exe to read), so names alone never
    stop a container, and never docker.service (every container) either: only the holders,
    saying why. Confirmed plans are tested for real (test_docker_evidence_real.py)."""
    view, data = systemd("docker-systemd")
    c = cast(view, 8080, recorded_container(data) if answers else None)
    assert c.plan.how == "signal" and c.plan.container is None
    assert c.plan.pids == (2301, 2308)
    assert "docker.service" not in (c.plan.command or "")
    assert "PID 2301 calls itself docker-proxy, but its executable cannot be read" in c.plan.why


def test_podman_quadlet_is_stopped_through_its_user_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)  # its own user runs portscope
    view, _ = systemd("podman-rootless-quadlet")
    plan = cast(view, 6379).plan
    assert plan.how == "service"
    assert plan.command == "systemctl --user stop redis.service"


def test_podman_run_names_podman_and_how_to_find_the_container() -> None:
    view, _ = systemd("podman-rootless-run")
    plan = cast(view, 8080).plan
    assert plan.how == "service" and plan.pids == ()
    assert plan.command == "podman ps --filter publish=8080"
    assert "Podman container" in plan.why


@pytest.mark.parametrize("port", [5000, 7000])
def test_macos_airplay_receiver_is_a_setting(port: int) -> None:
    plan = cast(macos(), port).plan
    assert plan.how == "setting" and plan.pids == ()
    assert "AirPlay Receiver" in plan.command  # type: ignore[operator]


def test_macos_launchd_on_22_is_remote_login() -> None:
    plan = cast(macos(), 22).plan
    assert plan.how == "setting" and "Remote Login" in plan.command  # type: ignore[operator]


def test_macos_python_server_is_signalled() -> None:
    plan = cast(macos(), 8000).plan
    assert plan.how == "signal" and plan.pids == (41230,) and plan.command == "kill 41230"


def test_windows_http_sys_points_at_netsh() -> None:
    plan = cast(windows(), 80).plan
    assert plan.how == "service" and plan.pids == ()
    assert plan.command == "netsh http show servicestate view=requestq"


def test_windows_svchost_names_its_services() -> None:
    plan = cast(windows(), 135).plan
    assert plan.how == "service"
    assert plan.command == "net stop RpcEptMapper or RpcSs"


def test_windows_docker_desktop_is_a_container_not_a_kill() -> None:
    plan = cast(windows(), 8080).plan
    assert plan.how == "docker" and plan.pids == ()
    assert plan.command == "docker ps --filter publish=8080"


def test_windows_wslrelay_points_inside_wsl() -> None:
    plan = cast(windows(), 3000).plan
    assert plan.how == "none" and "wsl" in plan.command  # type: ignore[operator]
    assert "inside the Linux VM" in plan.why


def test_windows_plain_process_gets_taskkill() -> None:
    plan = cast(windows(), 5000).plan
    assert plan.how == "signal" and plan.command == "taskkill /PID 20344"


def managed(manager: ProcInfo, env: dict[str, str] | None = None) -> RecordedView:
    """A server (PID 300, port 9000) run by a process manager (PID 200) under init."""
    server = ProcInfo(300, 200, "node", ("node", "server.js"), 1_700_000_100.0)
    view = RecordedView("linux", {1: INIT, 200: manager, 300: server}, {9000: {300}})
    view.environments = {300: env or {}}
    return view


INIT = ProcInfo(1, 0, "systemd", ("/sbin/init",), 1_700_000_000.0, cgroup="/init.scope")


@pytest.mark.parametrize(
    ("manager", "env", "named"),
    [
        (ProcInfo(200, 1, "supervisord", ("/usr/bin/python3", "/usr/bin/supervisord", "-n"),
                  1_700_000_050.0), {"SUPERVISOR_PROCESS_NAME": "api"}, "supervisord"),
        (ProcInfo(200, 1, "PM2 v5.4.2: God", ("PM2 v5.4.2: God Daemon (/root/.pm2)",),
                  1_700_000_050.0), {"name": "api"}, "pm2"),
        (ProcInfo(200, 1, "runsv", ("runsv", "api"), 1_700_000_050.0), {}, "runit"),
        (ProcInfo(200, 1, "s6-supervise", ("s6-supervise", "api"), 1_700_000_050.0), {}, "s6"),
    ],
)
def test_process_managers_named_only_by_their_argv_change_only_the_words(
    manager: ProcInfo, env: dict[str, str], named: str
) -> None:
    """A recording without kernel facts cannot confirm a manager (its argv and environment
    are claims): the plan stops only the server and says what it could not confirm. The
    confirmed managers' commands are tested in test_managers_recorded.py."""
    c = cast(managed(manager, env), 9000)
    assert c.plan.how == "signal" and c.plan.pids == (300,)
    assert named in c.plan.why and "cannot confirm" in c.plan.why
    assert c.plan.command == "kill 300"


def test_an_ssh_tunnel_is_a_proxy_and_stopping_it_closes_the_tunnel() -> None:
    ssh = ProcInfo(500, 100, "ssh", ("ssh", "-N", "-L", "5432:db.internal:5432", "bastion"),
                   1_700_000_100.0)
    shell = ProcInfo(100, 1, "bash", ("-bash",), 1_700_000_000.0)
    view = RecordedView("linux", {1: INIT, 100: shell, 500: ssh}, {5432: {500}})
    c = cast(view, 5432)
    assert c.role(500) is not None and c.role(500).kind == "proxy"  # type: ignore[union-attr]
    assert c.plan.how == "signal" and c.plan.pids == (500,)
    assert "ssh tunnel" in c.plan.why and "closes the tunnel" in c.plan.why
