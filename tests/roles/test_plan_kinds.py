"""`kill` carries out every kind of plan: a service or a setting is never signalled, only
named with its command (exit 1); a container whose API is gone is refused with the command
that finds it."""

from __future__ import annotations

from portscope.core.kill import wording
from portscope.core.kill.plan import KillPlan
from portscope.core.kill.session import run_kill
from portscope.core.model import Container
from portscope.core.roles.docker_api import DockerUnavailable
from portscope.core.roles.model import StopPlan


def plan_of(stop: StopPlan) -> KillPlan:
    return KillPlan(80, "tcp", (), stop=stop)


def test_a_service_plan_signals_nothing_and_names_the_command() -> None:
    stop = StopPlan("service", (), "sudo systemctl stop nginx.service", "nginx runs as a unit",
                    unit="nginx.service")
    opened: list[int] = []

    def opener(pid: int, started: float | None) -> object:
        opened.append(pid)
        raise AssertionError("a service plan must not open a process handle")

    result = run_kill(plan_of(stop), opener=opener)  # type: ignore[arg-type]
    assert not result.ok and not result.signals and opened == []
    lines = wording.outcome_lines(result)
    assert "run: sudo systemctl stop nginx.service" in lines
    assert not wording.needs_confirmation(plan_of(stop))


def test_a_setting_plan_is_not_done_until_the_person_does_it() -> None:
    stop = StopPlan("setting", (), "System Settings > AirPlay Receiver: off", "AirPlay")
    result = run_kill(plan_of(stop))
    assert not result.ok and "run: System Settings > AirPlay Receiver: off" in (
        wording.outcome_lines(result)
    )


def test_docker_plan_without_the_api_is_refused_with_the_command() -> None:
    container = Container("f" * 64, "web", "nginx:1.27")
    stop = StopPlan("docker", (), "docker stop web", "a container", container=container)

    def unreachable(container_id: str, timeout: float | None) -> int:
        raise DockerUnavailable("connection refused")

    result = run_kill(plan_of(stop), stopper=unreachable)
    assert not result.ok and not result.container_stopped
    assert "docker stop web" in result.refused[0].reason
    assert wording.question(plan_of(stop), "TERM") == "Stop Docker container web (nginx:1.27)?"


def test_docker_plan_stopped_through_the_api() -> None:
    container = Container("f" * 64, "web", "nginx:1.27")
    stop = StopPlan("docker", (), "docker stop web", "a container", container=container)
    asked: list[tuple[str, float | None]] = []

    def stopper(container_id: str, timeout: float | None) -> int:
        asked.append((container_id, timeout))
        return 204

    result = run_kill(plan_of(stop), stopper=stopper)
    # No --timeout: no `t`, so the daemon waits the container's own StopTimeout.
    assert result.ok and result.container_stopped and asked == [(container.id, None)]
    assert "stopped Docker container web through the Docker API" in wording.outcome_lines(result)
