"""Words and numbers as a person reads them, shared by the CLI and the TUI."""

from __future__ import annotations

from .model import ClientTimeWait, Holder, PortStats, Socket
from .untrusted import shown

# Share of the ephemeral range in TIME_WAIT to one destination above which connect() to it
# is close to failing with EADDRNOTAVAIL: warn while there is still room to act.
PRESSURE_WARN = 0.7


def count(n: int, noun: str, plural: str | None = None) -> str:
    """12345, "port" -> "12,345 ports"; 1 -> "1 port": one number format and the noun's
    number agreeing with it, wherever a count is shown."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


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
    if len(holders) <= 3:
        return ",".join(str(h.pid) for h in holders)
    return f"{holders[0].pid},{holders[1].pid},+{len(holders) - 2}"  # not 2,000 str()s


# The last holders asked about and their cell: every listener of a pre-fork server shares
# one holders tuple (the collector hands out one per set of PIDs), so 200 rows held by the
# same 300 processes cost one role pass, not 200 (600 ms under that load). Kept by
# identity, which the entry itself keeps valid.
_last_cell: tuple[tuple[Holder, ...], str] | None = None


def process_cell(holders: tuple[Holder, ...]) -> str:
    """"gunicorn master +4", "uvicorn (reloader) +1", else the names of the holders."""
    global _last_cell
    last = _last_cell
    if last is not None and last[0] is holders:
        return last[1]
    cell = _process_cell(holders)
    _last_cell = (holders, cell)
    return cell


def _process_cell(holders: tuple[Holder, ...]) -> str:
    if not holders:
        return "(hidden)"
    if len(holders) == 1:  # most rows: no roles to work out, and no role model to import
        return shown(holders[0].name)
    from .roles.cast import holder_kinds
    from .roles.procs import ProcInfo
    from .roles.signatures import server_name

    kinds = holder_kinds(holders)
    heads = [h for h in holders if kinds.get(h.pid) in ("master", "reloader")]
    if len(heads) == 1:
        head = heads[0]
        rest = len(holders) - 1
        label = shown(server_name(ProcInfo(head.pid, head.ppid, head.name, head.cmdline, None)))
        kind = "master" if kinds[head.pid] == "master" else "(reloader)"
        return f"{label} {kind} +{rest}"
    names = sorted({shown(name) for name in {h.name for h in holders}})  # distinct, then escaped
    label = names[0] if len(names) == 1 else ", ".join(names)
    return f"{label} x{len(holders)}" if len(holders) > 1 and len(names) == 1 else label


def user_cell(holders: tuple[Holder, ...], uid: int | None = None) -> str:
    """The holders' users; for a hidden owner, the socket's uid as the kernel reports it."""
    # Each distinct user escaped once: a pre-fork server's 2,000 holders are one or two.
    users = sorted({shown(user) or "?" for user in {h.user for h in holders}})
    if users:
        return ",".join(users)
    return "-" if uid is None else user_name(uid)


def user_name(uid: int) -> str:
    name = user_of(uid)
    return str(uid) if name is None else shown(name)


def user_of(uid: int | None) -> str | None:
    """The account name of a uid, raw (for JSON; escape it to show); None if unknown."""
    if uid is None:
        return None
    try:
        import pwd  # not on Windows, where the kernel does not give us a uid anyway

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return None


def address_cell(sock: Socket) -> str:
    return f"[{sock.address}]" if sock.family == "ipv6" else sock.address


def address_label(sock: Socket) -> str:
    """The ADDRESS cell, saying for a `[::]` socket whether it also takes IPv4: "[::] (dual)"
    blocks 0.0.0.0, "[::] v6only" does not; plain "[::]" where the collector cannot tell
    (the /proc/net text tables and psutil do not report IPV6_V6ONLY)."""
    cell = address_cell(sock)
    if sock.address == "::" and sock.v6only is not None:
        return f"{cell} v6only" if sock.v6only else f"{cell} (dual)"
    return cell


def destination(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def client_summary(client: ClientTimeWait, *, short: bool = False) -> str:
    """"12,004 client TIME_WAIT on 12,004 ephemeral ports, 11,990 of them to :5432; all
    clear in 60 s"; `short` fits 80 columns: "12,004 client TIME_WAIT (11,990 to :5432),
    all clear in 60 s"."""
    if not client.count:
        return ""
    text = f"{client.count:,} client TIME_WAIT"
    if not short:
        text += f" on {count(client.ports, 'ephemeral port')}"
    if client.by_remote_port:
        port, n = client.by_remote_port[0]
        text += f" ({n:,} to :{port})" if short else f", {n:,} of them to :{port}"
    if client.last_expiry is not None:
        text += f"{',' if short else ';'} all clear in {seconds(client.last_expiry)}"
    return text


def client_pressure(client: ClientTimeWait, *, short: bool = False) -> str:
    """client_summary with the share of the ephemeral range the busiest destination uses:
    "12,004 client TIME_WAIT on 12,004 ephemeral ports, 11,990 of 28,232 ports to
    127.0.0.1:5432; all clear in 60 s"; `short` (80 columns): "12,004 client TIME_WAIT
    (11,990/28,232 ports to 127.0.0.1:5432), all clear in 60 s". Without destinations (a
    collector that does not tally them) it is client_summary."""
    if not client.count:
        return ""
    total = client.ephemeral_ports
    if not client.by_destination or not total:
        return client_summary(client, short=short)
    address, port, n = client.by_destination[0]
    to = destination(address, port)
    text = f"{client.count:,} client TIME_WAIT"
    if short:
        text += f" ({n:,}/{total:,} ports to {to})"
    else:
        text += f" on {count(client.ports, 'ephemeral port')}, "
        text += f"{n:,} of {count(total, 'port')} to {to}"
    if client.last_expiry is not None:
        text += f"{',' if short else ';'} all clear in {seconds(client.last_expiry)}"
    return text


def client_warnings(
    client: ClientTimeWait, *, short: bool = False, threshold: float = PRESSURE_WARN
) -> tuple[str, ...]:
    """One warning per destination whose TIME_WAIT uses `threshold` or more of the
    ephemeral range: connect() picks a free local port per destination, and fails with
    EADDRNOTAVAIL once none is left."""
    total = client.ephemeral_ports
    if not total or client.ephemeral is None:
        return ()
    low, high = client.ephemeral
    found = []
    for address, port, n in client.by_destination:
        share = n / total
        if share < threshold:
            break  # largest first
        to = destination(address, port)
        if short:
            found.append(f"{share:.0%} of ephemeral ports to {to} in TIME_WAIT: near EADDRNOTAVAIL")
            continue
        line = (
            f"{share:.0%} of the ephemeral ports ({low}-{high}) are in TIME_WAIT to {to}: "
            f"connect() to it fails with EADDRNOTAVAIL (Cannot assign requested address) "
            f"once all {total:,} are taken"
        )
        reuse = _tw_reuse_for(client.tw_reuse, address)
        if reuse:
            line += f", unless it reuses them ({reuse})"
        found.append(line)
    return tuple(found)


def _tw_reuse_for(tw_reuse: int | None, address: str) -> str:
    """Linux's tcp_tw_reuse lets connect() take over a TIME_WAIT port older than 1 s: for
    every destination (1), or only loopback ones (2, the default)."""
    if tw_reuse == 1:
        return "tcp_tw_reuse=1 lets connect() take over TIME_WAIT ports older than 1 s"
    if tw_reuse == 2:
        import ipaddress  # here: `list` pays for it only when it prints this line

        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return ""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return "tcp_tw_reuse=2 lets connect() take over loopback TIME_WAIT ports older than 1 s"
    return ""


def hidden_summary(hidden: int, is_root: bool) -> str:
    if not hidden:
        return ""
    noun = "socket has" if hidden == 1 else "sockets have"
    if is_root:
        return f"{hidden:,} {noun} no visible owner (another namespace or the kernel)"
    return f"{hidden:,} {noun} a hidden owner: run with sudo to see it"
