"""Carry out a `docker` stop plan: `POST /containers/{id}/stop` on the Engine API, the same
confirmation first as for a signal. Killing docker-proxy instead would leave the container
running and the port unreachable.

No `t` is sent unless the person gave `--timeout`: the daemon then waits the container's own
StopTimeout, as `docker stop NAME` does, so a container that needs 30 s to shut down is not
SIGKILLed after 10."""

from __future__ import annotations

from collections.abc import Callable

from ..record import replace
from ..roles import docker_api
from ..roles.containers import stop_command
from ..roles.docker_api import DockerUnavailable
from ..untrusted import shown
from . import audit
from .plan import KillPlan, KillResult, Refusal

# (container id, the person's --timeout or None) -> the API's HTTP status
Stopper = Callable[[str, "float | None"], int]


def stop_container(
    plan: KillPlan, stopper: Stopper = docker_api.stop, timeout: float | None = None
) -> KillResult:
    container = plan.stop.container if plan.stop is not None else None
    if container is None:
        # Several containers on the port (the plan asks for --host), or none confirmed.
        why = plan.stop.why if plan.stop is not None and plan.stop.why else (
            "Docker did not confirm which container publishes the port"
        )
        return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, why)))
    t = "" if timeout is None else f" -t {int(-(-timeout // 1))}"
    audit.record(plan, f"docker stop{t}", container=container.id)  # before, as for signals
    try:
        status = stopper(container.id, timeout)
    except DockerUnavailable as exc:
        command = plan.stop.command if plan.stop is not None else None
        reason = f"could not reach the Docker API: {shown(str(exc))}" + (
            f"; run: {command}" if command else ""
        )
        return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, reason)))
    if status in (204, 304):
        return KillResult(plan, {}, (), (), plan.refused, container_stopped=True)
    reason = f"the Docker API answered {status} to stopping {shown(container.name)}"
    return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, reason)))


def with_timeout(plan: KillPlan, timeout: float | None) -> KillPlan:
    """The plan as `kill --timeout S` carries it out: its printed command gains `-t S`, so
    "same as: docker stop -t S NAME" says what the API call does."""
    stop = plan.stop
    if timeout is None or stop is None or stop.how != "docker" or stop.container is None:
        return plan
    return replace(plan, stop=replace(stop, command=stop_command(stop.container, timeout)))
