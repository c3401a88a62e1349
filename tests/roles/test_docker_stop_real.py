"""Issue 17, stopping containers for real: the container's own stop timeout (no `t` unless
the person gave --timeout), the command offered is the one the API call stands for (compose
too), and of two containers on one port the one on the address asked."""

from __future__ import annotations

import time
import uuid

from docker_run import (
    HTTPD,
    answers_http,
    containers,
    inspect,
    portscope_json,
    running,
    wait_until,
)
from real_servers import LOOPBACK, LOOPBACK6, free_port

# Shuts down gracefully in 11 s on SIGTERM and exits 0: longer than the 10 s Docker waits
# when told `t=10` (what portscope used to send), shorter than its --stop-timeout of 30.
GRACEFUL = ["/bin/busybox", "sh", "-c",
            "trap '/bin/busybox sleep 11; exit 0' TERM; /bin/busybox httpd -f -p 8080 & wait"]


def test_a_container_is_given_its_own_stop_timeout_and_exits_0() -> None:
    with containers() as docker:
        port = free_port()
        run = docker.run(GRACEFUL, publish=((LOOPBACK, port),), stop_timeout=30)
        wait_until(lambda: answers_http(LOOPBACK, port), "the container's httpd")  # trap set
        start = time.monotonic()
        code, outcome = portscope_json("kill", str(port), "--yes")
        took = time.monotonic() - start
        state = inspect(run.name)["State"]
        assert outcome["command"] == f"docker stop {run.name}"  # no -t: its own timeout
        assert outcome["container_stopped"] is True and outcome["port_free"] is True
        assert code == 0 and not state["Running"]
        assert state["ExitCode"] == 0, "SIGKILLed before its own shutdown finished"
        assert took >= 11


def test_the_persons_timeout_is_the_one_sent_and_compose_gets_its_command() -> None:
    with containers() as docker:
        port = free_port()
        project = f"portscope-test-{uuid.uuid4().hex[:10]}"
        labels = {"com.docker.compose.project": project, "com.docker.compose.service": "web"}
        run = docker.run(GRACEFUL, publish=((LOOPBACK, port),), stop_timeout=30, labels=labels)
        wait_until(lambda: answers_http(LOOPBACK, port), "the container's httpd")
        _, verdict = portscope_json("check", str(port))
        assert verdict["stop"]["command"] == f"docker compose -p {project} stop web"
        code, outcome = portscope_json("kill", str(port), "--yes", "--timeout", "1")
        assert outcome["command"] == f"docker compose -p {project} stop -t 1 web"
        assert code == 0 and outcome["container_stopped"] is True
        assert inspect(run.name)["State"]["ExitCode"] == 137  # SIGKILL after the 1 s asked


def test_of_two_containers_on_one_port_the_one_on_the_address_asked() -> None:
    with containers() as docker:
        port = free_port(ipv6=True)
        v4 = docker.run(HTTPD, publish=((LOOPBACK, port),))
        v6 = docker.run(HTTPD, publish=((LOOPBACK6, port),))
        for address in (LOOPBACK, LOOPBACK6):
            wait_until(lambda a=address: answers_http(a, port), f"the container on {address}")
        _, either = portscope_json("check", str(port))
        stop = either["stop"]
        assert stop["how"] == "docker" and stop["container"] is None and stop["command"] is None
        assert f"{v4.name} on 127.0.0.1" in stop["why"] and f"{v6.name} on ::1" in stop["why"]
        assert "--host" in stop["why"]
        for host, which in (("::1", v6), ("127.0.0.1", v4)):
            _, asked = portscope_json("check", str(port), "--host", host)
            assert asked["stop"]["container"]["name"] == which.name
            assert asked["stop"]["command"] == f"docker stop {which.name}"
        code, outcome = portscope_json("kill", str(port), "--yes")  # no address: no stop
        assert code == 1 and outcome["container_stopped"] is False
        assert "--host" in outcome["refused"][0]["reason"]
        assert running(v4.name) and running(v6.name)
        code, outcome = portscope_json("kill", str(port), "--host", "::1", "--yes")
        assert outcome["container"]["name"] == v6.name and outcome["container_stopped"] is True
        assert code == 0 and outcome["port_free"] is True  # free on the address asked
        assert not running(v6.name) and running(v4.name) and answers_http(LOOPBACK, port)
