"""The words of a verdict: one sentence, why, and what to do, most useful first.

Kept apart from the probe so the CLI and the panel print the very same text.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Holder, Proto, Socket
from ..record import record
from ..roles.managers import PROCFILE_NOTE, WATCHER_NOTE
from ..roles.model import Role, StopPlan
from ..text import seconds
from ..untrusted import shown
from .bind_attempt import Attempt, Bind
from .excluded import PortRange
from .verdict import OtherAddress, ServerBind, TimeWaitInfo, Verdict, VerdictKind

PY_REUSEADDR = "Python: sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # before bind()"
C_REUSEADDR = (
    "C: int yes = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);"
    "  /* before bind() */"
)


@record
class Facts:
    port: int
    address: str
    proto: Proto
    kind: VerdictKind
    attempts: tuple[Attempt, ...]
    holders: tuple[Holder, ...]
    sockets: tuple[Socket, ...]
    time_wait: TimeWaitInfo | None
    live: int
    already_running: bool
    inherited: tuple[int, ...]
    suggested_port: int | None
    is_root: bool
    stop: StopPlan | None = None
    roles: tuple[Role, ...] = ()
    others: tuple[OtherAddress, ...] = ()
    other_proto: tuple[Socket, ...] = ()
    server_bind: ServerBind | None = None
    excluded: PortRange | None = None


@record
class Text:
    sentence: str
    explanation: tuple[str, ...]
    advice: tuple[str, ...]


def compose(f: Facts) -> Text:
    writer = {
        "free": _free,
        "listening": _listening,
        "time_wait": _time_wait,
        "connections": _connections,
        "udp_bound": _udp_bound,
        "owner_hidden": _owner_hidden,
        "kernel_held": _kernel_held,
        "permission_denied": _permission_denied,
        "address_not_available": _address_not_available,
        "excluded_range": _excluded_range,
    }[f.kind]
    sentence, why, todo = writer(f)
    taken = [o for o in f.others if o.taken]
    if taken and f.kind == "free":
        where = ", ".join(_bracketed(o.address) for o in taken)
        sentence += f" It is taken on {where}."
    why += others_lines(f, taken)
    if f.other_proto:
        why.append(other_proto_line(f.port, f.proto, f.other_proto))
    hint = f.server_bind
    if hint is not None and hint.source == "holder" and hint.program:
        todo.append(
            f"{shown(hint.program)} sets SO_REUSEADDR, so once it has stopped it can start "
            f"again at once, whatever TIME_WAIT it leaves: {wait_command(f, 'reuseaddr')} "
            "waits for exactly that."
        )
    if f.suggested_port is not None:
        todo.append(f"Or use another port now: {f.suggested_port} is free.")
    return Text(sentence, tuple(why), tuple(todo))


def wait_command(f: Facts, bind: Bind = "plain") -> str:
    """`portscope wait` for this very port, address, protocol and bind."""
    host = "" if f.address == "0.0.0.0" else f" --host {_bracketed(f.address)}"
    udp = " --udp" if f.proto == "udp" else ""
    reuse = " --reuseaddr" if bind == "reuseaddr" else ""
    return f"portscope wait {f.port}{host}{udp}{reuse}"


def bind_sentence(v: Verdict, bind: Bind) -> str:
    """What `check --reuseaddr` (and the panel's "wait for" choice) answers first: can a
    server that binds this way start now? For a plain bind that is the verdict itself."""
    if bind == "plain":
        return v.sentence
    where = f"{endpoint(v.address, v.port)}/{v.proto}"
    if not v.can_bind("reuseaddr"):
        return f"A server that sets SO_REUSEADDR cannot bind {where} now either."
    if v.free:
        return f"A server that sets SO_REUSEADDR can bind {where} now (a plain bind can too)."
    return (
        f"A server that sets SO_REUSEADDR can bind {where} now; a plain bind still fails "
        f"({_BLOCKED_BY.get(v.kind, v.kind)})."
    )


_BLOCKED_BY = {
    "time_wait": "TIME_WAIT",
    "connections": "live connections",
    "listening": "a listener",
    "udp_bound": "a bound UDP socket",
    "owner_hidden": "a socket whose owner is hidden",
    "kernel_held": "connections the kernel is still closing",
}


def other_proto_line(port: int, proto: Proto, sockets: tuple[Socket, ...]) -> str:
    """"UDP port 5353 is bound by avahi-daemon (pid 612): ...": what `check`, the panel and
    `kill` say when the other protocol holds the port number."""
    other = "udp" if proto == "tcp" else "tcp"
    holders = _union(sockets)
    who = names(holders) if holders else "a process portscope cannot see (run with sudo)"
    state = "bound" if other == "udp" else "in use"
    flag = " --udp" if other == "udp" else ""
    return (
        f"{other.upper()} port {port} is {state} by {who}: TCP and UDP are separate port "
        f"spaces, so it does not hold {proto} port {port}; portscope kill{flag} {port} "
        "stops it."
    )


def others_lines(f: Facts, taken: list[OtherAddress]) -> list[str]:
    """One line per group of other common addresses taken for the same reason."""
    groups: dict[tuple[object, ...], list[OtherAddress]] = {}
    for o in taken:
        groups.setdefault(_reason(o.kind, o.holders, o.sockets), []).append(o)
    mine = _reason(f.kind, f.holders, f.sockets)
    lines = []
    for key, group in groups.items():
        first = group[0]
        where = " and ".join(endpoint(o.address, f.port) for o in group)
        verb = "is" if len(group) == 1 else "are"
        if f.kind != "free" and key == mine:
            lines.append(f"{where} {verb} taken too, for the same reason.")
            continue
        lines.append(f"{where} {verb} taken: {_cause(first, f)}. {_who_fails(group)}")
    return lines


def _reason(
    kind: VerdictKind, holders: tuple[Holder, ...], sockets: tuple[Socket, ...]
) -> tuple[object, ...]:
    """What blocks a bind, comparable: the same kind, holders and sockets."""
    return (kind, tuple(h.pid for h in holders), tuple(sorted(s.key for s in sockets)))


def _cause(o: OtherAddress, f: Facts) -> str:
    at = ", ".join(sorted({socket_where(s) for s in o.sockets}))
    if o.kind in ("listening", "udp_bound"):
        if f.proto == "tcp":
            verb = agree(o.holders, "listens", "listen")
        else:
            verb = agree(o.holders, "is bound", "are bound")
        return f"{names(o.holders)} {verb} on {at}"
    if o.kind == "connections":
        return f"live connections held by {names(o.holders)}"
    if o.kind == "time_wait":
        return "only TIME_WAIT sockets of closed connections hold it there"
    if o.kind == "owner_hidden":
        return f"a socket on {at} whose process portscope cannot see" if at else (
            "something portscope cannot see holds it"
        )
    if o.kind == "kernel_held":
        return "connections the kernel is still closing hold it there (no process)"
    if o.kind == "permission_denied":
        return "bind() is refused there (EACCES)"
    if o.kind == "excluded_range":
        return "it is in a Windows excluded port range"
    return o.kind.replace("_", " ")


def _who_fails(group: list[OtherAddress]) -> str:
    addresses = [o.address for o in group]
    text = f"A server that binds {' or '.join(addresses)} fails there"
    if "::1" in addresses:
        return text + ", and so may one that binds localhost (node 17+ resolves it to ::1 first)."
    if "127.0.0.1" in addresses:
        return text + ", and so may one that binds localhost."
    return text + "."


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _union(sockets: tuple[Socket, ...]) -> tuple[Holder, ...]:
    seen: dict[int, Holder] = {}
    for s in sockets:
        for h in s.holders:
            seen.setdefault(h.pid, h)
    return tuple(seen[p] for p in sorted(seen))


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def holder_label(h: Holder) -> str:
    user = f", user {shown(h.user)}" if h.user else ""
    return f"{shown(h.name)} (pid {h.pid}{user})"


def agree(holders: tuple[Holder, ...], one: str, many: str) -> str:
    """The verb after names(holders): "python (pid 1) is", "python (pid 1), 299 more are"."""
    return one if len(holders) == 1 else many


def names(holders: tuple[Holder, ...]) -> str:
    labels = [holder_label(h) for h in holders[:4]]
    if len(holders) > 4:
        labels.append(f"{len(holders) - 4} more")
    return ", ".join(labels)


def socket_where(s: Socket) -> str:
    """"127.0.0.1:8080", and for a `[::]` socket whether it also takes IPv4: "[::]:8080
    (v6only)" or "[::]:8080 (dual-stack)" (plain where the table did not say)."""
    where = endpoint(s.address, s.port)
    if s.address == "::" and s.v6only is not None:
        where += " (v6only)" if s.v6only else " (dual-stack)"
    return where


def attempt_line(a: Attempt) -> str:
    """"EADDRINUSE (errno 98; Windows 10048 WSAEADDRINUSE): Address already in use"."""
    if a.ok:
        return "ok"
    codes = f"errno {a.errno}"
    if a.windows_code:
        codes += f"; Windows {a.windows_code[0]} {a.windows_code[1]}"
    where = "listen() " if a.step == "listen" else ""
    return f"{where}{a.error or 'error'} ({codes}): {a.message}"


def numbered_steps(advice: Iterable[str]) -> list[tuple[int | None, str]]:
    """The advice as numbered steps: (1, "Stop ..."), and (None, code) for the snippets that
    belong to the step before. `check` and the `b` panel number them with this, so the
    numbers a person reads in one match the other."""
    numbered: list[tuple[int | None, str]] = []
    step = 0
    for line in advice:
        if is_snippet(line):
            numbered.append((None, line))
        else:
            step += 1
            numbered.append((step, line))
    return numbered


def is_snippet(line: str) -> bool:
    """Advice lines that are code, which fronts print as code rather than as a step."""
    return line in (PY_REUSEADDR, C_REUSEADDR)


_Parts = tuple[str, list[str], list[str]]


def _free(f: Facts) -> _Parts:
    action = "bind() and listen()" if f.proto == "tcp" else "bind()"
    return (
        f"Port {f.port}/{f.proto} is free on {_bracketed(f.address)}: a server can bind it now.",
        [f"A plain {action} on {endpoint(f.address, f.port)} succeeded."],
        [],
    )


def _stop_advice(f: Facts, what: str) -> list[str]:
    """The stop plan as the first thing to do: the very command `portscope kill` carries
    out, so `check` never advises what `kill` would not do."""
    plan = f.stop
    if plan is None or plan.command is None:
        return []
    udp = " --udp" if f.proto == "udp" else ""
    kill = f"portscope kill{udp} {f.port}"
    if plan.how == "docker":
        via = f"  (or {kill}, which stops it through the Docker API)" if plan.container else ""
        return [f"Stop the container: {plan.command}{via}"]
    if plan.how == "service":
        return [f"Stop it through its manager: {plan.command}"]
    if plan.how == "setting":
        return [f"Turn it off: {plan.command}"]
    if plan.how == "none":
        return [f"Look there: {plan.command}"]
    kinds = {r.pid: r.kind for r in f.roles}
    first = kinds.get(plan.pids[0]) if plan.pids else None
    notes = {r.pid: r.note for r in f.roles}
    if first == "supervisor" and notes.get(plan.pids[0]) == PROCFILE_NOTE:
        lead = "Stop the Procfile manager, which stops every process it runs"
    elif first == "supervisor":
        lead = "Stop the shell loop first, then the server"
    elif first == "reloader" and notes.get(plan.pids[0]) == WATCHER_NOTE:
        lead = "Stop the file watcher first, then the server"
    elif first == "reloader":
        lead = "Stop the reloader, which would restart the server"
    elif first == "master":
        lead = "Stop the server's master, not a worker (it would respawn it)"
    elif any(kinds.get(p) == "inherited" for p in plan.pids):
        lead = "Stop the process that kept the socket" + (
            "" if all(kinds.get(p) == "inherited" for p in plan.pids) else " and its server"
        )
    elif f.already_running:
        lead = "Stop the earlier copy"
    else:
        lead = f"Stop {what}"
    return [f"{lead}: {plan.command}  (or {kill}, which checks first)"]


def _holder_notes(f: Facts) -> list[str]:
    why: list[str] = []
    if f.already_running:
        why.append(
            "It is probably an earlier copy of your own program, already running (it runs in "
            "this directory, or another copy runs the very same command)."
        )
    by_pid = {h.pid: h for h in f.holders}
    for role in f.roles:
        h = by_pid.get(role.pid)
        if role.kind == "inherited" and h is not None:
            why.append(
                f"{holder_label(h)} looks like it inherited the socket from the server that "
                "started it: stopping the server did not free the port because this process "
                "kept it."
            )
    masters = [r for r in f.roles if r.kind == "master"]
    workers = [r for r in f.roles if r.kind == "worker"]
    if masters and workers:
        why.append(
            f"{len(workers) + len(masters)} processes share the socket (a master and its "
            f"workers): stopping one worker does not free the port; the master is pid "
            f"{masters[0].pid}."
        )
    if f.stop is not None and f.stop.why and f.stop.how != "none":
        why.append(f"Stop plan: {f.stop.why}.")
    return why


def _listening(f: Facts) -> _Parts:
    mine = endpoint(f.address, f.port)
    where = ", ".join(sorted({endpoint(s.address, s.port) for s in f.sockets}))
    clash = f"{where} is taken" if where == mine else f"{where} overlaps {mine}"
    if any(s.address == "::" and s.v6only is False for s in f.sockets) and ":" not in f.address:
        clash += " (a dual-stack [::] takes IPv4 too)"
    if any(a.option == "SO_EXCLUSIVEADDRUSE" for a in f.attempts):  # the Windows probe
        rule = (
            f"Only one socket may listen on a port and address: {clash}. On Windows "
            "SO_REUSEADDR would bind over the live listener and take some of its "
            "connections: never set it to get past this (SO_EXCLUSIVEADDRUSE is the safe "
            "option, and it fails too)."
        )
    else:
        rule = (
            f"Only one socket may listen on a port and address: {clash}, and SO_REUSEADDR "
            "does not change that on a live listener."
        )
    why = [rule, *_holder_notes(f)]
    return (
        f"Port {f.port}/tcp is in use: {names(f.holders)} "
        f"{agree(f.holders, 'is', 'are')} listening on it.",
        why,
        _stop_advice(f, "it"),
    )


def _time_wait(f: Facts) -> _Parts:
    tw = f.time_wait
    count = tw.count if tw else 0
    left = seconds(tw.expires_in) if tw else "?"
    plural = "socket" if count == 1 else "sockets"
    why = [
        "TIME_WAIT is what is left of connections the old server closed first: the kernel "
        "keeps them for about 60 s so late packets cannot reach a new connection. No process "
        "owns them, so there is nothing to kill.",
    ]
    if tw and tw.reuseaddr_fixes:
        why.append(
            "A bind with SO_REUSEADDR succeeds now: the old server set SO_REUSEADDR (a "
            "TIME_WAIT socket keeps its listener's flag), so a server that sets it too starts "
            "at once."
        )
        todo = [
            "If your server sets SO_REUSEADDR (gunicorn, uvicorn, node and most frameworks "
            f"do), start it now: {wait_command(f, 'reuseaddr')} returns at once.",
            "If it does not, set SO_REUSEADDR before bind(); it can start now:",
            PY_REUSEADDR,
            C_REUSEADDR,
            f"Or wait {left}: {wait_command(f)}",
        ]
    else:
        why.append(
            "A bind with SO_REUSEADDR fails too: the old server did not set SO_REUSEADDR, and "
            f"on Linux the old and the new socket both need it. Wait {left}; set it in your "
            "server so the next restart is clean."
        )
        todo = [f"Wait {left}: {wait_command(f)} blocks until the port is free."]
        todo.append("Set SO_REUSEADDR in your server so the next restart is clean:")
        todo += [PY_REUSEADDR, C_REUSEADDR]
    return (
        f"Port {f.port}/tcp is held only by {count} TIME_WAIT {plural} of closed "
        f"connections; it frees itself in {left}.",
        why,
        todo,
    )


def _connections(f: Facts) -> _Parts:
    plural = "connection still holds" if f.live == 1 else "connections still hold"
    why = [
        "A process kept connections that were accepted on this port (for example a child "
        "that inherited them after the server stopped): the port stays busy until they close.",
        *_holder_notes(f),
    ]
    reuse = f.attempts[1] if len(f.attempts) > 1 else None
    todo = _stop_advice(f, "it")
    if reuse is not None and reuse.ok and reuse.option == "SO_REUSEADDR":
        why.append("A bind with SO_REUSEADDR succeeds: their listener had set it.")
        todo.append(
            f"A server that sets SO_REUSEADDR can start now: {wait_command(f, 'reuseaddr')} "
            "returns at once."
        )
    return (
        f"Port {f.port}/tcp has no listener, but {f.live} live {plural} it: "
        f"{names(f.holders)}.",
        why,
        todo,
    )


def _udp_bound(f: Facts) -> _Parts:
    why = [
        "UDP has no connections and no TIME_WAIT: the port is free as soon as that socket "
        f"closes. TCP port {f.port} is a separate port space and is not affected.",
        *_holder_notes(f),
    ]
    return (
        f"Port {f.port}/udp is in use: {names(f.holders)} "
        f"{agree(f.holders, 'has', 'share')} a UDP socket bound to it.",
        why,
        _stop_advice(f, "it"),
    )


def _owner_hidden(f: Facts) -> _Parts:
    why: list[str] = []
    if f.sockets:
        where = ", ".join(sorted({endpoint(s.address, s.port) for s in f.sockets}))
        uids = sorted({s.uid for s in f.sockets if s.uid is not None})
        owner = f" (uid {', '.join(map(str, uids))})" if uids else ""
        why.append(f"The kernel lists a socket on {where}{owner}, but not its process.")
    else:
        why.append(
            "No socket on this port is listed. It may be bound but not listening yet (a server "
            "between bind() and listen(), or a client that bound this port before connect()): "
            "Linux does not list those in /proc/net/tcp, only ss --bound-inactive (iproute2 "
            "6.5+) does. Or it lives in another network namespace (a container)."
        )
    if f.is_root:
        if f.sockets:
            why.append(
                "Even root sees no process holding it: it may belong to the kernel or to "
                "another network namespace (a container)."
            )
        todo = [
            f"Look for a program that binds port {f.port} without listening, or a container "
            "that publishes it."
        ]
    else:
        why.append("If its process belongs to another user, only root may see it.")
        todo = [f"Run sudo portscope check {f.port} to see which process holds it."]
    return (
        f"Port {f.port}/{f.proto} is in use, but you cannot see which process holds it.",
        why,
        todo,
    )


def _kernel_held(f: Facts) -> _Parts:
    """A server that closed its connections first (postgres after a clean stop) leaves them
    in FIN-WAIT-2 with no process: root sees every process, so none holds them."""
    limit = fin_timeout()
    reuse_ok = any(a.ok for a in f.attempts if a.option == "SO_REUSEADDR")
    within = f"within {seconds(limit)}" if limit is not None else "by itself"
    return (
        f"Port {f.port}/{f.proto} is held by the kernel after the process closed it "
        f"(clears {within}).",
        [
            f"{f.live:,} connection{'s' if f.live != 1 else ''} on this port "
            f"{'are' if f.live != 1 else 'is'} still closing (FIN-WAIT or LAST-ACK) and "
            "belong to no process: the server closed them and exited; the kernel finishes "
            "the close and then frees the port (net.ipv4.tcp_fin_timeout).",
        ],
        [
            f"Wait: {wait_command(f)} returns once the port is free."
            + (" A server that sets SO_REUSEADDR can bind it already." if reuse_ok else ""),
        ],
    )


def fin_timeout() -> float | None:
    """net.ipv4.tcp_fin_timeout: how long an orphaned FIN-WAIT-2 socket lives (Linux)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_fin_timeout") as fh:
            return float(fh.read().strip())
    except (OSError, ValueError):
        return None


def _permission_denied(f: Facts) -> _Parts:
    return (
        f"Port {f.port} is privileged: only root or a process with CAP_NET_BIND_SERVICE may "
        "bind it.",
        [
            "On Linux, ports below net.ipv4.ip_unprivileged_port_start (1024 by default) need "
            "privileges. This says nothing about whether the port is in use.",
        ],
        [
            "Use a port of 1024 or above.",
            "Or give the server the capability: sudo setcap cap_net_bind_service=+ep "
            "/path/to/server (or run it as root).",
            f"Or lower the limit: sudo sysctl net.ipv4.ip_unprivileged_port_start={f.port}",
        ],
    )


def _address_not_available(f: Facts) -> _Parts:
    return (
        f"{_bracketed(f.address)} is not an address of this machine, so nothing can bind it.",
        ["bind() fails with EADDRNOTAVAIL for an address that no network interface has."],
        [
            "Bind 0.0.0.0 (all IPv4 addresses), :: (all addresses) or 127.0.0.1 (this "
            "machine only).",
            "List this machine's addresses: ip -brief address",
        ],
    )


def _excluded_range(f: Facts) -> _Parts:
    r = f.excluded
    span = r.label if r else "?"
    who = (
        "an administrator excluded it"
        if r and r.administered
        else "Windows reserved it, usually for Hyper-V, WSL 2 or Docker Desktop (WinNAT)"
    )
    why = [
        "Inside an excluded port range bind() fails with WSAEACCES (10013, permission denied) "
        "for every program and every user, and no tool shows a holder: the range is reserved, "
        "not in use.",
        f"netsh interface ipv4 show excludedportrange protocol={f.proto} lists the ranges; "
        "those WinNAT reserves move at every reboot.",
    ]
    todo = ["Use a port outside the excluded ranges."]
    if r and r.administered:
        todo.append(
            "Or remove the exclusion (as administrator): netsh interface ipv4 delete "
            f"excludedportrange protocol={f.proto} startport={r.start} numberofports={r.size}"
        )
    else:
        todo.append(
            "Or make WinNAT pick its ranges again (as administrator): net stop winnat, start "
            "your server, then net start winnat."
        )
    return (
        f"Port {f.port}/{f.proto} is in a Windows excluded port range ({span}): {who}; "
        "no process holds it.",
        why,
        todo,
    )
