"""Linux's socket tables over netlink sock_diag: what `ss` reads, at a fraction of the cost
of /proc/net/tcp (the kernel fills binary records instead of printing text).

TIME_WAIT sockets are dumped on their own. Their records all have one size, so instead of
decoding each one in Python we slice fields out of the whole dump at a fixed stride (C-speed
copies) and count plain ints; no object per socket. Measured on 2 cores: 100,000 TIME_WAIT
in ~200 ms, of which the kernel's dump is ~80 ms; /proc/net/tcp takes ~170 ms just to read.
"""

from __future__ import annotations

import _socket as socket  # not `socket`: its enums and selectors cost a one-shot ~3 ms
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from itertools import compress
from operator import not_

from ..model import Family, Proto
from . import TIME_WAIT_LEFT_OUT, Yielded
from .sides import DESTINATIONS_KEPT, ClientSums, Sides
from .system import ephemeral_range
from .tables import CLOSE, LISTEN, SEVERAL, TIME_WAIT, SocketRow, Tables

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
# The request older than SOCK_DIAG_BY_FAMILY: it names no address family, so the kernel
# walks its connection hash (one for IPv4 and IPv6) once for both, where one dump per
# family walks it twice. Its records are the same, typed TCPDIAG_GETSOCK.
TCPDIAG_GETSOCK = 18
_RECORD_TYPES = (SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK)
NLMSG_ERROR = 2
NLMSG_DONE = 3
_REQUEST = 0x1 | 0x300  # NLM_F_REQUEST | NLM_F_DUMP
_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg
_BODY = _HEADER.size  # inet_diag_msg starts right after the header
_DST = 24  # idiag_dst within inet_diag_msg (16 bytes; IPv4 uses the first 4)
_ATTR = struct.Struct("=HH")  # rtattr: length, type
# The kernel adds this attribute, unasked, to every IPv6 socket in LISTEN or CLOSE (a bound
# UDP socket): IPV6_V6ONLY, which decides whether a `[::]` listener also takes IPv4.
INET_DIAG_SKV6ONLY = 11
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
_ALL_STATES = 0xFFF
_RECV = 1 << 16
_FEW = 4  # crowded ports worth filtering one by one (each a pass) rather than sorting
# TIME_WAIT records joined into one buffer and handled at once. The bulk steps make a few
# Python ints per record (~40 bytes each, several lists at once): over a whole dump that
# was ~400 bytes per TIME_WAIT at the peak of a poll (20,000 with a few clients: ~10 MB,
# 100,000: ~40 MB), which a long-running exporter or monitor keeps as RSS. In batches the
# lists stay under ~1 MB whatever the count (the dump itself, ~95 bytes a record, is held
# once), and the tallies and sums merge exactly.
_BATCH = 4096
_LITTLE = sys.byteorder == "little"
_FAMILIES: tuple[tuple[int, Family], ...] = (
    (socket.AF_INET, "ipv4"),
    (socket.AF_INET6, "ipv6"),
)


class SockDiagError(OSError):
    """The kernel refused a dump (no netlink, or no diag module for this protocol)."""


def read_tables(
    with_udp: bool = True, port: int | None = None, *, listening: bool = False,
    time_wait: bool = True, give_way: Callable[[], object] | None = None,
) -> Tables:
    """All TCP sockets (TIME_WAIT tallied) and, if asked, all UDP sockets.

    One TCP dump per family: the kernel walks its whole connection hash for each dump,
    TIME_WAIT included, whatever states were asked for, so splitting by state would
    double that walk. With `port`, every TCP listener (a dump of LISTEN alone walks only
    the small listening hash) and the rest of the TCP sockets only on that local port (one
    walk of the connection hash for both families, filtered in the kernel: _port_dump): the
    walk (~3 ms for 20,000) costs far less than sending and decoding every socket (~25 ms)
    nobody asked about, and the listeners still tell a client's ephemeral port from a
    server's. `time_wait=False`: that port's TIME_WAIT is not sent (100,000 of them cost
    ~30 ms to send and ~17 ms to tally; the walk stays).

    `listening`: the TCP listeners alone (and UDP): only the small listening hash is walked,
    and no TIME_WAIT is sent (100,000 of them: ~450 ms of a first frame's wait).

    `give_way`: asked between datagrams; true raises Yielded (a whole poll of 100,000
    TIME_WAIT reads for ~70 ms, and a question about one port need not wait for it).
    """
    tables = Tables()
    nl = _netlink()
    whole = port is None and not listening
    try:
        for af, family in _FAMILIES:
            states = _ALL_STATES if whole else 1 << LISTEN
            # Handed over, not kept here: _split_tcp frees each datagram once joined.
            _split_tcp(
                _dump(nl, af, socket.IPPROTO_TCP, states, give_way=give_way), family, tables,
                defer=whole,
            )
            if with_udp:
                for chunk in _dump(nl, af, socket.IPPROTO_UDP, _ALL_STATES):
                    tables.rows.extend(_rows(chunk, "udp"))
        if port is not None and not listening:
            _split_tcp(_port_dump(nl, port, time_wait), None, tables)
            if not time_wait:
                tables.notes.append(TIME_WAIT_LEFT_OUT)
    finally:
        nl.close()
    if give_way is not None and give_way():
        raise Yielded
    if whole:  # a one-port question keeps its port's sockets whoever's they are
        settle(tables, ephemeral_range())
    return tables


_legacy: bool | None = None  # does this kernel answer TCPDIAG_GETSOCK? None: not asked yet


def _port_dump(nl: socket.socket, port: int, time_wait: bool = True) -> list[bytes]:
    """The TCP sockets on local `port` but its listeners, of both families: one walk of
    the connection hash with the legacy request (holding 100,000 TIME_WAIT, the walk took
    ~16 ms instead of ~33 ms), else one dump per family."""
    global _legacy
    states = _ALL_STATES & ~(1 << LISTEN)
    if not time_wait:
        states &= ~(1 << TIME_WAIT)
    bytecode = _local_port(port)
    if _legacy is not False:
        try:
            chunks = _dump(nl, socket.AF_UNSPEC, socket.IPPROTO_TCP, states, bytecode,
                           legacy=True)
        except OSError:  # a kernel that dropped the old request: one dump per family
            _legacy = False
        else:
            _legacy = True
            return chunks
    return [chunk for af, _ in _FAMILIES
            for chunk in _dump(nl, af, socket.IPPROTO_TCP, states, bytecode)]


def _split_tcp(
    chunks: list[bytes], family: Family | None, tables: Tables, defer: bool = False
) -> None:
    """TIME_WAIT into tallies, the rest into rows (each record's family is its own;
    `family`, the dump's, is needed only to defer: None for a legacy dump of both).

    Datagrams holding nothing but same-size TIME_WAIT records (nearly all of them under
    load) are tallied in bulk, joined in batches of about _BATCH records; the few that hold
    live sockets are decoded record by record. `defer`: a whole poll's TIME_WAIT is kept
    aside (tables.bulk and tables.loose) until settle() has told the clients' from the
    servers'. A caller that keeps no reference to `chunks` lets each datagram go as soon
    as it is joined (read_tables), so the dump is never held twice.
    """
    bulk: dict[int, list[bytes]] = {}
    mixed: list[bytes] = []
    for chunk in chunks:
        stride = _HEADER.unpack_from(chunk, 0)[0] if len(chunk) >= 16 else 0
        if _uniform(chunk, stride) and chunk[_BODY + 1 :: stride].count(TIME_WAIT) == len(
            chunk
        ) // stride:
            bulk.setdefault(stride, []).append(chunk)
        else:
            mixed.append(chunk)
    del chunks  # see above: `bulk` and `mixed` hold the datagrams now
    af = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    assert family is not None or not defer, "settle needs each group's family"
    for stride, group in bulk.items():
        group.reverse()  # popped from the end: each datagram freed once joined
        while group:
            batch = [group.pop()]
            size = len(batch[0])
            while group and size + len(group[-1]) <= _BATCH * stride:
                size += len(group[-1])
                batch.append(group.pop())
            buf = b"".join(batch)
            batch.clear()
            if defer:
                tables.bulk.append((buf, stride, af))
            else:
                _tally_uniform(buf, stride, tables)
    for chunk in mixed:
        for rec in _records(chunk):
            if rec[1] == TIME_WAIT:
                sport, dport = int.from_bytes(rec[4:6], "big"), int.from_bytes(rec[6:8], "big")
                expires = int.from_bytes(rec[52:56], sys.byteorder) / 1000
                if defer:
                    size = 4 if rec[0] == socket.AF_INET else 16
                    remote = socket.inet_ntop(rec[0], bytes(rec[_DST : _DST + size]))
                    tables.loose.append((sport, remote, dport, expires))
                else:
                    tables.tally(sport).add(1, dport, expires, expires)
            else:
                tables.rows.append(_row(rec, "tcp"))


def udp_available() -> bool:
    """udp_diag is a module of its own; without it UDP comes from /proc/net/udp."""
    try:
        nl = _netlink()
    except OSError:
        return False
    try:
        _dump(nl, socket.AF_INET, socket.IPPROTO_UDP, _ALL_STATES)
        return True
    except OSError:
        return False
    finally:
        nl.close()


def _netlink() -> socket.socket:
    """A sock_diag netlink socket (not inherited by children, as every Python socket)."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)


def _dump(
    nl: socket.socket, af: int, proto: int, states: int, bytecode: bytes = b"",
    legacy: bool = False, give_way: Callable[[], object] | None = None,
) -> list[bytes]:
    """Run one dump (sockets the `bytecode` filter accepts, if given); return the received
    datagrams, each a run of whole messages. `legacy`: TCP of both families, asked with
    TCPDIAG_GETSOCK (struct inet_diag_req: no protocol field, states after the id).
    `give_way`: see read_tables (the dump left unread goes with the socket)."""
    if legacy:
        kind, req = TCPDIAG_GETSOCK, bytes(52) + struct.pack("=II", states, 0)
    else:
        kind, req = SOCK_DIAG_BY_FAMILY, struct.pack("=BBBBI", af, proto, 0, 0, states) + bytes(48)
    if bytecode:  # INET_DIAG_REQ_BYTECODE, an attribute after the request
        req += _ATTR.pack(_ATTR.size + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    nl.send(_HEADER.pack(_HEADER.size + len(req), kind, _REQUEST, 1, 0) + req)
    chunks: list[bytes] = []
    while True:
        if give_way is not None and give_way():
            raise Yielded
        chunk = nl.recv(_RECV)
        # The kernel ends a dump with NLMSG_DONE, alone or after the last records.
        end = _end_of_records(chunk)
        if end is None:
            chunks.append(chunk)
            continue
        if end:
            chunks.append(chunk[:end])
        return chunks


def _local_port(port: int) -> bytes:
    """inet_diag bytecode for "local port == port", as `ss sport = :PORT` sends it: two
    comparisons (>= then <=, each followed by the port), where failing one jumps past the
    end (reject) and passing the last lands exactly on it (accept)."""
    op = struct.Struct("=BBH")  # inet_diag_bc_op: code, yes, no (byte offsets to jump)
    return b"".join((
        op.pack(INET_DIAG_BC_S_GE, 8, 20), op.pack(0, 0, port),
        op.pack(INET_DIAG_BC_S_LE, 8, 12), op.pack(0, 0, port),
    ))


def _end_of_records(chunk: bytes) -> int | None:
    """Offset of NLMSG_DONE in this datagram, or None if it holds only records.

    A datagram is checked at its last message, found by walking lengths only when the
    fixed-stride test fails, so the walk is rare.
    """
    size = len(chunk)
    first = _HEADER.unpack_from(chunk, 0)[0] if size >= 16 else 0
    if first and size % first == 0 and _uniform(chunk, first):
        return None
    off = 0
    while off + 16 <= size:
        length, kind = struct.unpack_from("=IH", chunk, off)
        if kind == NLMSG_DONE:
            return off
        if kind == NLMSG_ERROR:
            errno = -struct.unpack_from("=i", chunk, off + 16)[0]
            raise SockDiagError(errno, "sock_diag dump refused")
        if length < 16:
            break
        off += (length + 3) & ~3
    return None


def _uniform(chunk: bytes, stride: int) -> bool:
    """True if every message in the datagram is a `stride`-byte sock_diag record."""
    if stride % 4 or stride < _BODY + _MSG.size or len(chunk) % stride:
        return False
    words = memoryview(chunk).cast("I")
    count = len(chunk) // stride
    lengths = words[0 :: stride // 4]
    kinds = memoryview(chunk).cast("H")[2 :: stride // 2].tolist()
    return (
        lengths.tolist().count(stride) == count
        and kinds[0] in _RECORD_TYPES and kinds.count(kinds[0]) == count
    )


def _records(chunk: bytes) -> Iterator[bytes | memoryview]:
    view = memoryview(chunk)
    off = 0
    while off + _BODY + _MSG.size <= len(chunk):
        length = _HEADER.unpack_from(chunk, off)[0]
        if length < 16:
            return
        yield view[off + _BODY : off + length]
        off += (length + 3) & ~3


def _rows(chunk: bytes, proto: Proto) -> Iterator[SocketRow]:
    for rec in _records(chunk):
        yield _row(rec, proto)


def _row(rec: bytes | memoryview, proto: Proto) -> SocketRow:
    (af, state, _, _, sport, dport, src, dst, _, _, _, _, _, uid, inode) = _MSG.unpack_from(rec)
    family: Family = "ipv4" if af == socket.AF_INET else "ipv6"
    size = 4 if af == socket.AF_INET else 16
    address = socket.inet_ntop(af, src[:size])
    v6only = _v6only(rec) if af == socket.AF_INET6 and state in (LISTEN, CLOSE) else None
    # A connection's remote address: which destination a client's counts toward.
    remote = socket.inet_ntop(af, dst[:size]) if proto == "tcp" and state != LISTEN else ""
    return SocketRow(
        proto, family, state, address, int.from_bytes(sport, "big"),
        int.from_bytes(dport, "big"), uid, inode, v6only, remote,
    )


def _v6only(rec: bytes | memoryview) -> bool | None:
    """INET_DIAG_SKV6ONLY among the attributes after the record; None if absent (a kernel
    older than 3.8, or one built without IPv6)."""
    off = _MSG.size
    while off + _ATTR.size <= len(rec):
        length, kind = _ATTR.unpack_from(rec, off)
        if length < _ATTR.size:
            return None
        if kind == INET_DIAG_SKV6ONLY and length > _ATTR.size:
            return bool(rec[off + _ATTR.size])
        off += (length + 3) & ~3
    return None


def _port(raw: int) -> int:
    """A port read as a native u16 from its big-endian bytes."""
    return ((raw & 0xFF) << 8) | (raw >> 8) if _LITTLE else raw


def _tally_uniform(buf: bytes, stride: int, tables: Tables) -> None:
    ports_at, expires_at = _BODY + 4, _BODY + 52  # idiag_sport, idiag_dport, idiag_expires
    view = memoryview(buf)
    sports = view.cast("H")[ports_at // 2 :: stride // 2].tolist()
    dports = view.cast("H")[ports_at // 2 + 1 :: stride // 2].tolist()
    expiries = view.cast("I")[expires_at // 4 :: stride // 4].tolist()
    count = len(sports)
    if count and sports.count(sports[0]) == count:
        # The usual pile-up, one server port: no grouping at all (list.count, a C loop,
        # not a Counter: 0.3 ms of a 4,096-record batch).
        remote = _port(dports[0]) if dports.count(dports[0]) == count else SEVERAL
        _add(tables, sports[0], count, remote, min(expiries), max(expiries))
        return
    counts = Counter(sports)
    # A port with one socket needs no grouping: its last (only) values are the answer.
    last_dport = dict(zip(sports, dports, strict=True))
    last_expiry = dict(zip(sports, expiries, strict=True))
    crowded = [sport for sport, count in counts.items() if count > 1]
    if len(crowded) <= _FEW:
        # The usual pile-up: a few server ports with many sockets each; a C-level filter
        # per port beats sorting every socket.
        for sport, count in counts.items():
            if count == 1:
                _add(tables, sport, 1, _port(last_dport[sport]), *[last_expiry[sport]] * 2)
                continue
            mine = list(map(sport.__eq__, sports))
            theirs = set(compress(dports, mine))
            mine_exp = list(compress(expiries, mine))
            remote = _port(last_dport[sport]) if len(theirs) == 1 else SEVERAL
            _add(tables, sport, count, remote, min(mine_exp), max(mine_exp))
        return
    remotes = _remote_ports(view, ports_at, stride, sports, last_dport)
    # Many crowded ports: one u64 per socket, local port above expiry, so one sort of
    # plain ints groups each port with its expiries in order.
    packed = bytearray(8 * len(sports))
    exp_at, port_at = (0, 4) if _LITTLE else (4, 2)
    for i in range(4):
        packed[exp_at + i :: 8] = buf[expires_at + i :: stride]
    for i in range(2):
        packed[port_at + i :: 8] = buf[ports_at + i :: stride]
    ordered = sorted(memoryview(packed).cast("Q").tolist())
    offset = 0
    for sport in sorted(counts):
        count = counts[sport]
        first = ordered[offset] & 0xFFFFFFFF
        last = ordered[offset + count - 1] & 0xFFFFFFFF
        offset += count
        _add(tables, sport, count, remotes[sport], first, last)


def _remote_ports(
    view: memoryview, at: int, stride: int, sports: list[int], last_dport: dict[int, int]
) -> dict[int, int]:
    """Raw local port -> its only remote port, or SEVERAL, with no Python loop over sockets
    (a server port in TIME_WAIT has one (local, remote) pair per client)."""
    pairs = set(view.cast("I")[at // 4 :: stride // 4].tolist())
    local_of = (0xFFFF).__and__ if _LITTLE else (16).__rrshift__
    distinct = Counter(map(local_of, pairs))  # distinct remote ports per local port
    return {s: _port(d) if distinct[s] == 1 else SEVERAL for s, d in last_dport.items()}


def settle(tables: Tables, ephemeral: tuple[int, int], listening: Iterable[int] = ()) -> None:
    """A whole read's TIME_WAIT, once every socket is known: a server's tallied per port, a
    client's summed per destination (sides.py), with no object per client port.

    TIME_WAIT on a listened port is a server's whatever the rest says, and takes no part in
    the vote: a datagram group holding nothing else (a server's own pile-up, the benchmark's
    loads) costs one slice and one set test. The other sockets' (local, remote) pairs are
    made by C-level slices and masks, never a Python loop over sockets."""
    listening = tables.listening().union(listening)
    served = _raw(listening)
    # Each batch's pairs wait for the vote packed (4 bytes a record), not as ints: see _BATCH.
    groups: list[tuple[bytes, int, int, bytearray]] = []
    pairs: list[int] = []
    for buf, stride, af in tables.bulk:
        sports = memoryview(buf).cast("H")[(_BODY + 4) // 2 :: stride // 2].tolist()
        if served.issuperset(sports):
            _tally_uniform(buf, stride, tables)
            continue
        packed = _packed_pairs(buf, stride)
        groups.append((buf, stride, af, packed))
        pairs.extend(compress(_ints(packed), map(not_, map(served.__contains__, sports))))
    tables.bulk.clear()
    sides = tables.settle(ephemeral, pairs, listening)
    # Client TIME_WAIT per packed destination key, per address family, over every batch:
    # the busiest are decoded once all are counted, as if the batches were one.
    counted: dict[int, Counter[Hashable]] = {}
    for buf, stride, af, packed in groups:
        found = _ints(packed)
        keys = counted.setdefault(af, Counter())
        mask = list(map(sides.clients.__contains__, map((0xFFFF).__and__, found)))
        mine = mask.count(True)
        if not mine:
            _tally_uniform(buf, stride, tables)
        elif mine == len(mask):
            _sum_clients(buf, stride, af, found, tables.clients, counted=keys)
            if sides.doubtful:  # summed with the clients, and kept as ports too
                kept = list(map(sides.doubtful.__contains__, map((0xFFFF).__and__, found)))
                if any(kept):
                    _tally_uniform(_subset(buf, stride, kept), stride, tables)
        else:
            _split(buf, stride, af, found, mask, mine, tables, sides, keys)
    for af, keys in counted.items():
        _decode_busiest(keys, af, tables.clients)


def _split(
    buf: bytes, stride: int, af: int, found: list[int], mask: list[bool], mine: int,
    tables: Tables, sides: Sides, counted: Counter[Hashable] | None = None,
) -> None:
    """A group of both sides' TIME_WAIT (a machine with servers and clients): the smaller
    side copied out record by record, the larger one read in place. Few clients among a
    server pile-up: the whole group tallied, then the client ports' tallies (theirs alone:
    a port is one side's) dropped, but for the doubtful ones. Few servers among a client
    pile-up: the servers' records (and the doubtful ports') tallied on their own, the
    clients' summed in place of the whole."""
    if mine * 2 <= len(mask):
        _tally_uniform(buf, stride, tables)
        for port in (sides.clients - sides.doubtful).intersection(tables.time_wait):
            del tables.time_wait[port]
        _sum_clients(
            _subset(buf, stride, mask), stride, af, list(compress(found, mask)), tables.clients,
            counted=counted,
        )
        return
    doubtful = sides.doubtful
    if doubtful:
        theirs = [not c or p & 0xFFFF in doubtful for c, p in zip(mask, found, strict=True)]
    else:
        theirs = list(map(not_, mask))
    _tally_uniform(_subset(buf, stride, theirs), stride, tables)
    _sum_clients(buf, stride, af, list(compress(found, mask)), tables.clients, mask, counted)


def _pairs(buf: bytes, stride: int) -> list[int]:
    """Each record's (local port | remote port << 16), as sides.pair makes them."""
    return _ints(_packed_pairs(buf, stride))


def _packed_pairs(buf: bytes, stride: int) -> bytearray:
    """_pairs as native u32s, copied out at the stride in C: the big-endian ports' bytes
    laid out as one u32."""
    packed = bytearray(4 * (len(buf) // stride))
    at = _BODY + 4  # idiag_sport, then idiag_dport
    # Little-endian: local low byte, local high byte, remote low, remote high.
    order = (1, 0, 3, 2) if _LITTLE else (2, 3, 0, 1)
    for i, src in enumerate(order):
        packed[i::4] = buf[at + src :: stride]
    return packed


def _ints(packed: bytearray) -> list[int]:
    return memoryview(packed).cast("I").tolist()


def _subset(buf: bytes, stride: int, mask: Iterable[object]) -> bytes:
    """The records of `buf` that `mask` keeps, at the same stride (a slice per record
    kept, none per record left)."""
    kept = compress(range(0, len(buf), stride), mask)
    return b"".join([buf[i : i + stride] for i in kept])


def _sum_clients(
    buf: bytes, stride: int, af: int, pairs: list[int], sums: ClientSums,
    mask: list[bool] | None = None, counted: Counter[Hashable] | None = None,
) -> None:
    """Client TIME_WAIT records (those `mask` keeps, else all) into their destinations'
    sums: a Counter of packed keys (no object per socket but the key), the busiest
    DESTINATIONS_KEPT decoded. `pairs`: the kept records' (sides.pair). `counted`: add the
    keys there instead, for the caller to decode once every batch is in."""
    sums.ports.update(map((0xFFFF).__and__, pairs))
    sums.count += len(pairs)
    expiries = memoryview(buf).cast("I")[(_BODY + 52) // 4 :: stride // 4].tolist()
    keys: Iterable[Hashable] = _destination_keys(buf, stride, af)
    if mask is not None:
        expiries, keys = list(compress(expiries, mask)), compress(keys, mask)
    sums.expiring(max(expiries) / 1000 if expiries else None)
    if counted is not None:
        counted.update(keys)
    else:
        _decode_busiest(Counter(keys), af, sums)


def _decode_busiest(counted: Counter[Hashable], af: int, sums: ClientSums) -> None:
    for key, n in counted.most_common(_BUSIEST):
        sums.time_wait[_destination(key, af)] += n


_BUSIEST: int | None = DESTINATIONS_KEPT  # destinations decoded per datagram group


def _raw(ports: Iterable[int]) -> frozenset[int]:
    """Ports as a native u16 read of their big-endian bytes (as sliced from a dump)."""
    raw = array("H", ports)
    if _LITTLE:
        raw.byteswap()
    return frozenset(raw)


def _destination_keys(buf: bytes, stride: int, af: int) -> list[Hashable]:
    """Each socket's remote port and address as one hashable, copied out at the stride in C
    (no object per socket but the key): remote port in bytes 0-1, the address after a gap,
    read as one u64 (IPv4) or three (IPv6)."""
    words = 1 if af == socket.AF_INET else 3
    width, size = 8 * words, 4 if af == socket.AF_INET else 16
    packed = bytearray(width * (len(buf) // stride))
    for i in range(2):
        packed[i::width] = buf[_BODY + 6 + i :: stride]
    for i in range(size):
        packed[width - size + i :: width] = buf[_BODY + _DST + i :: stride]
    cells = memoryview(packed).cast("Q")
    if words == 1:
        return list(cells.tolist())
    return list(zip(*(cells[i::words].tolist() for i in range(words)), strict=True))


def _destination(key: Hashable, af: int) -> tuple[str, int]:
    parts = (key,) if isinstance(key, int) else key
    assert isinstance(parts, tuple)
    raw = b"".join(int(w).to_bytes(8, sys.byteorder) for w in parts)
    size = 4 if af == socket.AF_INET else 16
    return socket.inet_ntop(af, raw[-size:]), int.from_bytes(raw[:2], "big")


def _add(tables: Tables, raw_sport: int, count: int, remote: int, first: int, last: int) -> None:
    tables.tally(_port(raw_sport)).add(count, remote, first / 1000, last / 1000)
