"""Process managers and restarters, for real (issue 17): pm2 (fork and cluster mode),
supervisord with a `bash -c` wrapper, honcho, entr, nodemon, watchfiles, granian, haproxy
-W, php -S with workers and uwsgi --master (tests/real_servers.py starts each).

For each: `check --json` plans what an expert would do, with the kernel facts it rests on;
`kill --yes` carries out a signal plan (exit 0, the port stays free) and signals nothing
for a service plan (exit 1); a printed service command, run as printed by a shell, frees
the port for good; nothing outside the plan dies (the other pm2 apps and supervisor
programs, and a bystander server of the test's own).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from real_servers import (
    FORGED_NAME,
    LOOPBACK,
    MANAGED,
    Managed,
    Running,
    descendants,
    free_port,
    listener_holders,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

FREE_FOR = 2.0  # seconds the port must stay free once stopped (the issue: 2-3 s)


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def checked(port: int) -> dict[str, object]:
    done = portscope("check", str(port), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def plan_of(port: int) -> dict[str, object]:
    stop = checked(port)["stop"]
    assert isinstance(stop, dict)
    return stop


def kill(port: int) -> tuple[int, dict[str, object]]:
    killed = portscope("kill", str(port), "--yes", "--json")
    return killed.returncode, json.loads(killed.stdout)


def facts(stop: dict[str, object]) -> set[tuple[int, str, str]]:
    evidence = stop["evidence"]
    assert isinstance(evidence, list)
    return {(e["pid"], e["fact"], e["value"]) for e in evidence}


def wait_free(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while listener_holders(port):
        assert time.monotonic() < deadline, f"port {port} still held after {timeout} s"
        time.sleep(0.05)


def stays_free(port: int, seconds: float = FREE_FOR) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not listener_holders(port), f"port {port} taken again"
        time.sleep(0.1)


def run_printed(command: str, srv: Managed) -> None:
    """The printed command, typed into a shell as it is (PATH may name a venv's tools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM2_", "SUPERVISOR_"))}
    env.update({k: v for k, v in srv.env.items() if k == "PATH"})
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def bystander() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A server of the test's own that no plan names: it must outlive every stop."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", LOOPBACK],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not listener_holders(port):
        assert time.monotonic() < deadline and proc.poll() is None, "bystander did not start"
        time.sleep(0.02)
    yield proc, port
    proc.kill()
    proc.wait(timeout=10)


def untouched(bystander: tuple[subprocess.Popen[bytes], int]) -> bool:
    proc, port = bystander
    return proc.poll() is None and listener_holders(port) == {proc.pid}


def module_server(name: str) -> Callable[[], Iterator[Managed]]:
    def fixture() -> Iterator[Managed]:
        srv = MANAGED[name]()
        yield srv
        srv.stop()

    return fixture


pm2 = pytest.fixture(scope="module")(module_server("pm2"))
supervisord = pytest.fixture(scope="module")(module_server("supervisord"))


@pytest.fixture
def managed() -> Iterator[Callable[[str], Managed]]:
    started: list[Running] = []

    def start(name: str) -> Managed:
        srv = MANAGED[name]()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        srv.stop()


# ---------------------------------------------------------------------------------------
# Service managers: the plan is their command; kill signals nothing


def test_pm2_fork_mode_is_stopped_through_pm2_with_the_daemons_home(
    pm2: Managed, bystander: tuple[subprocess.Popen[bytes], int]
) -> None:
    [app] = pm2.pids_holding
    home, daemon = pm2.env["PM2_HOME"], pm2.manager_pid
    stop = plan_of(pm2.port)
    assert stop["how"] == "service" and stop["pids"] == []
    assert stop["command"] == f"PM2_HOME={home} pm2 stop web"
    assert {(daemon, "ancestor", f"of PID {app}"),
            (daemon, "interface", f"pm2 jlist: web pid {app}"),
            (daemon, "euid", str(os.geteuid())),
            (daemon, "socket", f"{home}/rpc.sock")} <= facts(stop)
    assert any(p == daemon and f == "exe" and os.path.basename(v).startswith("node")
               for p, f, v in facts(stop))

    rc, outcome = kill(pm2.port)
    assert rc == 1 and outcome["targets"] == [] and outcome["how"] == "service"
    assert listener_holders(pm2.port) == {app}  # nothing was signalled

    run_printed(str(stop["command"]), pm2)
    wait_free(pm2.port)
    stays_free(pm2.port, 1.1 + 0.5)  # pm2's restart delay (0.1 s) with a margin
    assert listener_holders(pm2.others["api"]) == {daemon}
    assert listener_holders(pm2.others["bystander"])
    assert untouched(bystander)


def test_pm2_cluster_mode_never_signals_the_daemon(
    pm2: Managed, bystander: tuple[subprocess.Popen[bytes], int]
) -> None:
    port, daemon, home = pm2.others["api"], pm2.manager_pid, pm2.env["PM2_HOME"]
    assert listener_holders(port) == {daemon}  # the daemon is the cluster's primary
    stop = plan_of(port)
    assert stop["how"] == "service" and stop["pids"] == []
    assert stop["command"] == f"PM2_HOME={home} pm2 stop api"
    assert "would stop every pm2 app" in str(stop["why"])
    assert (daemon, "holder", "holds the listening socket") in facts(stop)
    assert any(f[1] == "interface" and f[2].startswith("pm2 jlist: api cluster workers")
               for f in facts(stop))

    rc, outcome = kill(port)
    assert rc == 1 and outcome["targets"] == []
    assert listener_holders(port) == {daemon}

    run_printed(str(stop["command"]), pm2)
    wait_free(port)
    stays_free(port, 1.6)
    assert daemon in descendants(daemon)  # the daemon, and so every other app, lives on
    assert listener_holders(pm2.others["bystander"])
    assert untouched(bystander)


def test_pm2_with_two_cluster_apps_names_no_app_and_stops_nothing(pm2: Managed) -> None:
    """The daemon holds every cluster app's socket: which app a port is cannot be known,
    so the plan lists them and stops none."""
    home, daemon = pm2.env["PM2_HOME"], pm2.manager_pid
    ports = [free_port(), free_port()]
    for name, port in zip(("one", "two"), ports, strict=True):
        subprocess.run(
            ["pm2", "start", str(pm2.workdir / "app.js"), "--name", name, "-i", "2"],
            env={**os.environ, "PM2_HOME": home, "PORT": str(port)}, capture_output=True,
            timeout=60, check=True,
        )
    deadline = time.monotonic() + 30
    while not all(listener_holders(p) == {daemon} for p in ports):
        assert time.monotonic() < deadline, "the cluster apps did not listen"
        time.sleep(0.05)
    pm2.remember()
    stop = plan_of(ports[0])
    assert stop["how"] == "service"
    assert stop["command"] == f"PM2_HOME={home} pm2 list"
    assert "one" in str(stop["why"]) and "two" in str(stop["why"])
    rc, outcome = kill(ports[0])
    assert rc == 1 and outcome["targets"] == []
    assert all(listener_holders(p) == {daemon} for p in ports)


def test_supervisord_with_a_bash_wrapper_prints_a_command_that_frees_the_port(
    supervisord: Managed, bystander: tuple[subprocess.Popen[bytes], int]
) -> None:
    srv = supervisord
    [server] = srv.pids_holding
    conf = srv.workdir / "supervisord.conf"
    stop = plan_of(srv.port)
    assert stop["how"] == "service" and stop["pids"] == []
    # supervisorctl stops bash only, which leaves the server: the command stops it too.
    assert stop["command"] == f"supervisorctl -c {conf} stop web && kill {server}"
    wrapper = next(p for p, s in descendants(srv.manager_pid).items() if p != srv.manager_pid
                   and server in descendants(p) and p != server)
    assert (srv.manager_pid, "ancestor", f"of PID {server}") in facts(stop)
    assert (srv.manager_pid, "interface", f"supervisorctl status: web RUNNING pid {wrapper}") \
        in facts(stop)

    rc, outcome = kill(srv.port)
    assert rc == 1 and outcome["targets"] == []
    assert listener_holders(srv.port) == {server}

    run_printed(str(stop["command"]), srv)
    wait_free(srv.port)
    stays_free(srv.port, 2.5)  # supervisord restarts within ms; its backoff is 1 s
    assert listener_holders(srv.others["port1"])  # the other program runs on
    assert untouched(bystander)


def test_a_supervisor_program_name_comes_from_supervisorctl_never_from_its_env(
    supervisord: Managed,
) -> None:
    srv = supervisord
    port = srv.others["port1"]
    [server] = listener_holders(port)
    with open(f"/proc/{server}/environ", "rb") as fh:
        assert f"SUPERVISOR_PROCESS_NAME={FORGED_NAME}".encode() in fh.read().split(b"\0")
    stop = plan_of(port)
    conf = srv.workdir / "supervisord.conf"
    assert stop["command"] == f"supervisorctl -c {conf} stop forged"
    assert "curl" not in json.dumps(stop)
    run_printed(str(stop["command"]), srv)
    wait_free(port)
    stays_free(port, 2.5)


# ---------------------------------------------------------------------------------------
# Signalled controllers: kill carries out the plan, and the port stays free


def assert_kill_frees(srv: Managed, stop: dict[str, object]) -> dict[str, object]:
    rc, outcome = kill(srv.port)
    assert rc == 0, outcome
    targets = outcome["targets"]
    assert isinstance(targets, list)
    assert [t["pid"] for t in targets] == stop["pids"]
    assert outcome["restarted_by"] is None
    stays_free(srv.port)
    assert not srv.alive(), f"left running: {srv.alive()}"  # everything the plan stops
    return outcome


def test_honcho_plan_stops_the_manager_and_says_which_siblings_go_with_it(
    managed: Callable[[str], Managed], bystander: tuple[subprocess.Popen[bytes], int]
) -> None:
    srv = managed("honcho")
    [server] = srv.pids_holding
    answer = checked(srv.port)
    stop = answer["stop"]
    assert isinstance(stop, dict) and isinstance(answer["advice"], list)
    assert answer["advice"][0].startswith("Stop the Procfile manager")
    assert stop["how"] == "signal" and stop["pids"] == [srv.manager_pid]
    why = str(stop["why"])
    assert "honcho" in why and "1 other process" in why and "sleep 600" in why
    assert (srv.manager_pid, "ancestor", f"of PID {server}") in facts(stop)
    assert_kill_frees(srv, stop)
    assert untouched(bystander)


@pytest.mark.parametrize("name", ["entr", "nodemon", "watchfiles"])
def test_a_watcher_is_stopped_before_its_server(
    managed: Callable[[str], Managed], bystander: tuple[subprocess.Popen[bytes], int], name: str
) -> None:
    srv = managed(name)
    [server] = srv.pids_holding
    answer = checked(srv.port)
    stop = answer["stop"]
    assert isinstance(stop, dict) and isinstance(answer["advice"], list)
    assert answer["advice"][0].startswith("Stop the file watcher first, then the server: kill")
    assert stop["how"] == "signal"
    assert stop["pids"] == [srv.manager_pid, server]
    assert stop["command"] == f"kill {srv.manager_pid} {server}"
    assert (srv.manager_pid, "ancestor", f"of PID {server}") in facts(stop)
    assert (srv.manager_pid, "euid", str(os.geteuid())) in facts(stop)
    assert name in str(stop["why"])
    assert_kill_frees(srv, stop)
    assert untouched(bystander)


@pytest.mark.parametrize("name", ["granian", "haproxy"])
def test_a_master_that_holds_no_socket_is_the_one_stopped(
    managed: Callable[[str], Managed], name: str
) -> None:
    srv = managed(name)
    master = srv.manager_pid
    assert master not in srv.pids_holding
    stop = plan_of(srv.port)
    assert stop["how"] == "signal" and stop["pids"] == [master]
    assert stop["command"] == f"kill {master}"
    workers = ", ".join(map(str, sorted(srv.pids_holding)))
    assert (master, "ancestor", f"of PID {workers}") in facts(stop)
    assert_kill_frees(srv, stop)


def test_php_workers_are_stopped_with_their_master(managed: Callable[[str], Managed]) -> None:
    srv = managed("php-workers")
    workers = sorted(srv.pids_holding - {srv.manager_pid})
    stop = plan_of(srv.port)
    assert stop["pids"] == [srv.manager_pid, *workers]
    assert "workers keep listening" in str(stop["why"])
    assert_kill_frees(srv, stop)


def test_uwsgi_is_stopped_with_sigint_not_the_sigterm_it_takes_as_reload(
    managed: Callable[[str], Managed],
) -> None:
    srv = managed("uwsgi")
    stop = plan_of(srv.port)
    assert stop["pids"] == [srv.manager_pid]
    assert stop["command"] == f"kill -INT {srv.manager_pid}"
    assert "reload" in str(stop["why"])
    outcome = assert_kill_frees(srv, stop)
    assert [t["signal"] for t in outcome["targets"]] == ["INT"]  # type: ignore[union-attr]


def test_the_printed_watcher_command_is_a_plain_kill(managed: Callable[[str], Managed]) -> None:
    """What check prints for a signal plan runs as printed, too."""
    srv = managed("entr")
    stop = plan_of(srv.port)
    run_printed(str(stop["command"]), srv)
    wait_free(srv.port)
    stays_free(srv.port, 1.5)
    assert shlex.split(str(stop["command"]))[0] == "kill"
