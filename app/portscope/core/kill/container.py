"""Carry out a `docker` stop plan: `POST /containers/{id}/stop` on the Engine API, the same
confirmation first as for a signal. Killing docker-proxy instead would leave the container
running and the port unreachable."""

from __future__ import annotations

from collections.abc import Callable

from ..roles import docker_api
from ..roles.docker_api import DockerUnavailable
from ..untrusted import shown
from .plan import KillPlan, KillResult, Refusal

Stopper = Callable[[str], int]


def stop_container(plan: KillPlan, stopper: Stopper = docker_api.stop) -> KillResult:
    container = plan.stop.container if plan.stop is not None else None
    if container is None:
        why = "the Docker API did not say which container publishes the port"
        command = plan.stop.command if plan.stop is not None else None
        if command:
            why += f"; find it with: {command}"
        return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, why)))
    try:
        status = stopper(container.id)
    except DockerUnavailable as exc:
        reason = f"could not reach the Docker API: {shown(str(exc))}; run: docker stop " + (
            shown(container.name)
        )
        return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, reason)))
    if status in (204, 304):
        return KillResult(plan, {}, (), (), plan.refused, container_stopped=True)
    reason = f"the Docker API answered {status} to stopping {shown(container.name)}"
    return KillResult(plan, {}, (), (), (*plan.refused, Refusal(None, reason)))
