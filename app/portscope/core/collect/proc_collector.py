"""Linux collector: the kernel's socket tables plus an fd walk for owners."""

from __future__ import annotations

from ..model import TCP_STATES, Snapshot
from ..processes import ProcessTable
from .builder import SnapshotBuilder
from .fd_scan import socket_holders
from .proc_net import LISTEN, TIME_WAIT, UDP_UNCONNECTED, iter_rows, timer_seconds, to_line
from .system import ephemeral_range

_STATE_NAMES = {f"{code:02X}": name for code, name in TCP_STATES.items()}


class ProcNetCollector:
    """Reads /proc/net/* directly; owners come from /proc/PID/fd, every holder of a socket."""

    name = "proc"

    def __init__(self, proc_root: str = "/proc") -> None:
        self._proc_root = proc_root
        self._processes = ProcessTable()

    def collect(self) -> Snapshot:
        builder = SnapshotBuilder(self._processes, ephemeral_range(), self.name)
        listeners = []
        live = []
        for proto, family, f in iter_rows(f"{self._proc_root}/net"):
            state = f[3]
            if proto == "tcp":
                if state == TIME_WAIT:
                    # TIME_WAIT belongs to no process: never worth an owner lookup.
                    builder.time_wait(
                        int(f[1][-4:], 16), int(f[2][-4:], 16), timer_seconds(f[5].decode())
                    )
                elif state == LISTEN:
                    listeners.append(to_line(proto, family, f))
                else:
                    live.append(to_line(proto, family, f))
            elif state == UDP_UNCONNECTED:
                listeners.append(to_line(proto, family, f))
        wanted = {ln.inode for ln in listeners if ln.inode}
        wanted.update(ln.inode for ln in live if ln.inode)
        owners = socket_holders(wanted, self._proc_root)
        for ln in listeners:
            builder.listener(
                ln.proto, ln.family, ln.address, ln.port, owners.get(ln.inode, ()),
                ln.inode, ln.uid,
            )
        for ln in live:
            name = _STATE_NAMES.get(ln.state, ln.state)
            builder.live(ln.port, ln.remote_port, name, owners.get(ln.inode, ()))
        return builder.build()

