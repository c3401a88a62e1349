"""Words and numbers as a person reads them, shared by the CLI and the TUI."""

from __future__ import annotations

from .model import ClientTimeWait, Holder, PortStats, Socket
from .roles.cast import holder_kinds
from .roles.procs import ProcInfo
from .roles.signatures import server_name
from .untrusted import shown


def seconds(value: float | None) -> str:
    """57.99 -> "58 s"; None -> "?" (the platform does not say)."""
    if value is None:
        return "?"
    return f"{max(0, round(value))} s"


def time_wait_cell(stats: PortStats | None) -> str:
    if stats is None or not stats.time_wait:
        return ""
    if stats.time_wait_last is None:
        return f"{stats.time_wait:,}"
    return f"{stats.time_wait:,}, clears in {seconds(stats.time_wait_last)}"


def live_cell(stats: PortStats | None) -> str:
    if stats is None or not stats.live:
        return ""
    parts = [f"{n:,} {_short_state(state)}" for state, n in stats.states.items()]
    return ", ".join(parts)


def _short_state(state: str) -> str:
    return {"ESTABLISHED": "estab", "CLOSE_WAIT": "close-wait"}.get(state, state.lower())


def pids_cell(holders: tuple[Holder, ...]) -> str:
    if not holders:
        return "-"
    pids = [str(h.pid) for h in holders]
    return ",".join(pids) if len(pids) <= 3 else f"{','.join(pids[:2])},+{len(pids) - 2}"


def process_cell(holders: tuple[Holder, ...]) -> str:
    """"gunicorn master +4", "uvicorn (reloader) +1", else the names of the holders."""
    if not holders:
        return "(hidden)"
    kinds = holder_kinds(holders)
    heads = [h for h in holders if kinds.get(h.pid) in ("master", "reloader")]
    if len(heads) == 1:
        head = heads[0]
        rest = len(holders) - 1
        label = shown(server_name(ProcInfo(head.pid, head.ppid, head.name, head.cmdline, None)))
        kind = "master" if kinds[head.pid] == "master" else "(reloader)"
        return f"{label} {kind} +{rest}"
    names = sorted({shown(h.name) for h in holders})
    label = names[0] if len(names) == 1 else ", ".join(names)
    return f"{label} x{len(holders)}" if len(holders) > 1 and len(names) == 1 else label


def user_cell(holders: tuple[Holder, ...], uid: int | None = None) -> str:
    """The holders' users; for a hidden owner, the socket's uid as the kernel reports it."""
    users = sorted({shown(h.user) or "?" for h in holders})
    if users:
        return ",".join(users)
    return "-" if uid is None else user_name(uid)


def user_name(uid: int) -> str:
    try:
        import pwd  # not on Windows, where the kernel does not give us a uid anyway

        return shown(pwd.getpwuid(uid).pw_name)
    except (ImportError, KeyError):
        return str(uid)


def address_cell(sock: Socket) -> str:
    return f"[{sock.address}]" if sock.family == "ipv6" else sock.address


def client_summary(client: ClientTimeWait, *, short: bool = False) -> str:
    """"12,004 client TIME_WAIT on 12,004 ephemeral ports, 11,990 of them to :5432; all
    clear in 60 s"; `short` fits 80 columns: "12,004 client TIME_WAIT (11,990 to :5432),
    all clear in 60 s"."""
    if not client.count:
        return ""
    text = f"{client.count:,} client TIME_WAIT"
    if not short:
        text += f" on {client.ports:,} ephemeral ports"
    if client.by_remote_port:
        port, n = client.by_remote_port[0]
        text += f" ({n:,} to :{port})" if short else f", {n:,} of them to :{port}"
    if client.last_expiry is not None:
        text += f"{',' if short else ';'} all clear in {seconds(client.last_expiry)}"
    return text


def hidden_summary(hidden: int, is_root: bool) -> str:
    if not hidden:
        return ""
    noun = "socket has" if hidden == 1 else "sockets have"
    if is_root:
        return f"{hidden} {noun} no visible owner (another namespace or the kernel)"
    return f"{hidden} {noun} a hidden owner: run with sudo to see it"
