"""The tools `portscope mcp` serves, as plain functions: JSON-able answers built by the very
code the commands run, and ValueError with one line for bad input. No MCP import here, so
they are tested and typed without the SDK, and nothing here ever writes to stdout (the
protocol's channel).

`kill` is two calls. The first returns the plan (what `kill --dry-run --json` prints) and
its id: a hash of what it would act on, each target's (PID, start time), the port, the
kind of stop, the container, the signal. The second call repeats the id and acts only if
the server was started with `--allow-kill` (a person's decision, not the agent's) and the
plan made again now has the same id: a target that exited and whose PID was reused, a new
holder, another signal, all give another id, and nothing is sent.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from typing import Any

from ..core import inputs
from ..core.collect import default_collector, snapshot_for
from ..core.diagnose.bind_attempt import Bind
from ..core.kill import dry_run
from ..core.kill.by_pid import NoSuchTarget
from ..core.kill.plan import KillPlan
from ..core.model import Proto
from ..core.serialize import free_json, kill_json, verdict_json
from .check_cmd import MAX_PORTS, worst
from .kill_cmd import carry_out, make_plans

WAIT_MAX = 300.0  # seconds one `wait` call may block: a client's request has a deadline too
KILL_TIMEOUT_MAX = 60.0


def list_sockets(port: str | None = None, proto: str | None = None,
                 every: bool = False) -> dict[str, Any]:
    """`portscope list --json [--port P] [--proto tcp|udp] [--all]`."""
    from .list_cmd import contract
    from .list_filters import Filters, narrowed

    if proto not in (None, "tcp", "udp"):
        raise ValueError(f"proto is tcp or udp, got {inputs.quoted(str(proto))}")
    ports = [inputs.parse_ports(port)] if port else None
    if every and ports is None:
        raise ValueError("every (all sockets, not only listeners) needs port")
    filters = Filters(argparse.Namespace(
        port=ports, name=None, pid=None, proto=proto, address=None, user=None,
    ))
    one = ports[0][0] if ports is not None and len(ports[0]) == 1 else None
    snap = snapshot_for(default_collector(), one)
    if any(h.name == "docker-proxy" for s in snap.sockets for h in s.holders[:1]):
        from ..core.roles.published import PublishedContainers

        snap = PublishedContainers().annotate(snap)
    if filters.active:
        snap = narrowed(snap, filters)
    return contract(snap, filters, every)


def check_ports(ports: str, host: str | None = None, udp: bool = False,
                reuseaddr: bool = False) -> dict[str, Any]:
    """`portscope check PORTS --json`: a verdict per port, and whether a server can bind
    every one of them now."""
    from ..core.diagnose.probe import diagnose

    wanted = _ports(ports)
    hosts = inputs.parse_host(host) if host else ("0.0.0.0",)
    bind: Bind = "reuseaddr" if reuseaddr else "plain"
    proto: Proto = "udp" if udp else "tcp"
    collector = default_collector()
    verdicts = [
        worst([diagnose(p, a, proto, survey=host is None, collector=collector) for a in hosts],
              bind)
        for p in wanted
    ]
    return {
        "can_bind_all": all(v.can_bind(bind) for v in verdicts),
        "results": [verdict_json(v) for v in verdicts],
    }


def free_ports(count: int = 1, port_range: str | None = None, host: str | None = None,
               udp: bool = False, reuseaddr: bool = False) -> dict[str, Any]:
    """`portscope free -n N --range A-B --json`."""
    from ..core.diagnose.free_ports import LOWEST, find_free

    if not 1 <= count <= 1000:
        raise ValueError(f"count is 1 to 1000, got {count}")
    first, last = inputs.parse_port_range(port_range) if port_range else (LOWEST, 65535)
    found = find_free(
        count, first, last, inputs.parse_host(host) if host else ("0.0.0.0",),
        "udp" if udp else "tcp", "reuseaddr" if reuseaddr else "plain",
    )
    return free_json(found)


def wait_ports(ports: str, timeout: float = 30.0, listening: bool = False,
               host: str | None = None, udp: bool = False,
               reuseaddr: bool = False) -> dict[str, Any]:
    """`portscope wait PORTS [--listening]` within `timeout` seconds (at most WAIT_MAX):
    until a server can bind every port, or (`listening`) until each accepts a connect."""
    from ..core.diagnose.probe import diagnose
    from .wait_cmd import wait_free, wait_listening

    if not 0 <= timeout <= WAIT_MAX:
        raise ValueError(f"timeout is 0 to {WAIT_MAX:g} seconds, got {timeout:g}")
    wanted = _ports(ports)
    if listening and (udp or reuseaddr):
        raise ValueError("listening waits for a TCP connect: udp and reuseaddr do not apply")
    start = time.monotonic()
    deadline = start + timeout
    log = io.StringIO()  # progress and the final line: never stdout
    proto: Proto = "udp" if udp else "tcp"
    for port in wanted:
        if listening:
            where = inputs.parse_connect_host(host) if host else "localhost"
            code = wait_listening(where, port, timeout, log, log, deadline=deadline)
        else:
            hosts = inputs.parse_host(host) if host else ("0.0.0.0",)
            code = wait_free(port, hosts, proto, timeout, log, "reuseaddr" if reuseaddr
                             else "plain", log, deadline=deadline)
        if code:
            now = None if listening else verdict_json(diagnose(port, proto=proto,
                                                               suggest=False))
            return {"ok": False, "port": port, "waited": _since(start),
                    "why": log.getvalue().strip().splitlines()[-1:], "now": now}
    return {"ok": True, "ports": list(wanted), "waited": _since(start)}


def kill(
    *,
    port: int | None = None,
    pid: int | None = None,
    plan_id: str | None = None,
    signal: str = "TERM",
    timeout: float | None = None,
    force: bool = False,
    udp: bool = False,
    host: str | None = None,
    allow_kill: bool = False,
    allow_system: bool = False,
) -> dict[str, Any]:
    """The plan and its id (no `plan_id`), or the kill carried out (the id repeated, the
    server started with --allow-kill, the plan unchanged). ValueError for anything else:
    then nothing was sent."""
    if (port is None) == (pid is None):
        raise ValueError("give port or pid (one of them)")
    signame = inputs.parse_signal(signal)
    if timeout is not None and not 0 <= timeout <= KILL_TIMEOUT_MAX:
        raise ValueError(f"timeout is 0 to {KILL_TIMEOUT_MAX:g} seconds, got {timeout:g}")
    if port is not None:
        inputs.parse_port(str(port))
    hosts = inputs.parse_host(host) if host else None
    snapshot = default_collector().collect()
    try:
        plans = make_plans(
            snapshot, ports=() if port is None else (port,), pid=pid,
            proto="udp" if udp else "tcp", host=hosts, allow_system=allow_system,
            timeout=timeout,
        )
    except NoSuchTarget as exc:
        raise ValueError(str(exc)) from None
    current = plan_id_of(plans, signame, force)
    if plan_id is None:
        return {
            "plan_id": current,
            "kill_enabled": allow_kill,
            "would_act": all(dry_run.would_act(p) for p in plans),
            "plans": [
                {**kill_json(dry_run.dry_result(p, signame), dry_run.now(p, snapshot),
                             signame), "dry_run": True,
                 "would_do": dry_run.would_do(p, signame, timeout, force)}
                for p in plans
            ],
            "next": (
                f"to carry it out, call kill again with the same arguments and "
                f"plan_id={current!r}" if allow_kill else
                "kill is disabled: this server was started without --allow-kill, so it only "
                "shows plans; a person can restart it with `portscope mcp --allow-kill`"
            ),
        }
    if not allow_kill:
        raise ValueError(
            "kill is disabled: this server was started without --allow-kill (a person's "
            "decision); nothing was signalled"
        )
    if plan_id != current:
        raise ValueError(
            f"plan_id {plan_id!r} is not the plan as it is now ({current!r}): a target "
            "exited or changed, another process holds the port, or the arguments differ; "
            "nothing was signalled: call kill without plan_id to see the plan again"
        )
    outcomes = carry_out(plans, signame, timeout, force, by_pid=pid is not None)
    return {
        "plan_id": current,
        "ok": all(r.ok and a.released for r, a in outcomes),
        "results": [{**kill_json(r, a, signame), "dry_run": False} for r, a in outcomes],
    }


def plan_id_of(plans: list[KillPlan], signame: str, force: bool) -> str:
    """What the plans would act on, hashed: each target's (PID, start time), the port,
    the kind of stop, the container, the refused PIDs, and the signal."""
    facts = [
        {
            "port": p.port,
            "proto": p.proto,
            "how": p.how,
            "targets": [[t.pid, round(t.started, 3)] for t in p.targets],
            "refused": sorted(r.pid or 0 for r in p.refused),
            "container": p.stop.container.id if p.stop and p.stop.container else None,
        }
        for p in plans
    ]
    text = json.dumps([facts, dry_run.would_signal(plans[0], signame), force], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ports(text: str) -> tuple[int, ...]:
    ports = inputs.parse_ports(str(text))
    if len(ports) > MAX_PORTS:
        raise ValueError(f"at most {MAX_PORTS:,} ports at once, got {len(ports):,}")
    return ports


def _since(start: float) -> float:
    return round(time.monotonic() - start, 2)
