"""core/inputs: the values the strict parsers return, and the lines they refuse with (the
subprocess table in test_bad_input.py checks how the CLI prints them)."""

from __future__ import annotations

import pytest

from portscope.core.inputs import parse_duration, parse_host, parse_port, parse_signal, quoted


@pytest.mark.parametrize(
    ("text", "port"), [("80", 80), (" 8080\t", 8080), ("65535", 65535), ("00080", 80)]
)
def test_ports(text: str, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize(
    ("text", "addresses"),
    [
        ("", ("0.0.0.0",)),
        ("  ", ("0.0.0.0",)),
        ("localhost", ("127.0.0.1", "::1")),
        ("LocalHost", ("127.0.0.1", "::1")),
        ("[::1]", ("::1",)),
        ("[0:0:0:0:0:0:0:0]", ("::",)),
        ("192.0.2.1", ("192.0.2.1",)),
    ],
)
def test_hosts(text: str, addresses: tuple[str, ...]) -> None:
    assert parse_host(text) == addresses


def test_a_no_break_space_is_not_stripped() -> None:
    # Only ASCII whitespace is around a value by accident; U+00A0 was typed (or pasted).
    with pytest.raises(ValueError, match="not a port number"):
        parse_port("\u00a080")


@pytest.mark.parametrize(
    ("text", "low", "high", "seconds"),
    [("0", 0, 86400, 0.0), ("86400", 0, 86400, 86400.0), ("0.1", 0.1, 3600, 0.1),
     (" 2.5 ", 0, 10, 2.5), ("3.", 0, 10, 3.0)],
)
def test_durations(text: str, low: float, high: float, seconds: float) -> None:
    assert parse_duration(text, low=low, high=high, name="--x") == seconds


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e400", "9" * 400, "-0.5", "0x1"])
def test_durations_refused_name_the_option(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--wait-for takes seconds from 0\.1 to 3600, got '"):
        parse_duration(text, low=0.1, high=3600, name="--wait-for")


@pytest.mark.parametrize(
    ("text", "name"),
    [("TERM", "TERM"), ("SIGTERM", "TERM"), ("term", "TERM"), ("15", "TERM"),
     ("int", "INT"), ("SigInt", "INT"), ("2", "INT"), ("KILL", "KILL"), ("sigkill", "KILL"),
     ("9", "KILL")],
)
def test_signals(text: str, name: str) -> None:
    assert parse_signal(text) == name


def test_quoted_cuts_at_forty_characters_then_escapes() -> None:
    assert quoted("a" * 40) == f"'{'a' * 40}'"
    assert quoted("\n" * 41) == "'" + "\\n" * 40 + "…'"
    assert quoted("\u202eabc") == "'\\u202eabc'"
