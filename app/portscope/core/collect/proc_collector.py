"""Linux collector: the kernel's socket tables plus a cached fd index for owners.

Tables come over netlink sock_diag (what `ss` uses) when the kernel allows it, else from
/proc/net/*. Owners come from OwnerIndex, which re-reads /proc/PID/fd only where something
changed. TIME_WAIT sockets belong to no process and never enter the owner lookup.

Permission and missing-file problems never raise: what could not be read is skipped and
said in the Snapshot's notes (a refused netlink, an unreadable table, an unlistable /proc).
"""

from __future__ import annotations

from ..model import TCP_STATES, Snapshot
from ..processes import ProcessTable
from . import proc_net, sock_diag
from .builder import SnapshotBuilder
from .owners import OwnerIndex
from .system import ephemeral_range
from .tables import CLOSE, LISTEN, Tables, reason


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
        self._netlink_note: str | None = None  # set once netlink is refused, kept after

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
        notes = tables.notes
        if self._owners.unlisted is not None:
            notes.append(
                f"cannot list {self._proc_root} ({reason(self._owners.unlisted)}): "
                "no socket shows its processes"
            )
        return builder.build(notes)

    def _read_tables(self) -> Tables:
        if self._netlink:
            try:
                return self._read_netlink()
            except OSError as exc:  # not allowed here (sandbox, seccomp, old kernel)
                self._netlink = False
                self._netlink_note = (
                    f"netlink sock_diag refused ({reason(exc)}): "
                    f"reading {self._proc_root}/net instead"
                )
        tables = proc_net.read_tables(f"{self._proc_root}/net")
        if self._netlink_note is not None:
            tables.notes.insert(0, self._netlink_note)
        return tables

    def _read_netlink(self) -> Tables:
        """TCP over netlink; UDP too where udp_diag answers, else from the text tables."""
        if self._udp_netlink is None:
            self._udp_netlink = sock_diag.udp_available()
        if self._udp_netlink:
            try:
                return sock_diag.read_tables(with_udp=True)
            except OSError:
                # Maybe only the UDP dump is refused (udp_diag unloaded since): TCP alone
                # decides whether netlink is usable, so try it without UDP before giving up.
                self._udp_netlink = False
        tables = sock_diag.read_tables(with_udp=False)
        udp = proc_net.read_tables(f"{self._proc_root}/net", with_tcp=False)
        tables.rows.extend(udp.rows)
        tables.notes.extend(udp.notes)
        return tables
