"""The strict parsers behind --port lists and ranges, `wait` targets, PIDs and counts."""

from __future__ import annotations

import pytest

from portscope.core.inputs import (
    parse_connect_host,
    parse_count,
    parse_pid,
    parse_port_range,
    parse_ports,
    parse_target,
)


def test_ports_ranges_and_lists() -> None:
    assert parse_ports("8080") == (8080,)
    assert parse_ports(" 8000-8002 ") == (8000, 8001, 8002)
    assert parse_ports("3000,8080,9000-9001") == (3000, 8080, 9000, 9001)
    assert parse_ports("80,80,79-80") == (80, 79)  # each once, in the order given
    assert parse_port_range("443") == (443, 443)
    assert len(parse_ports("1-65535")) == 65535


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no port number given"),
        ("8010-8000", "a port range goes up: '8010-8000' (write 8000-8010)"),
        ("80-", "not a port range: '80-' (no port number given"),
        ("80-70000", "not a port range: '80-70000' (port must be 1-65535, got 70000)"),
        ("-80", "port must be 1-65535, got -80"),
        ("1-2-3", "not a port range: '1-2-3'"),
        ("80,", "empty item in the port list '80,'"),
        ("８０-90", "not a port range: '８０-90'"),  # noqa: RUF001
    ],
)
def test_bad_ports_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_ports(text)
    assert str(err.value).startswith(message), str(err.value)


def test_wait_targets() -> None:
    assert parse_target("5432") == (None, (5432,))
    assert parse_target("db.internal:5432") == ("db.internal", (5432,))
    assert parse_target("[::1]:8000-8001") == ("::1", (8000, 8001))
    assert parse_target("10.0.0.5:80") == ("10.0.0.5", (80,))
    for bad in ("::1:80", ":80", "db:", "a b:80", "\x1b[2J:80"):
        with pytest.raises(ValueError):
            parse_target(bad)
    assert parse_connect_host("localhost") == "localhost"
    assert parse_connect_host("[fe80::1]") == "fe80::1"


def test_pids_and_counts() -> None:
    assert parse_pid("1234") == 1234
    assert parse_count("3", name="-n") == 3
    for bad in ("0", "-1", "4194305", "1e3", "x", ""):
        with pytest.raises(ValueError):
            parse_pid(bad)
    for bad in ("0", "65536", "two", "99999999999"):
        with pytest.raises(ValueError, match="-n takes a number from 1 to 65535"):
            parse_count(bad, name="-n")
