"""Which end of a connection is the client's: told by facts about the whole poll, never by
how many destinations a client has.

A TIME_WAIT socket or a live connection is a client's (summed per destination, never a
table row nor a `ports` entry) when nothing listens on its local port and its local port's
pairs of (local port, remote port) vote so. Each pair votes:

- +3 when its remote port is listened on here (the remote end is a listener on this host):
  a fact, which outweighs a pair or two that look otherwise;
- otherwise +2 or -2 by the same 4-tuple pattern across ports: more local ports talk to
  its remote port than remote ports its local port talks to, or fewer. A service's port
  gathers many clients' ports; a client's port talks to a few services, however many (20
  services give a client port up to 20 pairs, each service thousands). A stopped server's
  port is the other way round: it talks to many client ports, each talking to it alone;
- and +1 or -1 when one end is in ip_local_port_range and the other is not (a client's
  port is handed out from it; a service's port usually is not).

So a client port with a rare destination among busy ones stays a client's, and a stopped
server's port, one of whose many clients' port numbers happens to be a local listener's,
stays a server's. A tie (one socket each way, both ends ephemeral: a client's lone TIME_WAIT
to a stopped dev server looks exactly like a killed dev server's lone TIME_WAIT) on an
ephemeral port holding TIME_WAIT alone is taken for a client's, but in doubt: summed with
the clients, its port also keeps its count, flagged client_side, so `kill`'s check after
the kill still finds that TIME_WAIT. A port with a live connection keeps its row on a tie
(a child still holding a connection its stopped server accepted blocks bind(), and hiding
a blocked server port would hide exactly what users came for).

Pairs are packed ints (local | remote << 16), counted with C-level maps; the Python loop
runs only over the pairs whose local port nobody listens on nor remote port either.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Set
from itertools import compress
from operator import not_

from ..hints import NamedTuple
from ..model import ClientDestination, ClientTimeWait
from ..record import field, mutable_record

DESTINATIONS = 20  # (address, port, TIME_WAIT) kept for the words, busiest first
DESTINATIONS_KEPT = 1000  # destinations `list --json` and the model keep, busiest first

_LOCAL = (0xFFFF).__and__
_REMOTE = (16).__rrshift__


def pair(local: int, remote: int) -> int:
    return local | remote << 16


class Sides(NamedTuple):
    clients: frozenset[int]  # local ports whose sockets are a client's
    doubtful: frozenset[int] = frozenset()  # of those, the ones a tie decided: also ports


def client_ports(
    time_wait: Iterable[int],
    live: Iterable[int],
    listening: Set[int],
    ephemeral: tuple[int, int],
) -> Sides:
    """The local ports whose sockets are a client's, from the pairs of every TIME_WAIT
    socket (`time_wait`) and every live TCP connection (`live`), one pair per socket."""
    live = list(live)
    mine = [p for p in {*time_wait, *live} if p & 0xFFFF not in listening]
    if not mine:
        return Sides(frozenset())
    fan_out = Counter(map(_LOCAL, mine))  # distinct remote ports per local port
    fan_in = Counter(map(_REMOTE, mine))  # distinct local ports per remote port
    low, high = ephemeral
    # A listener at the remote end: three votes, counted in C (the usual load test: every
    # pair of it), so the loop below sees only the other pairs.
    served = list(map(listening.__contains__, map(_REMOTE, mine)))
    facts = list(compress(map(_LOCAL, mine), served))
    votes: Counter[int] = Counter()
    for _ in range(3):
        votes.update(facts)
    for p in compress(mine, map(not_, served)):
        local, remote = p & 0xFFFF, p >> 16
        fans = fan_in[remote] - fan_out[local]
        votes[local] += 2 * ((fans > 0) - (fans < 0)) + (
            (low <= local <= high) - (low <= remote <= high)
        )
    busy = set(map(_LOCAL, live))  # local ports with a live connection
    doubtful = frozenset(
        local for local, v in votes.items()
        if v == 0 and low <= local <= high and local not in busy
    )
    return Sides(frozenset(local for local, v in votes.items() if v > 0) | doubtful, doubtful)


@mutable_record
class ClientSums:
    """Client sockets summed per destination as a poll reads them: no object per port."""

    time_wait: Counter[tuple[str, int]] = field(default_factory=Counter)
    states: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)  # local ports holding client TIME_WAIT
    kept: frozenset[int] = frozenset()  # client ports also given as ports (Sides.doubtful)
    count: int = 0  # client TIME_WAIT
    live: int = 0  # live client connections
    last: float | None = None  # seconds until the last client TIME_WAIT expires

    def add_time_wait(self, local: int, address: str, remote: int, expires: float | None) -> None:
        self.time_wait[(address, remote)] += 1
        self.ports.add(local)
        self.count += 1
        self.expiring(expires)

    def expiring(self, expires: float | None) -> None:
        if expires is not None and (self.last is None or expires > self.last):
            self.last = expires

    def add_live(self, address: str, remote: int, state: str) -> None:
        states = self.states.setdefault((address, remote), {})
        states[state] = states.get(state, 0) + 1
        self.live += 1

    def freeze(self, ephemeral: tuple[int, int], tw_reuse: int | None) -> ClientTimeWait:
        by_remote: Counter[int] = Counter()
        for (_, remote), n in self.time_wait.items():
            by_remote[remote] += n
        ranked = sorted(by_remote.items(), key=lambda kv: (-kv[1], kv[0]))
        # nlargest, not a sort: a crawler's clients can make thousands of destinations.
        top = heapq.nlargest(
            DESTINATIONS,
            ((address, port, n) for (address, port), n in self.time_wait.items()),
            key=lambda d: (d[2], -d[1]),
        )
        return ClientTimeWait(
            self.count, len(self.ports), tuple(ranked), self.last,
            by_destination=tuple(top), ephemeral=ephemeral, tw_reuse=tw_reuse,
            destinations=_destinations(self.time_wait, self.states), live=self.live,
        )


def _destinations(
    time_wait: Mapping[tuple[str, int], int], states: Mapping[tuple[str, int], dict[str, int]]
) -> tuple[ClientDestination, ...]:
    """The busiest DESTINATIONS_KEPT destinations (TIME_WAIT and live sockets together),
    busiest first, then by port and address."""
    keys = {*time_wait, *states}
    busiest = heapq.nsmallest(
        DESTINATIONS_KEPT,
        keys,
        key=lambda k: (-time_wait.get(k, 0) - sum(states.get(k, {}).values()), k[1], k[0]),
    )
    return tuple(
        ClientDestination(address, port, time_wait.get((address, port), 0),
                          dict(sorted(states.get((address, port), {}).items())))
        for address, port in busiest
    )
