"""One poll as Prometheus metric families, with the number of series bounded.

Names follow Prometheus's conventions: base units in the name (`_seconds`), `_total` on
counters, `_info` for a series that carries labels only. Every label value a process chose
(its name, its user's name, a container's name) goes through untrusted.shown first, as on
every other surface, and is cut to LABEL_CHARS.

Bounds, so a host with 5,000 listeners or a crawler with 100,000 destinations cannot flood
Prometheus:
- listeners: the `max_ports` lowest (port, proto, family, address); `portscope_listeners`
  still counts them all;
- TIME_WAIT per port: the `max_ports` ports with the most, the rest summed in port="other";
- client sockets per destination: the `top_destinations` busiest, the rest summed in
  destination="other" (always present, 0 when nothing is left over);
- restarts per port: see tally.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from functools import lru_cache

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric

from ..model import Holder, Snapshot, Socket
from ..record import record
from ..roles.cast import holder_kinds
from ..roles.procs import ProcInfo
from ..roles.signatures import server_name
from ..text import destination, user_cell, user_name
from ..untrusted import fit, shown
from .tally import Tally

OTHER = "other"
LABEL_CHARS = 200  # a label value longer than this (a long argv-derived name) is cut
LISTENER_LABELS = ("proto", "family", "address", "port")


@record
class Limits:
    max_ports: int = 500
    top_destinations: int = 20


def kept_listeners(listeners: Iterable[Socket], max_ports: int) -> list[Socket]:
    """The listeners that get series: the lowest ports first (well-known services), then
    by protocol, family and address, so the choice is the same on every poll."""
    return heapq.nsmallest(
        max_ports, listeners, key=lambda s: (s.port, s.proto, s.family, s.address)
    )


def build(
    snap: Snapshot | None, listeners: Sequence[Socket], kept: Sequence[Socket], tally: Tally,
    limits: Limits,
) -> list[Metric]:
    """`listeners`: the snapshot's merged listeners (one per address, SO_REUSEPORT siblings
    together); `kept`: those that get series (kept_listeners). Without a snapshot (no poll
    has succeeded yet), the counters and the poll times alone."""
    if snap is None:
        return [*_counters(tally), _duration(tally)]
    return [
        *_listeners(listeners, kept),
        *_time_wait(snap, limits.max_ports),
        *_clients(snap, limits.top_destinations),
        *_counters(tally),
        *_poll(snap, tally),
    ]


def _listeners(listeners: Sequence[Socket], kept: Sequence[Socket]) -> list[Metric]:
    total = GaugeMetricFamily(
        "portscope_listeners",
        "Listening TCP and bound UDP sockets (one per address), also those beyond --max-ports",
        value=len(listeners),
    )
    processes = GaugeMetricFamily(
        "portscope_listener_processes",
        "Processes holding the listening socket (0: another user's, hidden without root)",
        labels=LISTENER_LABELS,
    )
    info = InfoMetricFamily(
        "portscope_listener",
        "Who listens: the main process's name, its user, its role and the container, if any",
        labels=LISTENER_LABELS,
    )
    kinds_of: dict[int, tuple[str, str]] = {}  # id(holders) -> (process, role): shared tuples
    for s in kept:
        labels = [s.proto, s.family, shown(s.address), str(s.port)]
        processes.add_metric(labels, len(s.holders))
        found = kinds_of.get(id(s.holders))
        if found is None:
            found = kinds_of[id(s.holders)] = process_and_role(s.holders)
        process, role = found
        info.add_metric(labels, {
            "process": process,
            "user": _label(user_cell(s.holders) if s.holders else _hidden_user(s.uid)),
            "role": role,
            "container": _label(shown(s.container.name)) if s.container is not None else "",
        })
    return [total, processes, info]


def process_and_role(holders: tuple[Holder, ...]) -> tuple[str, str]:
    """The process label and its role: the master or reloader of a group of holders (its
    program's name: "gunicorn"), a lone holder's name, else the names, sorted. Never the
    count of workers: a respawned worker must not start a new series."""
    if not holders:
        return "", "hidden"
    kinds = holder_kinds(holders)
    heads = [h for h in holders if kinds.get(h.pid) in ("master", "reloader")]
    if len(holders) == 1:
        head = holders[0]
        name = head.name
    elif len(heads) == 1:
        head = heads[0]
        name = server_name(ProcInfo(head.pid, head.ppid, head.name, head.cmdline, None))
    else:
        head = min(holders, key=lambda h: h.pid)
        name = ",".join(sorted({h.name for h in holders}))
    return _label(shown(name)), kinds.get(head.pid, "server")


@lru_cache(maxsize=256)
def _hidden_user(uid: int | None) -> str:
    """A hidden socket's user, from the uid the kernel gives: looked up once per uid (a
    directory service may answer slowly), not on every poll."""
    return "" if uid is None else user_name(uid)


def _label(text: str) -> str:
    return fit(text, LABEL_CHARS)


def _time_wait(snap: Snapshot, max_ports: int) -> list[Metric]:
    """Server ports only: a client's TIME_WAIT is summed per destination (_clients)."""
    ports = [p for p in snap.ports if p.time_wait and not p.client_side]
    top = heapq.nsmallest(max_ports, ports, key=lambda p: (-p.time_wait, p.port))
    chosen = set(map(id, top))
    rest = [p for p in ports if id(p) not in chosen]
    sockets = GaugeMetricFamily(
        "portscope_time_wait_sockets",
        "Server-side TIME_WAIT sockets on the local port; port=\"other\": the ports beyond "
        "--max-ports, summed",
        labels=("port",),
    )
    clears = GaugeMetricFamily(
        "portscope_time_wait_clears_seconds",
        "Seconds until the port's last TIME_WAIT socket expires (port=\"other\": the latest "
        "of the rest)",
        labels=("port",),
    )
    for p in sorted(top, key=lambda p: p.port):
        sockets.add_metric([str(p.port)], p.time_wait)
        if p.time_wait_last is not None:
            clears.add_metric([str(p.port)], round(p.time_wait_last, 3))
    sockets.add_metric([OTHER], sum(p.time_wait for p in rest))
    later = [p.time_wait_last for p in rest if p.time_wait_last is not None]
    if later:
        clears.add_metric([OTHER], round(max(later), 3))
    return [sockets, clears]


def _clients(snap: Snapshot, top_n: int) -> list[Metric]:
    """This host's client sockets per destination: TIME_WAIT, and every local port a
    destination takes (TIME_WAIT and live connections: connect() picks a local port free
    for that destination, so the range runs out one destination at a time)."""
    client = snap.client_time_wait
    top = client.destinations[:top_n]  # busiest first already
    time_wait = GaugeMetricFamily(
        "portscope_client_time_wait_sockets",
        "This host's client TIME_WAIT sockets to the destination (\"other\": every other "
        "destination, summed)",
        labels=("destination",),
    )
    used = GaugeMetricFamily(
        "portscope_ephemeral_ports_used",
        "Local ports this host's client sockets (TIME_WAIT and live) take towards the "
        "destination (\"other\": every other destination, summed)",
        labels=("destination",),
    )
    for d in top:
        where = shown(destination(d.address, d.port))
        time_wait.add_metric([where], d.time_wait)
        used.add_metric([where], d.time_wait + d.live)
    top_tw = sum(d.time_wait for d in top)
    top_used = top_tw + sum(d.live for d in top)
    time_wait.add_metric([OTHER], max(0, client.count - top_tw))
    used.add_metric([OTHER], max(0, client.count + client.live - top_used))
    found: list[Metric] = [time_wait, used]
    if client.ephemeral is not None:
        found.append(GaugeMetricFamily(
            "portscope_ephemeral_port_range_size",
            "Local ports connect() picks from (ip_local_port_range)",
            value=client.ephemeral_ports,
        ))
    return found


def _counters(tally: Tally) -> list[Metric]:
    events = CounterMetricFamily(
        "portscope_listener_events",
        "Listeners that appeared (listen), stopped (unlisten) or came back under a new PID "
        "(restart) since the exporter started",
        labels=("event",),
    )
    for kind, n in tally.events.items():
        events.add_metric([kind], n)
    restarts = CounterMetricFamily(
        "portscope_listener_restarts",
        "Times the listener came back under a new PID running the same command",
        labels=("proto", "port"),
    )
    for (proto, port), n in sorted(tally.restarts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        restarts.add_metric([proto, str(port)], n)
    if tally.other_restarts:
        restarts.add_metric([OTHER, OTHER], tally.other_restarts)
    errors = CounterMetricFamily(
        "portscope_collect_errors",
        "Polls that failed (the last good poll is served meanwhile)",
        value=tally.errors,
    )
    return [events, restarts, errors]


def _poll(snap: Snapshot, tally: Tally) -> list[Metric]:
    hidden = GaugeMetricFamily(
        "portscope_hidden_sockets",
        "Sockets with no process this exporter can see: another user's (without root), "
        "another network namespace's",
        value=snap.hidden_owners,
    )
    taken = GaugeMetricFamily(
        "portscope_last_poll_timestamp_seconds",
        "When the poll these metrics come from was taken (Unix time)",
        value=round(snap.taken_at.timestamp(), 3),
    )
    return [hidden, _duration(tally), taken]


def _duration(tally: Tally) -> Metric:
    return HistogramMetricFamily(
        "portscope_collect_duration_seconds",
        "How long one poll of the sockets and their processes took",
        buckets=tally.cumulative(),
        sum_value=round(tally.seconds, 6),
    )
