"""Which bind the port's server does: SO_REUSEADDR or plain, when something shows it.

A live holder shows it by what it is: these servers set SO_REUSEADDR on their listening
sockets on Linux and macOS (read in their sources: gunicorn's sock.py, uvicorn's
config.bind_socket, libuv's uv__tcp_bind for node, Python's http.server/socketserver
`allow_reuse_address` under Flask's and Django's dev servers, nginx, Apache's APR, Redis's
anetListen, PostgreSQL's StreamServerPort, Ruby's TCPServer under puma, Go's net.Listen under
caddy). A plain Python socket does not, so an unknown program says nothing.

The port's history shows it too: a TIME_WAIT socket keeps the flag of the listener it was
accepted from, so the SO_REUSEADDR attempt succeeding means the old server had set it.
"""

from __future__ import annotations

from itertools import chain

from ..model import Holder
from ..roles.model import Role
from ..roles.procs import ProcInfo
from ..roles.signatures import server_name
from .bind_attempt import Attempt
from .verdict import ServerBind, VerdictKind

# Names as roles.signatures.server_name() gives them.
SETS_REUSEADDR = frozenset({
    "gunicorn", "uvicorn", "hypercorn", "node", "flask", "manage.py", "http.server",
    "nginx", "httpd", "apache2", "redis-server", "postgres", "puma", "caddy",
})
_SERVING = ("server", "master", "reloader", "worker", "proxy")


def server_bind(
    kind: VerdictKind,
    holders: tuple[Holder, ...],
    roles: tuple[Role, ...],
    attempts: tuple[Attempt, ...],
) -> ServerBind | None:
    """What the holder or the port's history says about the bind; None when nothing does."""
    if kind == "listening":
        program = known_program(holders, roles)
        return ServerBind(True, program, "holder") if program else None
    reuse = next((a for a in attempts if a.option == "SO_REUSEADDR"), None)
    if reuse is None:  # Windows probes SO_EXCLUSIVEADDRUSE: the history says nothing
        return None
    if kind == "time_wait":
        return ServerBind(reuse.ok, None, "time_wait")
    if kind == "connections" and reuse.ok:  # a failure could have other causes
        return ServerBind(True, None, "connections")
    return None


def known_program(holders: tuple[Holder, ...], roles: tuple[Role, ...]) -> str | None:
    """The first holder's program known to set SO_REUSEADDR, the serving roles first."""
    serving = (r.name for r in roles if r.holds and r.kind in _SERVING)
    # Lazily, and once per distinct command: 2,000 workers of one master are one name.
    commands = dict.fromkeys((h.name, h.cmdline) for h in holders)
    named = (server_name(ProcInfo(0, None, name, argv, None)) for name, argv in commands)
    return next((n for n in chain(serving, named) if n in SETS_REUSEADDR), None)
