"""Which container a docker-proxy socket publishes, for the table and `list --json`.

Named only on the facts the stop plan rests on (containers.confirm_proxy): the proxy's
executable and parent as the kernel reports them, and Docker listing the very address and
port of the socket it holds. A process that merely calls itself docker-proxy names no
container. Asked once per proxy process (its PID and start time), never per poll: a proxy
serves one container for its whole life; Docker's list is asked at most once per snapshot.
Without the API the socket simply carries no container.
"""

from __future__ import annotations

from ..collect import Collector, snapshot_for
from ..model import Container, Holder, Snapshot, Socket
from ..record import replace
from . import evidence
from .containers import Answers, ContainerLookup, KernelOf, confirm_proxy, docker_lookup
from .procs import ProcInfo
from .signatures import docker_proxy


class PublishedContainers:
    def __init__(
        self, lookup: ContainerLookup = docker_lookup, kernel_of: KernelOf = evidence.kernel
    ) -> None:
        self._lookup = lookup
        self._kernel_of = kernel_of
        self._known: dict[tuple[int, float | None], Container | None] = {}

    def annotate(self, snap: Snapshot) -> Snapshot:
        """`snap` with each docker-proxy socket's container filled in (the same object
        when there is none, which is the common case and costs one pass)."""
        seen: set[tuple[int, float | None]] = set()
        sockets: list[Socket] = []
        changed = False
        answers: list[Answers] = []  # made on the first new proxy: one deadline, one list
        proxies: dict[int, Holder | None] = {}  # by holders tuple: listeners share one
        for sock in snap.sockets:
            if id(sock.holders) not in proxies:
                proxies[id(sock.holders)] = _proxy(sock.holders)
            proxy = proxies[id(sock.holders)]
            if proxy is None:
                sockets.append(sock)
                continue
            seen.add(proxy.identity)
            if proxy.identity not in self._known:
                if not answers:
                    answers.append(Answers(self._lookup))
                found, _, _ = confirm_proxy(
                    proxy.pid, ((sock.address, sock.port),), sock.proto, self._kernel_of,
                    answers[0],
                )
                self._known[proxy.identity] = found
            container = self._known[proxy.identity]
            changed = changed or container is not None
            sockets.append(replace(sock, container=container) if container else sock)
        for gone in self._known.keys() - seen:
            del self._known[gone]
        return replace(snap, sockets=tuple(sockets)) if changed else snap


class WithContainers:
    """A collector whose snapshots name the containers behind docker-proxy sockets (the
    monitor's source); everything else is the wrapped collector's, narrowed polls included
    (the TUI's `b` and `k` ask it about one port: warm, no second collector)."""

    narrows = True

    def __init__(self, source: Collector, published: PublishedContainers | None = None) -> None:
        self._source = source
        self._published = published or PublishedContainers()
        self.name = source.name

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        return self._published.annotate(
            snapshot_for(self._source, port, owners=owners, time_wait=time_wait)
        )

    def __getattr__(self, attr: str) -> object:
        return getattr(self._source, attr)


def _proxy(holders: tuple[Holder, ...]) -> Holder | None:
    for h in holders:
        if docker_proxy(ProcInfo(h.pid, h.ppid, h.name, h.cmdline, h.started)):
            return h
    return None
