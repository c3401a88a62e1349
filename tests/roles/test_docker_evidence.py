"""Issue 17: a container is stopped only on facts a local user cannot forge. Each rule of
containers.py, one forged or missing fact at a time, with the kernel's and Docker's answers
given (the real daemon and real forgeries: test_docker_evidence_real.py)."""

from __future__ import annotations

import time

import pytest

from portscope.core.kill.container import stop_container, with_timeout
from portscope.core.kill.plan import KillPlan
from portscope.core.model import Container
from portscope.core.roles.cast import holders_only
from portscope.core.roles.containers import Bound, ContainerStep, stop_command
from portscope.core.roles.docker_api import (
    DockerUnavailable,
    Inspected,
    Listed,
    Listing,
    Published,
)
from portscope.core.roles.evidence import Fact, Kernel
from portscope.core.roles.model import Role, StopPlan
from portscope.core.roles.procs import ProcInfo

PROXY, PROXY6, FORGED, DOCKERD, SHELL = 900, 901, 950, 800, 700
USER = 4_000_001  # a uid with no name in passwd anywhere: shown as its number
WEB = Container("a" * 64, "web", "nginx:1.27")
API = Container("b" * 64, "api", "api:2")
PROXY_ARGV = ("/usr/sbin/docker-proxy", "-proto", "tcp", "-host-ip", "127.0.0.1",
              "-host-port", "8080", "-container-ip", "172.17.0.3", "-container-port", "80")


def kernel(pid: int, ppid: int, exe: str | None, euid: int = 0, trusted: bool = True) -> Kernel:
    return Kernel(pid, ppid, euid, euid, euid, (), exe, 0 if trusted else euid, trusted)


def proxy(pid: int = PROXY, name: str = "docker-proxy") -> ProcInfo:
    return ProcInfo(pid, DOCKERD, name, PROXY_ARGV, 1_700_000_000.0)


REAL = {
    PROXY: kernel(PROXY, DOCKERD, "/usr/sbin/docker-proxy"),
    PROXY6: kernel(PROXY6, DOCKERD, "/usr/sbin/docker-proxy"),
    DOCKERD: kernel(DOCKERD, 1, "/usr/sbin/dockerd"),
}


class Docker:
    """Docker's answers; None: the daemon does not answer. Records each deadline given."""

    def __init__(
        self, listed: tuple[Listed, ...] | None = (), owner: int = 0,
        inspected: dict[str, Inspected] | None = None,
    ) -> None:
        self.listed, self.owner, self.inspected = listed, owner, inspected or {}
        self.deadlines: list[float] = []

    def listing(self, deadline: float) -> Listing:
        self.deadlines.append(deadline)
        if self.listed is None:
            raise DockerUnavailable("connection refused")
        return Listing(self.owner, self.listed)

    def inspect(self, container_id: str, deadline: float) -> Inspected | None:
        self.deadlines.append(deadline)
        return self.inspected.get(container_id)


def publishing(c: Container, *where: str, port: int = 8080) -> Listed:
    return Listed(c, tuple(Published(ip, port, "tcp") for ip in where))


def decide(
    docker: Docker, kernels: dict[int, Kernel], infos: list[ProcInfo], bound: Bound,
    ancestors: dict[int, list[int]] | None = None,
) -> tuple[StopPlan | None, ContainerStep, dict[int, Role]]:
    step = ContainerStep(
        docker, bound, holders_only(), kernel_of=kernels.get,
        ancestors_of=lambda pid: (ancestors or {}).get(pid, []),
    )
    roles: dict[int, Role] = {}
    plan = step({p.pid: p for p in infos}, 8080, "tcp", holders_only(), roles)
    return plan, step, roles


ON_LOOPBACK: Bound = {PROXY: (("127.0.0.1", 8080),)}


def test_a_real_proxy_for_one_container_stops_that_container_with_its_evidence() -> None:
    plan, step, roles = decide(Docker((publishing(WEB, "127.0.0.1"),)), REAL, [proxy()],
                               ON_LOOPBACK)
    assert plan is not None and plan.how == "docker" and plan.container == WEB
    assert plan.command == "docker stop web" and plan.pids == ()
    assert Fact(PROXY, "exe", "/usr/sbin/docker-proxy", "root") in plan.evidence
    assert Fact(PROXY, "euid", "0", "root") in plan.evidence
    assert Fact(DOCKERD, "exe", "/usr/sbin/dockerd", "root") in plan.evidence
    assert Fact(PROXY, "listens", "127.0.0.1:8080/tcp") in plan.evidence
    assert Fact(None, "docker", f"{WEB.id} publishes 127.0.0.1:8080/tcp", "root") in plan.evidence
    assert roles[PROXY].kind == "proxy" and roles[PROXY].note == "docker-proxy for web"
    assert not step.notes


@pytest.mark.parametrize(
    ("kernels", "docker", "why_not"),
    [
        ({**REAL, PROXY: kernel(PROXY, DOCKERD, "/usr/bin/python3.11")},
         Docker((publishing(WEB, "127.0.0.1"),)),
         "its executable /usr/bin/python3.11 is not a root-owned docker-proxy"),
        ({**REAL, PROXY: kernel(PROXY, DOCKERD, "/tmp/x/docker-proxy", trusted=False)},
         Docker((publishing(WEB, "127.0.0.1"),)),
         "its executable /tmp/x/docker-proxy is not a root-owned docker-proxy"),
        ({**REAL, PROXY: kernel(PROXY, DOCKERD, None)}, Docker((publishing(WEB, "127.0.0.1"),)),
         "its executable cannot be read (only root sees another user's)"),
        ({**REAL, PROXY: kernel(PROXY, DOCKERD, "/usr/sbin/docker-proxy", euid=USER)},
         Docker((publishing(WEB, "127.0.0.1"),)),
         f"it runs as {USER}, not as root, whose Docker answered"),
        ({**REAL, PROXY: kernel(PROXY, SHELL, "/usr/sbin/docker-proxy"),
          SHELL: kernel(SHELL, 1, "/usr/bin/bash")},
         Docker((publishing(WEB, "127.0.0.1"),)),
         "its parent (PID 700, /usr/bin/bash) is not a root-owned dockerd or containerd"),
        ({**REAL, DOCKERD: kernel(DOCKERD, 1, "/home/u/dockerd", trusted=False)},
         Docker((publishing(WEB, "127.0.0.1"),)),
         "its parent (PID 800, /home/u/dockerd) is not a root-owned dockerd or containerd"),
        # argv says -container-ip of web, but Docker lists web elsewhere: argv is a claim
        (REAL, Docker((publishing(WEB, "::1"),)),
         "Docker lists no running container publishing 127.0.0.1:8080/tcp"),
        (REAL, Docker((publishing(WEB, "127.0.0.1"), publishing(API, "127.0.0.1"))),
         "Docker lists 2 containers publishing 127.0.0.1:8080/tcp"),
    ],
)
def test_a_missing_fact_means_no_container_plan_and_says_why(
    kernels: dict[int, Kernel], docker: Docker, why_not: str
) -> None:
    plan, step, roles = decide(docker, kernels, [proxy()], ON_LOOPBACK)
    assert plan is None and step.unconfirmed and step.spared == ()
    [note] = step.notes
    assert note == f"PID {PROXY} calls itself docker-proxy, but {why_not}: no container is " \
        "stopped for it"
    assert PROXY not in roles  # the holder's own role, as for any server
    fallback = StopPlan("signal", (PROXY,), f"kill {PROXY}", f"PID {PROXY} holds the socket")
    assert step.explained(fallback).why == f"PID {PROXY} holds the socket; {note}"


def test_dockers_own_proxy_is_never_signalled_when_docker_does_not_answer() -> None:
    """Kernel facts say it is Docker's proxy, but which container it serves is unknown:
    nothing is stopped (killing the proxy would leave the container running and
    unreachable), and the plan says how to find the container."""
    plan, _, roles = decide(Docker(None), REAL, [proxy()], ON_LOOPBACK)
    assert plan is not None and plan.how == "docker" and plan.pids == ()
    assert plan.container is None and plan.command == "docker ps --filter publish=8080"
    assert "the Docker API did not answer (connection refused)" in plan.why
    assert "killing docker-proxy would leave the container running" in plan.why
    assert Fact(PROXY, "exe", "/usr/sbin/docker-proxy", "root") in plan.evidence
    assert roles[PROXY].kind == "proxy"


def test_a_process_only_named_docker_proxy_is_investigated_too() -> None:
    plan, step, _ = decide(Docker((publishing(WEB, "127.0.0.1"),)),
                           {**REAL, PROXY: kernel(PROXY, DOCKERD, "/usr/bin/python3.11")},
                           [ProcInfo(PROXY, DOCKERD, "docker-proxy", ("python3",), 1.0)],
                           ON_LOOPBACK)
    assert plan is None and "is not a root-owned docker-proxy" in step.notes[0]


def test_rootless_docker_counts_for_its_own_user() -> None:
    """The proxy and dockerd run as the user whose socket Docker answered on."""
    rootless = {pid: kernel(k.pid, k.ppid or 1, k.exe, euid=USER) for pid, k in REAL.items()}
    plan, _, _ = decide(Docker((publishing(WEB, "127.0.0.1"),), owner=USER), rootless,
                        [proxy()], ON_LOOPBACK)
    assert plan is not None and plan.container == WEB
    # ...and a root proxy does not count for a user's daemon, nor a user's for root's
    plan, step, _ = decide(Docker((publishing(WEB, "127.0.0.1"),), owner=USER), REAL,
                           [proxy()], ON_LOOPBACK)
    assert plan is None and f"it runs as root, not as {USER}" in step.notes[0]


def test_two_containers_on_one_port_plan_no_stop_and_ask_for_host() -> None:
    docker = Docker((publishing(WEB, "127.0.0.1"), publishing(API, "::1")))
    bound: Bound = {PROXY: (("127.0.0.1", 8080),), PROXY6: (("::1", 8080),)}
    plan, _, roles = decide(docker, REAL, [proxy(), proxy(PROXY6)], bound)
    assert plan is not None and plan.how == "docker"
    assert plan.container is None and plan.command is None and plan.pids == ()
    assert plan.why == (
        "2 Docker containers publish port 8080: web on 127.0.0.1; api on ::1; name the "
        "address with --host to stop one (portscope kill 8080 --host ADDR)"
    )
    assert roles[PROXY6].note == "docker-proxy for api"
    # kill carries it out by stopping nothing, and says why
    result = stop_container(KillPlan(8080, "tcp", (), stop=plan),
                            stopper=lambda cid, t: pytest.fail("nothing may be stopped"))
    assert not result.ok and result.refused[0].reason == plan.why


def test_one_container_on_both_families_is_one_container() -> None:
    docker = Docker((publishing(WEB, "0.0.0.0", "::"),))
    bound: Bound = {PROXY: (("0.0.0.0", 8080),), PROXY6: (("::", 8080),)}
    plan, _, _ = decide(docker, REAL, [proxy(), proxy(PROXY6)], bound)
    assert plan is not None and plan.container == WEB


def test_a_forged_proxy_beside_a_real_one_spares_the_real_one() -> None:
    """The fallback signals the holders, but never Docker's own confirmed proxy (that would
    leave its container running and unreachable)."""
    kernels = {**REAL, FORGED: kernel(FORGED, SHELL, "/usr/bin/python3.11", euid=USER)}
    bound: Bound = {PROXY: (("127.0.0.1", 8080),), FORGED: (("::1", 8080),)}
    infos = [proxy(), proxy(FORGED)]
    plan, step, roles = decide(Docker((publishing(WEB, "127.0.0.1"),)), kernels, infos, bound)
    assert plan is None and step.spared == (PROXY,)
    assert set(step.left({p.pid: p for p in infos})) == {FORGED}
    assert roles[PROXY].note == "docker-proxy for web"
    assert any(n.startswith(f"PID {FORGED} calls itself docker-proxy") for n in step.notes)
    assert f"PID {PROXY} is Docker's proxy for container web: not signalled" in step.notes[-1]


def test_a_process_in_a_container_counts_by_dockers_main_process() -> None:
    holder = ProcInfo(FORGED, 940, "httpd", ("httpd",), 1.0, cgroup=f"/docker/{WEB.id}")
    main = Inspected(WEB, pid=940, running=True, stop_timeout=None, owner=0)
    docker = Docker(inspected={WEB.id: main})
    plan, _, roles = decide(docker, REAL, [holder], {}, ancestors={FORGED: [940, 1]})
    assert plan is not None and plan.container == WEB
    assert Fact(None, "docker", f"{WEB.id} has main process PID 940", "root") in plan.evidence
    assert Fact(FORGED, "ancestor", "940") in plan.evidence
    assert roles[FORGED].note == "in container web"


@pytest.mark.parametrize(
    ("inspected", "why_not"),
    [
        (Inspected(WEB, pid=12345, running=True, stop_timeout=None, owner=0),
         "the container's main process (PID 12345) is neither it nor its ancestor"),
        (None, f"Docker runs no container {WEB.id[:12]}"),
    ],
)
def test_a_cgroup_named_after_a_container_is_only_a_claim(
    inspected: Inspected | None, why_not: str
) -> None:
    forged = f"/user.slice/user-1000.slice/docker-{WEB.id}.scope"  # mkdir under delegation
    holder = ProcInfo(FORGED, SHELL, "sh", ("sh",), 1.0, cgroup=forged)
    docker = Docker(inspected={WEB.id: inspected} if inspected else {})
    plan, step, _ = decide(docker, REAL, [holder], {}, ancestors={FORGED: [SHELL, 1]})
    assert plan is None and step.unconfirmed
    assert step.notes == [
        f"PID {FORGED}'s cgroup names container {WEB.id[:12]}, but {why_not}: no container is "
        "stopped for it"
    ]


def test_one_deadline_for_all_of_a_plans_questions() -> None:
    holder = ProcInfo(FORGED, 940, "httpd", ("httpd",), 1.0, cgroup=f"/docker/{API.id}")
    docker = Docker((publishing(WEB, "127.0.0.1"),))
    before = time.monotonic()
    decide(docker, REAL, [proxy(), holder], ON_LOOPBACK)
    assert len(docker.deadlines) == 2 and len(set(docker.deadlines)) == 1
    assert docker.deadlines[0] <= before + 3.5


@pytest.mark.parametrize(
    ("container", "timeout", "command"),
    [
        (Container("c" * 64, "shop-web-1", "web", "shop", "web"), None,
         "docker compose -p shop stop web"),
        (Container("c" * 64, "shop-web-1", "web", "shop", "web"), 4.2,
         "docker compose -p shop stop -t 5 web"),
        (Container("c" * 64, "web", "nginx"), 0, "docker stop -t 0 web"),
        # a label with shell syntax is never pasted: the container's own name instead
        (Container("c" * 64, "shop-web-1", "web", "shop; curl x | sh", "web"), None,
         "docker stop shop-web-1"),
        (Container("c" * 64, "web$(id)", "nginx"), None, None),
    ],
)
def test_the_command_offered_is_the_one_the_api_call_stands_for(
    container: Container, timeout: float | None, command: str | None
) -> None:
    assert stop_command(container, timeout) == command
    stop = StopPlan("docker", (), stop_command(container), "a container", container=container)
    plan = with_timeout(KillPlan(8080, "tcp", (), stop=stop), timeout)
    assert plan.stop is not None and plan.stop.command == command
