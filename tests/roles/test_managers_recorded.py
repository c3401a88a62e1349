"""The decisions of roles/managers.py, service_managers.py and restarters.py, and the unit
plan of roles/services.py, on recorded process trees with recorded kernel facts and manager
answers: what is confirmed, what is only claimed, what a forged name or a foreign user
changes. The same programs run for real
in test_managers_real.py; these cover the branches a real run cannot reach here (other
users, runit and s6, unconfirmed managers, names with shell syntax)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from portscope.core.model import Proto
from portscope.core.roles import service_managers, services
from portscope.core.roles.cast import cast_roles
from portscope.core.roles.docker_api import DockerUnavailable
from portscope.core.roles.evidence import Kernel
from portscope.core.roles.model import Cast
from portscope.core.roles.procs import ProcInfo
from recorded_views import RecordedView

T0 = 1_700_000_000.0
NODE, PYTHON, BASH = "/usr/bin/node", "/usr/bin/python3.11", "/usr/bin/bash"
SERVER = ("python3", "-m", "http.server", "9000")
FORGED = "stop all; curl x | sh #"


@dataclass
class Facts:
    """Kernel facts and manager answers, as managers.KernelFacts asks for them."""

    procs: dict[int, ProcInfo]
    kernels: dict[int, Kernel]
    sockets: dict[int, frozenset[str]] = field(default_factory=dict)
    answers: dict[tuple[str, ...], str] = field(default_factory=dict)
    asked: list[tuple[tuple[str, ...], int, dict[str, str]]] = field(default_factory=list)

    def kernel(self, pid: int) -> Kernel | None:
        return self.kernels.get(pid)

    def ancestors(self, pid: int) -> list[int]:
        chain = []
        parent = self.procs[pid].ppid if pid in self.procs else None
        while parent:
            chain.append(parent)
            parent = self.procs[parent].ppid if parent in self.procs else None
        return chain

    def unix_listening(self, pid: int) -> frozenset[str]:
        return self.sockets.get(pid, frozenset())

    def tool(self, name: str, near: str | None, path: str | None, uid: int) -> str | None:
        return f"/usr/bin/{name}"

    def ask(self, argv: list[str], uid: int, gid: int, env: dict[str, str]) -> str | None:
        self.asked.append((tuple(argv), uid, env))
        return self.answers.get(tuple(argv))


def proc(pid: int, ppid: int, argv: tuple[str, ...], *, cwd: str | None = None,
         name: str | None = None) -> ProcInfo:
    return ProcInfo(pid, ppid, name or argv[0].rsplit("/", 1)[-1][:15], argv, T0 + pid,
                    cwd=cwd)


def kern(pid: int, ppid: int, exe: str, euid: int = 1000, *, trusted: bool = True) -> Kernel:
    return Kernel(pid, ppid, euid, euid, euid, (), exe, 0 if trusted else euid, trusted)


def tree(
    rows: list[tuple[ProcInfo, str, int]], holders: set[int], *, port: int = 9000,
    env: dict[int, dict[str, str]] | None = None, facts: bool = True,
) -> tuple[RecordedView, Facts]:
    """A view of (process, exe, euid) rows under init, `holders` holding `port`."""
    procs = {1: proc(1, 0, ("/sbin/init",), name="systemd")}
    kernels = {1: kern(1, 0, "/usr/lib/systemd/systemd", 0)}
    for p, exe, euid in rows:
        procs[p.pid] = p
        kernels[p.pid] = kern(p.pid, p.ppid or 0, exe, euid)
    view = RecordedView("linux", procs, {port: holders})
    view.environments = env or {}
    recorded = Facts(procs, kernels)
    if facts:
        view.kernel_facts = recorded  # type: ignore[attr-defined]
    return view, recorded


def cast(view: RecordedView, port: int = 9000) -> Cast:
    def containers(port: int, proto: Proto, ip: str | None, cid: str | None) -> None:
        raise DockerUnavailable("no daemon in a recording")

    return cast_roles(view.holders(port), port, "tcp", view, is_root=True,
                      containers=containers)


@pytest.fixture(autouse=True)
def run_as_alice(monkeypatch: pytest.MonkeyPatch) -> None:
    """portscope runs as uid 1000, the servers' user, unless a test says otherwise."""
    monkeypatch.setattr(service_managers, "invoker", lambda: 1000)


# ---------------------------------------------------------------------------------------
# supervisord


def supervised(conf: tuple[str, ...] = ("-c", "/etc/sup.conf"), *, wrapper: bool = True,
               manager_euid: int = 1000) -> tuple[RecordedView, Facts]:
    rows = [(proc(100, 1, ("/usr/bin/python3", "/usr/bin/supervisord", "-n", *conf)), PYTHON,
             manager_euid)]
    if wrapper:
        rows.append((proc(200, 100, ("bash", "-c", "python3 -m http.server 9000; echo x")),
                     BASH, 1000))
    rows.append((proc(300, 200 if wrapper else 100, SERVER), PYTHON, 1000))
    return tree(rows, {300}, env={300: {"SUPERVISOR_PROCESS_NAME": FORGED}})


def status(name: str, pid: int) -> str:
    other = "other  RUNNING   pid 999, uptime 1:00:00"
    return f"{other}\n{name}  RUNNING   pid {pid}, uptime 0:01:00\n"


def test_supervisord_with_c_and_a_bash_wrapper_is_confirmed_by_supervisorctl() -> None:
    view, facts = supervised()
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status("web", 200)
    c = cast(view)
    assert c.plan.how == "service" and c.plan.pids == ()
    assert c.plan.command == "supervisorctl -c /etc/sup.conf stop web && kill 300"
    assert "wrapper" in c.plan.why
    evidence = {(f.pid, f.fact, f.value) for f in c.plan.evidence}
    assert {(100, "ancestor", "of PID 300"), (100, "exe", PYTHON),
            (100, "interface", "supervisorctl status: web RUNNING pid 200")} <= evidence
    assert facts.asked[0][1] == 1000  # asked as supervisord's own user
    role = c.role(100)
    assert role is not None and role.kind == "supervisor" and not role.holds
    assert c.plan.watch is not None and c.plan.watch >= 2.0


def test_supervisord_without_c_prints_no_c() -> None:
    view, facts = supervised(conf=(), wrapper=False)
    facts.answers[("/usr/bin/supervisorctl", "status")] = status("web", 300)
    assert cast(view).plan.command == "supervisorctl stop web"


def test_the_program_name_is_supervisorctls_never_the_environments() -> None:
    view, facts = supervised(wrapper=False)
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status("web", 300)
    plan = cast(view).plan
    assert plan.command == "supervisorctl -c /etc/sup.conf stop web"
    assert "curl" not in (plan.command or "") + plan.why


def test_a_name_with_shell_syntax_prints_no_command() -> None:
    view, facts = supervised(wrapper=False)
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status(
        "web$(id)", 300
    )
    plan = cast(view).plan
    assert plan.how == "service" and plan.command is None
    assert "no command is printed" in plan.why


def test_supervisorctl_not_listing_the_chain_is_no_confirmation() -> None:
    view, facts = supervised(wrapper=False)
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status("web", 4)
    plan = cast(view).plan
    assert plan.how == "signal" and plan.pids == (300,)
    assert "could not confirm" in plan.why


@pytest.mark.parametrize("euid", [1001, 0])
def test_supervisord_of_another_user_or_from_a_users_binary_is_not_acted_on(
    euid: int,
) -> None:
    """1001: another user's manager; 0: root, but running a binary root does not own."""
    view, facts = supervised(wrapper=False, manager_euid=euid)
    facts.kernels[100] = kern(100, 1, "/home/alice/venv/bin/python3", euid, trusted=False)
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status("web", 300)
    plan = cast(view).plan
    assert plan.how == "signal" and plan.pids == (300,)
    assert facts.asked == []


def test_a_root_supervisord_is_asked_as_root_and_its_command_needs_sudo() -> None:
    view, facts = supervised(wrapper=False, manager_euid=0)
    facts.answers[("/usr/bin/supervisorctl", "-c", "/etc/sup.conf", "status")] = status("web", 300)
    plan = cast(view).plan
    assert plan.command == "sudo supervisorctl -c /etc/sup.conf stop web"
    assert facts.asked[0][1] == 0


# ---------------------------------------------------------------------------------------
# pm2


HOME = "/home/alice/.pm2"


def jlist(*apps: tuple[str, int, str]) -> str:
    return "[PM2][WARN] Current process list is not synchronized\n" + json.dumps([
        {"pid": pid, "name": name, "pm2_env": {"exec_mode": mode, "restart_delay": 500}}
        for name, pid, mode in apps
    ])


def pm2_tree(*, cluster: bool = False, socket: bool = True) -> tuple[RecordedView, Facts]:
    daemon = proc(100, 1, ("PM2", "v5.4.2:", "God", "Daemon", "(/home/alice/.p"),
                  name="PM2 v5.4.2: God")
    if cluster:
        rows = [(daemon, NODE, 1000), (proc(301, 100, ("node", "/srv/app.js")), NODE, 1000),
                (proc(302, 100, ("node", "/srv/app.js")), NODE, 1000)]
        view, facts = tree(rows, {100}, env={100: {"PM2_HOME": HOME}})
    else:
        rows = [(daemon, NODE, 1000), (proc(300, 100, ("node", "/srv/app.js")), NODE, 1000)]
        view, facts = tree(rows, {300}, env={100: {"PM2_HOME": HOME}})
    if socket:
        facts.sockets[100] = frozenset({f"{HOME}/rpc.sock", f"{HOME}/pub.sock"})
    return view, facts


def test_pm2_fork_mode_names_the_app_and_the_daemons_home() -> None:
    view, facts = pm2_tree()
    facts.answers[("/usr/bin/pm2", "jlist")] = jlist(("api", 300, "fork_mode"))
    plan = cast(view).plan
    assert plan.how == "service" and plan.pids == ()
    assert plan.command == f"PM2_HOME={HOME} pm2 stop api"
    assert facts.asked == [(("/usr/bin/pm2", "jlist"), 1000, {"PM2_HOME": HOME})]
    assert plan.watch == pytest.approx(0.1 + 0.5 + 1.0)
    assert {(f.fact, f.value) for f in plan.evidence} >= {
        ("socket", f"{HOME}/rpc.sock"), ("interface", "pm2 jlist: api pid 300"),
    }


def test_pm2_of_another_user_is_stopped_as_that_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_managers, "invoker", lambda: 0)
    monkeypatch.setattr(service_managers, "user_name", lambda uid: "alice" if uid == 1000 else None)
    view, facts = pm2_tree()
    facts.answers[("/usr/bin/pm2", "jlist")] = jlist(("api", 300, "fork_mode"))
    assert cast(view).plan.command == f"sudo -u alice env PM2_HOME={HOME} pm2 stop api"


def test_pm2_home_the_daemon_does_not_listen_on_is_no_confirmation() -> None:
    """PM2_HOME is read from the environment (a claim): the daemon must hold its rpc.sock,
    or pm2 jlist is never run (it would start a new daemon there)."""
    view, facts = pm2_tree(socket=False)
    plan = cast(view).plan
    assert plan.how == "signal" and plan.pids == (300,)
    assert "could not confirm" in plan.why
    assert facts.asked == []


def test_pm2_cluster_mode_is_never_a_signal() -> None:
    view, facts = pm2_tree(cluster=True)
    facts.answers[("/usr/bin/pm2", "jlist")] = jlist(
        ("api", 301, "cluster_mode"), ("api", 302, "cluster_mode"), ("web", 400, "fork_mode")
    )
    c = cast(view)
    assert c.plan.how == "service" and c.plan.pids == ()
    assert c.plan.command == f"PM2_HOME={HOME} pm2 stop api"
    assert "every pm2 app" in c.plan.why
    role = c.role(100)
    assert role is not None and role.kind == "supervisor" and role.holds


def test_pm2_with_two_cluster_apps_lists_them_and_stops_none() -> None:
    view, facts = pm2_tree(cluster=True)
    facts.answers[("/usr/bin/pm2", "jlist")] = jlist(
        ("api", 301, "cluster_mode"), ("jobs", 302, "cluster_mode")
    )
    plan = cast(view).plan
    assert plan.how == "service" and plan.command == f"PM2_HOME={HOME} pm2 list"
    assert "api, jobs" in plan.why


@pytest.mark.parametrize("facts_known", [True, False])
def test_an_unconfirmed_pm2_daemon_holding_the_socket_is_not_signalled(
    facts_known: bool,
) -> None:
    view, _ = pm2_tree(cluster=True, socket=False)
    if not facts_known:
        del view.kernel_facts  # type: ignore[attr-defined]
    plan = cast(view).plan
    assert plan.how == "service" and plan.pids == ()
    assert "could not confirm" in plan.why


def test_a_forged_pm2_title_on_another_binary_is_an_ordinary_server() -> None:
    view, facts = pm2_tree(cluster=True)
    facts.kernels[100] = kern(100, 1, PYTHON)
    plan = cast(view).plan
    assert plan.how == "signal" and plan.pids == (100,)


# ---------------------------------------------------------------------------------------
# runit and s6: the service directory is where the supervisor runs


@pytest.mark.parametrize(
    ("argv", "exe", "tool", "answer", "command"),
    [
        (("runsv", "api"), "/usr/bin/runsv", ("/usr/bin/sv", "status", "/etc/service/api"),
         "run: /etc/service/api: (pid 300) 42s", "sv down /etc/service/api"),
        (("s6-supervise", "api"), "/usr/bin/s6-supervise",
         ("/usr/bin/s6-svstat", "/etc/service/api"), "up (pid 300) 42 seconds",
         "s6-svc -d /etc/service/api"),
    ],
)
def test_runit_and_s6_take_the_service_directory_down(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], exe: str,
    tool: tuple[str, ...], answer: str, command: str,
) -> None:
    monkeypatch.setattr(service_managers, "invoker", lambda: 0)
    view, facts = tree([(proc(100, 1, argv, cwd="/etc/service/api"), exe, 0),
                        (proc(300, 100, SERVER), PYTHON, 1000)], {300})
    facts.answers[tool] = answer
    plan = cast(view).plan
    assert plan.how == "service" and plan.command == command


# ---------------------------------------------------------------------------------------
# Procfile managers and watchers


def test_honcho_is_the_target_and_its_siblings_are_named_escaped() -> None:
    honcho = ("/usr/bin/python3", "/usr/bin/honcho", "start")
    rows = [
        (proc(100, 1, honcho), PYTHON, 1000),
        (proc(110, 100, honcho), PYTHON, 1000),
        (proc(111, 110, ("/bin/sh", "-c", "python3 -m http.server 9000")), "/usr/bin/dash", 1000),
        (proc(112, 111, SERVER), PYTHON, 1000),
        (proc(120, 100, honcho), PYTHON, 1000),
        (proc(121, 120, ("/bin/sh", "-c", "worker")), "/usr/bin/dash", 1000),
        (proc(122, 121, ("worker", "\x1b[2J")), "/usr/bin/worker", 1000),
    ]
    view, _ = tree(rows, {112})
    c = cast(view)
    assert c.plan.how == "signal" and c.plan.pids == (100,)
    assert "1 other process" in c.plan.why and "worker \\x1b[2J" in c.plan.why
    assert "\x1b" not in c.plan.why
    assert any(f.pid == 100 and f.fact == "ancestor" for f in c.plan.evidence)


NODEMON = ("node", "/usr/lib/node_modules/nodemon/bin/nodemon.js", "--exec", "sh -c 'x'")


@pytest.mark.parametrize(
    ("argv", "exe"),
    [(("entr", "-r", "sh", "-c", "x"), "/usr/bin/entr"), (NODEMON, NODE),
     (("/usr/bin/python3", "/usr/local/bin/watchfiles", "x"), PYTHON),
     (("watchexec", "-r", "--", "x"), "/usr/local/bin/watchexec")],
)
def test_a_watcher_above_shell_wrappers_is_stopped_before_the_server(
    argv: tuple[str, ...], exe: str
) -> None:
    rows = [(proc(100, 1, argv), exe, 1000),
            (proc(200, 100, ("sh", "-c", "sh -c x")), "/usr/bin/dash", 1000),
            (proc(210, 200, ("sh", "-c", "x")), "/usr/bin/dash", 1000),
            (proc(300, 210, SERVER), PYTHON, 1000)]
    view, _ = tree(rows, {300})
    c = cast(view)
    assert c.plan.pids == (100, 300) and c.plan.command == "kill 100 300"
    role = c.role(100)
    assert role is not None and role.kind == "reloader" and not role.holds


def test_a_watcher_of_another_user_is_not_signalled() -> None:
    view, _ = tree([(proc(100, 1, ("entr", "-r", "x")), "/usr/bin/entr", 1001),
                    (proc(300, 100, SERVER), PYTHON, 1000)], {300})
    plan = cast(view).plan
    assert plan.pids == (300,) and "does not back it" in plan.why


def test_a_claimed_watcher_on_another_binary_is_not_signalled() -> None:
    view, _ = tree([(proc(100, 1, NODEMON), PYTHON, 1000),
                    (proc(300, 100, SERVER), PYTHON, 1000)], {300})
    assert cast(view).plan.pids == (300,)


def test_a_watcher_above_another_program_does_not_restart_the_server() -> None:
    """watchexec -- pytest: the tests' server is pytest's, not the watcher's."""
    rows = [(proc(100, 1, ("watchexec", "--", "pytest")), "/usr/bin/watchexec", 1000),
            (proc(200, 100, ("/usr/bin/python3", "-m", "pytest")), PYTHON, 1000),
            (proc(300, 200, SERVER), PYTHON, 1000)]
    view, _ = tree(rows, {300})
    plan = cast(view).plan
    assert plan.pids == (300,) and "watchexec" not in plan.why


def test_without_kernel_facts_a_manager_only_changes_the_words() -> None:
    view, _ = supervised(wrapper=False)
    del view.kernel_facts  # type: ignore[attr-defined]
    plan = cast(view).plan
    assert plan.how == "signal" and plan.pids == (300,)
    assert "supervisord" in plan.why and "cannot confirm" in plan.why


# ---------------------------------------------------------------------------------------
# Masters


def test_a_parent_running_the_workers_program_without_a_socket_is_their_master() -> None:
    granian = ("/venv/bin/python3", "/venv/bin/granian", "--workers", "2",
               "--respawn-failed-workers", "app:app")
    rows = [(proc(100, 1, granian), PYTHON, 1000), (proc(101, 100, granian), PYTHON, 1000),
            (proc(102, 100, granian), PYTHON, 1000)]
    view, _ = tree(rows, {101, 102})
    c = cast(view)
    assert c.plan.pids == (100,) and c.plan.followers == (101, 102)
    assert c.plan.watch == pytest.approx(4.5)  # granian's respawn interval + 1 s
    master = c.role(100)
    assert master is not None and master.kind == "master" and not master.holds
    assert {r.kind for r in c.holders} == {"worker"}


def test_djangos_reloader_is_not_taken_for_a_master() -> None:
    runserver = ("/usr/bin/python3", "manage.py", "runserver")
    view, _ = tree([(proc(100, 1, runserver), PYTHON, 1000),
                    (proc(101, 100, runserver), PYTHON, 1000)], {101},
                   env={101: {"RUN_MAIN": "true"}})
    assert cast(view).plan.pids == (101,)


def test_a_same_argv_parent_running_another_binary_is_no_master() -> None:
    argv = ("server", "--port", "9000")
    view, _ = tree([(proc(100, 1, argv), "/usr/bin/bash", 1000),
                    (proc(101, 100, argv), "/usr/local/bin/server", 1000)], {101})
    assert cast(view).plan.pids == (101,)


def test_php_workers_are_targets_and_uwsgi_gets_sigint() -> None:
    php = ("php", "-S", "127.0.0.1:9000")
    view, _ = tree([(proc(100, 1, php), "/usr/bin/php8.2", 1000),
                    (proc(101, 100, php), "/usr/bin/php8.2", 1000),
                    (proc(102, 100, php), "/usr/bin/php8.2", 1000)], {100, 101, 102})
    assert cast(view).plan.pids == (100, 101, 102)
    uwsgi = ("uwsgi", "--master", "--processes", "2")
    view, _ = tree([(proc(100, 1, uwsgi), "/usr/bin/uwsgi-core", 1000),
                    (proc(101, 100, uwsgi), "/usr/bin/uwsgi-core", 1000)], {100, 101})
    plan = cast(view).plan
    assert plan.pids == (100,) and plan.signal == "INT" and plan.command == "kill -INT 100"


# ---------------------------------------------------------------------------------------
# systemd units from cgroup paths


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("/system.slice/nginx.service", ("nginx.service", False)),
        ("/system.slice/system-getty.slice/getty@tty1.service", ("getty@tty1.service", False)),
        # Inside a delegated unit a process may make any directory: the unit is still the
        # delegated one, never a name made below it.
        ("/system.slice/docker.service/nginx.service", ("docker.service", False)),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service/runtime",
         ("redis.service", True)),
        ("/user.slice/user-1000.slice/user@1000.service/system.slice/sshd.service",
         ("sshd.service", True)),
        ("/user.slice/user-1000.slice/session-3.scope", None),
        ("/user.slice/user-1000.slice/user@1000.service/init.scope", None),
        ("/user.slice/user-1000.slice/user@1000.service", None),
        ("/system.slice/docker-4f9a.scope", None),
        ("/init.scope", None),
        ("/", None),
    ],
)
def test_systemd_unit_is_the_first_unit_systemd_made(
    cgroup: str, unit: tuple[str, bool] | None
) -> None:
    assert services.systemd_unit(cgroup) == unit


def user_unit_view(uid: int, unit: str = "api.service") -> RecordedView:
    cgroup = f"/user.slice/user-{uid}.slice/user@{uid}.service/app.slice/{unit}"
    server = ProcInfo(300, 1, "python3", SERVER, T0, uid=1000, cgroup=cgroup)
    return RecordedView("linux", {300: server}, {9000: {300}})


def test_a_user_unit_is_stopped_through_that_users_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    assert cast(user_unit_view(1000)).plan.command == "systemctl --user stop api.service"
    monkeypatch.setattr(services.os, "geteuid", lambda: 0)
    plan = cast(user_unit_view(1000)).plan
    assert plan.command is not None and plan.command.startswith("systemctl --user -M ")
    assert plan.command.endswith("@ stop api.service")


def test_a_unit_in_another_users_tree_or_with_shell_syntax_prints_no_unit_command() -> None:
    assert cast(user_unit_view(1001)).plan.how == "signal"  # not the holder's own manager
    plan = cast(user_unit_view(1000, "a;reboot.service")).plan
    assert plan.how == "service" and plan.command is None
    assert "no command is printed" in plan.why


def test_a_watcher_above_a_master_stops_the_master_and_rests_on_both() -> None:
    granian = ("/venv/bin/python3", "/venv/bin/granian", "--workers", "2", "app:app")
    rows = [(proc(90, 1, ("entr", "-r", "granian")), "/usr/bin/entr", 1000),
            (proc(100, 90, granian), PYTHON, 1000), (proc(101, 100, granian), PYTHON, 1000),
            (proc(102, 100, granian), PYTHON, 1000)]
    view, _ = tree(rows, {101, 102})
    plan = cast(view).plan
    assert plan.pids == (90, 100) and plan.followers == (101, 102)
    facts = {(f.pid, f.fact, f.value) for f in plan.evidence}
    assert {(100, "ancestor", "of PID 101, 102"), (90, "ancestor", "of PID 101")} <= facts
