"""Strict parsers for what a person types: ports, hosts, durations, signal names.

Each returns a clean value or raises ValueError with one line the person can act on. The
bad input is quoted cut to 40 characters and escaped, because it is echoed to a terminal:
`portscope check $'\\e[2J'` must not clear the screen while it explains the mistake.

Strict means ASCII: `int()` and `float()` accept fullwidth and Arabic-Indic digits, `8_080`,
`+80` and `1e3`, and `str.upper()` turns a dotless i (U+0131) into I, so "k\u0131ll" would
be KILL. None of those is what a person meant to type, and a value that a shell script
reads one way and portscope another is a bug waiting to happen.
"""

from __future__ import annotations

import math
import re

from .untrusted import shown

QUOTE_LIMIT = 40  # characters of bad input echoed back; enough to recognise it
LOCALHOST = ("127.0.0.1", "::1")  # what a server that binds "localhost" ends up on

_ASCII_SPACE = " \t\n\r\x0b\x0c"
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?")
_HOST_EXAMPLES = "use e.g. 0.0.0.0, ::, 127.0.0.1, [::1] or localhost"


def quoted(text: str) -> str:
    """`text` in quotes for an error line: at most QUOTE_LIMIT characters, escaped."""
    return f"'{_cut(text)}'"


def _cut(text: str) -> str:
    return shown(text[:QUOTE_LIMIT]) + ("…" if len(text) > QUOTE_LIMIT else "")


def _strip(text: str) -> str:
    # Only ASCII whitespace: a no-break or ideographic space is part of what was typed.
    return text.strip(_ASCII_SPACE)


def parse_port(text: str) -> int:
    """A TCP/UDP port, 1-65535, in ASCII digits (surrounding ASCII spaces are ignored)."""
    raw = _strip(text)
    if not raw:
        raise ValueError("no port number given (expected 1-65535)")
    sign, digits = ("-", raw[1:]) if raw.startswith("-") else ("", raw)
    if _DIGITS.fullmatch(digits) is None:
        raise ValueError(f"not a port number: {quoted(raw)} (expected 1-65535 in digits 0-9)")
    # Count digits before int(): a 5,000-digit "port" must not reach int()'s digit limit.
    significant = digits.lstrip("0") or "0"
    if sign or len(significant) > 5 or not 1 <= int(significant) <= 65535:
        raise ValueError(f"port must be 1-65535, got {_cut(sign + significant)}")
    return int(significant)


def parse_host(text: str) -> tuple[str, ...]:
    """The addresses to probe for `--host`: one literal IPv4/IPv6 address (`[::1]` too),
    or both loopbacks for `localhost`; blank means 0.0.0.0."""
    raw = _strip(text)
    if not raw:
        return ("0.0.0.0",)
    if raw.lower() == "localhost":
        return LOCALHOST
    inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    if "%" in inner:
        raise ValueError(
            f"scoped addresses are not supported: {quoted(raw)} (the probe binds without an "
            "interface; use a global or loopback address, or :: for all)"
        )
    import ipaddress  # here, not at the top: only --host needs it, and every command parses

    try:
        ip = ipaddress.ip_address(inner)
    except ValueError:
        if raw.isascii() and _HOSTNAME.fullmatch(raw) and any(c.isalpha() for c in raw):
            raise ValueError(
                f"not an IP address: {quoted(raw)} (host names other than localhost are not "
                "looked up; give the address the server binds)"
            ) from None
        raise ValueError(f"not an IP address: {quoted(raw)} ({_HOST_EXAMPLES})") from None
    if "[" in raw and ip.version == 4:
        raise ValueError(f"not an IP address: {quoted(raw)} (brackets are for IPv6 only)")
    plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    if plain.is_multicast:
        raise ValueError(
            f"{quoted(raw)} is a multicast address: a server port is bound on a unicast "
            f"address ({_HOST_EXAMPLES})"
        )
    if plain == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(
            f"{quoted(raw)} is the broadcast address: a server port is bound on a unicast "
            f"address ({_HOST_EXAMPLES})"
        )
    return (str(ip),)


def parse_duration(text: str, *, low: float, high: float, name: str) -> float:
    """Seconds for an option such as `--timeout`: a plain decimal from `low` to `high`."""
    raw = _strip(text)
    expected = f"{name} takes seconds from {low:g} to {high:g}"
    if _DECIMAL.fullmatch(raw) is None:
        raise ValueError(f"{expected}, got {quoted(raw)}")
    value = float(raw)  # digits and one dot: at worst inf for a huge number, never an error
    if math.isinf(value) or not low <= value <= high:
        raise ValueError(f"{expected}, got {quoted(raw)}")
    return value


def parse_signal(text: str) -> str:
    """TERM, SIGTERM, term or 15 (and the same for INT/2, KILL/9) -> "TERM", "INT", "KILL"."""
    from .kill.plan import SIGNALS  # here: the kill model is not every command's to load

    raw = _strip(text)
    numbers = {str(int(num)): name for name, num in SIGNALS.items()}
    if raw.isascii():
        if raw in numbers:
            return numbers[raw]
        name = raw.upper().removeprefix("SIG")
        if name in SIGNALS:
            return name
    accepted = ", ".join(f"{name} ({int(num)})" for name, num in SIGNALS.items())
    raise ValueError(
        f"unknown signal: {quoted(raw)} (accepted: {accepted}, with or without SIG)"
    )


def parse_port_range(text: str) -> tuple[int, int]:
    """`8000-8010` (or one port, `8000`) -> (first, last), both ends included, first <= last."""
    raw = _strip(text)
    first, dash, last = raw.partition("-")
    if not dash or not first:  # one port, or a leading "-" that parse_port names
        port = parse_port(raw)
        return port, port
    low, high = _range_end(first, raw), _range_end(last, raw)
    if low > high:
        raise ValueError(f"a port range goes up: {quoted(raw)} (write {high}-{low})")
    return low, high


def _range_end(text: str, whole: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise ValueError(f"not a port range: {quoted(whole)} ({exc})") from None


def parse_ports(text: str) -> tuple[int, ...]:
    """The ports of `3000`, `8000-8010`, or a comma list of both (`3000,8080,9000-9002`), in
    the order given, each once."""
    raw = _strip(text)
    if not raw:
        raise ValueError("no port number given (expected 1-65535, A-B or a comma list)")
    seen: dict[int, None] = {}
    for part in raw.split(","):
        if not _strip(part):
            raise ValueError(f"empty item in the port list {quoted(raw)}")
        low, high = parse_port_range(part)
        seen.update(dict.fromkeys(range(low, high + 1)))
    return tuple(seen)


def parse_count(text: str, *, name: str, high: int = 65535) -> int:
    """A count such as `free -n`: 1 to `high`, in ASCII digits."""
    raw = _strip(text)
    if _DIGITS.fullmatch(raw) is None or len(raw.lstrip("0")) > 5:
        raise ValueError(f"{name} takes a number from 1 to {high}, got {quoted(raw)}")
    value = int(raw)
    if not 1 <= value <= high:
        raise ValueError(f"{name} takes a number from 1 to {high}, got {value}")
    return value


def parse_connect_host(text: str) -> str:
    """A host to connect to (`wait --listening --host`): a literal address or a DNS name,
    looked up at each try (it may not resolve yet while a compose stack starts)."""
    raw = _strip(text)
    inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    if not inner:
        raise ValueError("no host given (a name such as db.internal, or an address)")
    if raw.isascii() and _HOSTNAME.fullmatch(inner) and len(inner) <= 253:
        return inner
    import ipaddress  # only a literal IPv6 address gets here

    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        raise ValueError(
            f"not a host name or address: {quoted(raw)} (e.g. localhost, db.internal, "
            "10.0.0.5, [::1])"
        ) from None


def parse_target(text: str) -> tuple[str | None, tuple[int, ...]]:
    """A `wait` target: ports as parse_ports reads them, or `HOST:PORT` (`db:5432`,
    `[::1]:8080`) for a port on another machine; the host is None for a bare port list."""
    raw = _strip(text)
    if ":" not in raw:
        return None, parse_ports(raw)
    host, _, port = raw.rpartition(":")
    if host.count(":") and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(
            f"not HOST:PORT: {quoted(raw)} (put an IPv6 address in brackets: [::1]:8080)"
        )
    return parse_connect_host(host), parse_ports(port)


def parse_pid(text: str) -> int:
    """A process ID, 1 to 4194304 (Linux's PID_MAX_LIMIT), in ASCII digits."""
    raw = _strip(text)
    if _DIGITS.fullmatch(raw) is None or len(raw.lstrip("0")) > 7:
        raise ValueError(f"not a PID: {quoted(raw)} (expected a number such as 1234)")
    value = int(raw)
    if not 1 <= value <= 4194304:
        raise ValueError(f"not a PID: {quoted(raw)} (expected 1 to 4194304)")
    return value
