"""Linux collector: the kernel's socket tables plus a cached fd index for owners.

Tables come over netlink sock_diag (what `ss` uses) when the kernel allows it, else from
/proc/net/*. Owners come from OwnerIndex, which re-reads /proc/PID/fd only where something
changed. TIME_WAIT sockets belong to no process and never enter the owner lookup.
"""

from __future__ import annotations

from ..model import TCP_STATES, Snapshot
from ..processes import ProcessTable
from . import proc_net, sock_diag
from .builder import SnapshotBuilder
from .owners import OwnerIndex
from .system import ephemeral_range
from .tables import CLOSE, LISTEN, Tables


class ProcNetCollector:
    """Reads the kernel's socket tables directly; owners are every holder of a socket."""

    name = "proc"

    def __init__(self, proc_root: str = "/proc", netlink: bool | None = None) -> None:
        self._proc_root = proc_root
        self._processes = ProcessTable()
        self._owners = OwnerIndex(proc_root)
        # Netlink answers for this kernel only, so another /proc root means text tables.
        self._netlink = proc_root == "/proc" if netlink is None else netlink
        self._udp_netlink: bool | None = None

    @property
    def full_walks(self) -> int:
        """How many times owners needed a full /proc/*/fd walk (the slow path)."""
        return self._owners.full_walks

    def collect(self) -> Snapshot:
        tables = self._read_tables()
        builder = SnapshotBuilder(self._processes, ephemeral_range(), self.name)
        for port, tally in tables.time_wait.items():
            builder.time_wait_tally(port, tally.count, tally.remote_port, tally.first, tally.last)
        live = {row.inode for row in tables.rows if row.inode}
        owners = self._owners.holders(live)
        # Idle since the last poll means the same process: no start-time check needed.
        self._processes.trust(self._owners.idle)
        for row in tables.rows:
            pids = owners.get(row.inode, ()) if row.inode else ()
            listening = LISTEN if row.proto == "tcp" else CLOSE  # bound UDP shows CLOSE
            if row.state == listening:
                builder.listener(
                    row.proto, row.family, row.address, row.port, pids, row.inode, row.uid
                )
            elif row.proto == "tcp":
                state = TCP_STATES.get(row.state, f"{row.state:02X}")
                builder.live(row.port, row.remote_port, state, pids)
        return builder.build()

    def _read_tables(self) -> Tables:
        if self._netlink:
            try:
                if self._udp_netlink is None:
                    self._udp_netlink = sock_diag.udp_available()
                tables = sock_diag.read_tables(with_udp=self._udp_netlink)
                if not self._udp_netlink:
                    udp = proc_net.read_tables(f"{self._proc_root}/net", with_tcp=False)
                    tables.rows.extend(udp.rows)
                return tables
            except OSError:  # netlink not allowed here (sandbox, old kernel): use the text
                self._netlink = False
        return proc_net.read_tables(f"{self._proc_root}/net")
