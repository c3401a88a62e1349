"""One test bind, done the way a server does it, and the kernel's answer as plain data.

The probe must never disturb what it looks at: no SO_REUSEPORT (a socket of the same user
could bind beside a live listener and steal connections), no accept(), and every socket is
closed before the function returns, whatever happened.
"""

from __future__ import annotations

import errno as errnos
import ipaddress
import os
import socket
import sys

from ..hints import Literal
from ..model import Proto
from ..record import record

Option = Literal["plain", "SO_REUSEADDR", "SO_EXCLUSIVEADDRUSE"]
# The bind a person waits for: a plain one, or one with SO_REUSEADDR as gunicorn, uvicorn,
# node and most frameworks do (`check --reuseaddr`, `wait --reuseaddr`).
Bind = Literal["plain", "reuseaddr"]

# The Windows codes users see for the same failures (WSAGetLastError()).
WINDOWS_CODES = {
    errnos.EADDRINUSE: (10048, "WSAEADDRINUSE"),
    errnos.EACCES: (10013, "WSAEACCES"),
    errnos.EADDRNOTAVAIL: (10049, "WSAEADDRNOTAVAIL"),
}
# Only Windows builds of Python define it; the Windows value is the fallback.
_EXCLUSIVEADDRUSE: int = getattr(socket, "SO_EXCLUSIVEADDRUSE", ~4)
_WINSOCK_TO_ERRNO = {code: err for err, (code, _) in WINDOWS_CODES.items()}


@record
class Attempt:
    """The outcome of one bind (+ listen for TCP) with one socket option."""

    option: Option
    ok: bool
    errno: int | None = None
    error: str | None = None  # symbolic name, e.g. "EADDRINUSE"
    message: str | None = None  # the OS's own text, e.g. "Address already in use"
    step: Literal["bind", "listen"] | None = None  # which call failed

    @property
    def windows_code(self) -> tuple[int, str] | None:
        return WINDOWS_CODES.get(self.errno) if self.errno is not None else None


def server_options() -> tuple[Option, Option]:
    """The two ways a server binds on this platform.

    On Windows SO_REUSEADDR would bind over a live listener, so the second attempt there is
    SO_EXCLUSIVEADDRUSE, the option a careful Windows server sets.
    """
    if sys.platform == "win32":
        return ("plain", "SO_EXCLUSIVEADDRUSE")
    return ("plain", "SO_REUSEADDR")


def bind_option(bind: Bind, platform: str | None = None) -> Option:
    """The socket option a `bind` server sets. On Windows TIME_WAIT never blocks a plain
    bind, and SO_REUSEADDR there would bind over a live listener: both are a plain bind.
    `platform`: sys.platform, read at the call (tests fake Windows at the OS boundary)."""
    if bind == "reuseaddr" and (platform or sys.platform) != "win32":
        return "SO_REUSEADDR"
    return "plain"


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def try_bind(port: int, address: str, proto: Proto, option: Option) -> Attempt:
    """Bind (and listen, for TCP) one fresh socket, report what the kernel said, close it.

    For an IPv6 address the socket is dual-stack (IPV6_V6ONLY=0), as most servers that bind
    `::` are, so `::` also reports IPv4 conflicts; for a specific IPv6 address it changes
    nothing.
    """
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    family = family_of(address)
    step: Literal["bind", "listen"] = "bind"
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        return _failed(option, exc, "bind")
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if option == "SO_REUSEADDR":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif option == "SO_EXCLUSIVEADDRUSE":
            sock.setsockopt(socket.SOL_SOCKET, _EXCLUSIVEADDRUSE, 1)
        sock.bind((address, port))
        if proto == "tcp":
            step = "listen"  # the kernel checks the port again here
            sock.listen(1)
    except OSError as exc:
        return _failed(option, exc, step)
    finally:
        sock.close()
    return Attempt(option, True)


def _failed(option: Option, exc: OSError, step: Literal["bind", "listen"]) -> Attempt:
    code = exc.errno
    winerror = getattr(exc, "winerror", None)
    if winerror in _WINSOCK_TO_ERRNO:
        code = _WINSOCK_TO_ERRNO[winerror]
    name = errnos.errorcode.get(code) if code is not None else None
    message = os.strerror(code) if code is not None else str(exc)
    return Attempt(option, False, code, name, message, step)
