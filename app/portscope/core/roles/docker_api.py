"""The Docker Engine API over its unix socket: bounded, checked, standard library only.

Who publishes which host address and port (`GET /containers/json`), one container's main
process and stop timeout (`GET /containers/{id}/json`), and stopping it
(`POST /containers/{id}/stop`): what `docker ps`, `docker inspect` and `docker stop` do,
without shelling out.

The daemon's answer is a kernel-grade fact only when the daemon is the one its socket's
owner runs (domain.md 9), so the socket (`DOCKER_HOST` when that is `unix://...`, else
/var/run/docker.sock) is used only when it is owned by root or by the effective user, and
its listener (SO_PEERCRED) runs as one of them: `sudo -E` never points root at a user's
fake daemon, and a user's own rootless Docker keeps working for that user.

Everything the answer says is untrusted input: one overall deadline per lookup (a daemon
dripping a byte a second cannot hold `check`), a byte cap (a 100 MB body is never read), a
nesting-depth check before `json.loads` (no RecursionError), and the type of every field
used is checked; any mismatch is one DockerUnavailable with one clear note.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time

from ..model import Container
from ..record import record

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    import socket
    from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
DEADLINE = 3.0  # seconds for one whole lookup: connect, request, every read of the answer
LIMIT = 4 * 1024 * 1024  # bytes of one answer; 100 containers list in ~100 KB
MAX_DEPTH = 64  # Docker's answers nest about 6 deep; json.loads recurses once per level
DEFAULT_STOP_TIMEOUT = 10  # what the daemon waits before SIGKILL when the container sets none
STOP_MARGIN = 10.0  # beyond the stop timeout: the daemon's SIGKILL and its own bookkeeping
LONGEST_STOP = 3600.0  # StopTimeout -1 (wait for ever): stop waiting for the answer then
_ID = re.compile(r"[0-9a-f]{64}")
# A JSON string, skipped when counting depth. The closing quote is optional, so a match never
# fails and never backtracks (linear even for an unterminated string, which json.loads then
# refuses).
_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but brackets


class DockerUnavailable(Exception):
    """No daemon, a socket we will not trust, no answer in time, or an answer we refuse."""


@record
class Published:
    """One host address and port a container publishes (`-p 127.0.0.1:8080:80`)."""

    host_ip: str  # normalised ("::1", "0.0.0.0")
    port: int
    proto: str  # "tcp", "udp", "sctp"

    def shown(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host}:{self.port}/{self.proto}"


@record
class Listed:
    """A running container as `GET /containers/json` lists it."""

    container: Container
    published: tuple[Published, ...]


@record
class Listing:
    """The daemon's list of running containers, and who owns the socket that answered."""

    owner: int  # uid owning the daemon's socket: 0 for root's Docker, else a rootless user's
    containers: tuple[Listed, ...]


@record
class Inspected:
    """One container as `GET /containers/{id}/json` describes it."""

    container: Container
    pid: int  # State.Pid, in the host's PID namespace; 0 when it does not run
    running: bool
    stop_timeout: int | None  # Config.StopTimeout (`--stop-timeout`); None: the default
    owner: int  # uid owning the daemon's socket that answered


def daemon_socket() -> tuple[str, int]:
    """(path, owner uid) of the daemon's socket, if we may ask it; else DockerUnavailable."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        path, named = host[len("unix://") :], "DOCKER_HOST"
    elif host:
        raise DockerUnavailable(f"DOCKER_HOST={host} is not a unix socket")
    else:
        path, named = DEFAULT_SOCKET, "the Docker socket"
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DockerUnavailable(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise DockerUnavailable(f"{path} is not a socket")
    if info.st_uid not in _trusted_uids():
        raise DockerUnavailable(
            f"{named} {path} belongs to {_user(info.st_uid)}, not to root or to you: not "
            "asked (a daemon there could say anything)"
        )
    return path, info.st_uid


def request(method: str, path: str, deadline: float | None = None) -> tuple[int, Any]:
    """(status, decoded JSON body or None); DockerUnavailable if the daemon cannot be
    asked, does not answer by `deadline` (time.monotonic(); default DEADLINE from now), or
    answers with more than LIMIT bytes or with JSON nested deeper than MAX_DEPTH."""
    status, data, _ = _ask(method, path, deadline)
    return status, data


def _ask(method: str, path: str, deadline: float | None) -> tuple[int, Any, int]:
    """`request`, plus the uid owning the socket that answered."""
    end = time.monotonic() + DEADLINE if deadline is None else deadline
    sock_path, owner = daemon_socket()
    raw = _exchange(sock_path, f"{method} {path}", end)
    status, body = _parse(raw, method, path)
    return status, decode(body, f"{method} {path}") if body.strip() else None, owner


def listing(deadline: float | None = None) -> Listing:
    """Every running container with the host addresses and ports it publishes."""
    status, data, owner = _ask("GET", "/containers/json", deadline)
    what = "GET /containers/json"
    if status != 200:
        raise DockerUnavailable(f"{what} answered HTTP {status}")
    items = _typed(data, list, what)
    return Listing(owner, tuple(_listed(item, f"{what}[{i}]") for i, item in enumerate(items)))


def inspect(container_id: str, deadline: float | None = None) -> Inspected | None:
    """One container by its full id; None if Docker knows no such container."""
    if not _ID.fullmatch(container_id):
        raise DockerUnavailable(f"not a container id: {container_id!r}")
    what = f"GET /containers/{container_id[:12]}/json"
    status, data, owner = _ask("GET", f"/containers/{container_id}/json", deadline)
    if status == 404:
        return None
    if status != 200:
        raise DockerUnavailable(f"{what} answered HTTP {status}")
    item = _typed(data, dict, what)
    state = _field(item, "State", dict, what)
    config = _field(item, "Config", dict, what)
    stop_timeout = _field(config, "StopTimeout", int, f"{what} Config", optional=True)
    labels = _labels(config, f"{what} Config")
    container = _container(
        _identifier(item, what), _field(item, "Name", str, what).lstrip("/"),
        _field(config, "Image", str, f"{what} Config"), labels,
    )
    return Inspected(
        container,
        pid=_field(state, "Pid", int, f"{what} State"),
        running=_field(state, "Running", bool, f"{what} State"),
        stop_timeout=stop_timeout,
        owner=owner,
    )


def stop(container_id: str, timeout: float | None = None) -> int:
    """POST /containers/{id}/stop: 204 stopped, 304 already stopped, 404 gone.

    Without `timeout` no `t` is sent, so the daemon waits the container's own StopTimeout
    (`--stop-timeout`, compose's stop_grace_period) before SIGKILL, as `docker stop NAME`
    does; the answer is awaited that long plus a margin. With `timeout` (the person's
    `--timeout`), `t` is that, rounded up to whole seconds as the API takes it."""
    if timeout is None:
        found = inspect(container_id)
        if found is None:
            return 404
        wait = float(DEFAULT_STOP_TIMEOUT if found.stop_timeout is None else found.stop_timeout)
        query = ""
    else:
        wait = float(max(0, -(-timeout // 1)))  # ceil, without importing math
        query = f"?t={int(wait)}"
    if wait < 0:  # StopTimeout -1: the daemon waits for ever; we do not
        wait = LONGEST_STOP
    deadline = time.monotonic() + min(wait, LONGEST_STOP) + STOP_MARGIN
    status, _ = request("POST", f"/containers/{container_id}/stop{query}", deadline)
    return status


def decode(body: bytes, what: str) -> Any:
    """JSON, after checking it nests no deeper than MAX_DEPTH (json.loads recurses once per
    level: `[` x 100,000 would raise RecursionError)."""
    depth = deepest = 0
    for byte in _STRING.sub(b"", body).translate(None, _BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                raise DockerUnavailable(f"{what}: the answer nests deeper than {MAX_DEPTH}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise DockerUnavailable(f"{what}: the answer is not JSON") from None


# ---------------------------------------------------------------------------------------
# One HTTP exchange on the unix socket, under one deadline


def _exchange(path: str, line: str, deadline: float) -> bytes:
    """Send `line` as an HTTP/1.0 request (so the answer is never chunked and ends when the
    daemon closes) and read the answer until it is complete, the deadline passes or it grows
    past LIMIT. socket and struct are imported here: `list` imports this module and never
    connects."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _settle(sock, deadline)
        sock.connect(path)
        _check_peer(sock, path)
        _settle(sock, deadline)
        sock.sendall(f"{line} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n".encode())
        answer = bytearray()
        while not _complete(answer):
            _settle(sock, deadline)
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if len(answer) > LIMIT + 65536:  # the body's cap plus room for the headers
                raise DockerUnavailable(f"the answer is larger than {LIMIT // 2**20} MiB")
        return bytes(answer)
    except TimeoutError:
        raise DockerUnavailable(f"no complete answer within {DEADLINE:g} s") from None
    except OSError as exc:
        raise DockerUnavailable(f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()


def _settle(sock: socket.socket, deadline: float) -> None:
    """What is left of the one deadline becomes the next operation's timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)


def _check_peer(sock: socket.socket, path: str) -> None:
    """The process listening on the socket runs as root or as us (the socket file could be
    swapped between the stat and the connect)."""
    import socket
    import struct

    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # not Linux: the file's owner is all we can check
        return
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, 12))
    if uid not in _trusted_uids():
        raise DockerUnavailable(f"the daemon on {path} runs as {_user(uid)}: not asked")


def _complete(answer: bytearray) -> bool:
    """The headers arrived and so did Content-Length bytes of body (a daemon that keeps the
    connection open after a full answer must not cost us the deadline)."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = _content_length(bytes(answer[:end]))
    return length is not None and len(answer) - end - 4 >= length


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
            if length > LIMIT:
                raise DockerUnavailable(
                    f"the answer is {length:,} bytes, more than the {LIMIT // 2**20} MiB read"
                )
            return length
    return None


def _parse(raw: bytes, method: str, path: str) -> tuple[int, bytes]:
    what = f"{method} {path}"
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[1].isdigit():
        raise DockerUnavailable(f"{what}: the answer is not HTTP")
    length = _content_length(head)
    if length is not None:
        if len(body) < length:
            raise DockerUnavailable(f"{what}: the answer ended early")
        body = body[:length]
    if len(body) > LIMIT:
        raise DockerUnavailable(f"{what}: the answer is larger than {LIMIT // 2**20} MiB")
    return int(status_line[1]), body


# ---------------------------------------------------------------------------------------
# The fields used, each checked for its type


def _listed(value: object, what: str) -> Listed:
    item: dict[str, Any] = _typed(value, dict, what)
    names = _field(item, "Names", list, what)
    for i, name in enumerate(names):
        _typed(name, str, f"{what} Names[{i}]")
    cid = _identifier(item, what)
    container = _container(
        cid, names[0].lstrip("/") if names else cid[:12], _field(item, "Image", str, what),
        _labels(item, what),
    )
    published = []
    for i, port in enumerate(_field(item, "Ports", list, what, optional=True) or ()):
        where = f"{what} Ports[{i}]"
        port = _typed(port, dict, where)
        proto = _field(port, "Type", str, where)
        public = _field(port, "PublicPort", int, where, optional=True)
        host_ip = _field(port, "IP", str, where, optional=True)
        address = normal_address(host_ip)
        if public is not None and address is not None:
            published.append(Published(address, public, proto))
    return Listed(container, tuple(published))


def _container(cid: str, name: str, image: str, labels: dict[str, str]) -> Container:
    return Container(
        id=cid, name=name, image=image,
        compose_project=labels.get("com.docker.compose.project"),
        compose_service=labels.get("com.docker.compose.service"),
    )


def _identifier(item: dict[str, Any], what: str) -> str:
    cid: str = _field(item, "Id", str, what)
    if not _ID.fullmatch(cid):
        raise DockerUnavailable(f"{what}: Id is not a container id")
    return cid


def _labels(item: dict[str, Any], what: str) -> dict[str, str]:
    labels = _field(item, "Labels", dict, what, optional=True) or {}  # Go's nil map: null
    for key, value in labels.items():
        _typed(value, str, f"{what} Labels[{key!r}]")
    return labels


def normal_address(host_ip: str | None) -> str | None:
    """The address normalised, so "::0001" and "::1" compare equal; None if it is none."""
    if not host_ip:
        return None
    import ipaddress

    try:
        return str(ipaddress.ip_address(host_ip))
    except ValueError:
        return None


def _field(
    obj: dict[str, Any], key: str, kind: type, what: str, *, optional: bool = False
) -> Any:
    """obj[key] if it has type `kind` (null or absent too, if `optional`)."""
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise DockerUnavailable(f"{what}: {key} is missing")
    return _typed(obj[key], kind, f"{what} {key}")


def _typed(value: object, kind: type, what: str) -> Any:
    # bool is an int to Python, never to Docker's schema
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DockerUnavailable(
            f"{what}: expected {_JSON_NAMES.get(kind, kind.__name__)}, "
            f"got {_JSON_NAMES.get(type(value), type(value).__name__)}"
        )
    return value


_JSON_NAMES: dict[type, str] = {
    dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "a boolean",
    float: "a number", type(None): "null",
}


def _trusted_uids() -> tuple[int, ...]:
    geteuid = getattr(os, "geteuid", None)
    return (0,) if geteuid is None else (0, geteuid())


def _user(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
