"""`portscope check` with several ports, ranges and comma lists: each port checked, exit 0
only if a server can bind every one, one JSON object for one port and an array for several,
valid against the shipped schema."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from typing import Any

import jsonschema
import pytest

from cli.quiet_ports import quiet_ports
from support import neighbouring_listeners, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


def check_json(*args: str, code: int) -> Any:
    result = portscope("check", *args, "--json")
    assert result.returncode == code, result.stdout + result.stderr
    data = json.loads(result.stdout)
    schema = json.loads((resources.files("portscope") / "schemas/check.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def test_two_ports_give_an_array_and_exit_1_if_one_is_taken() -> None:
    free = quiet_ports()
    with tcp_listener() as listener:
        busy = listener.getsockname()[1]
        data = check_json(str(busy), str(free), code=1)
    assert [(d["port"], d["verdict"]) for d in data] == [(busy, "listening"), (free, "free")]
    assert data[0]["holders"][0]["pid"] > 0 and data[0]["stop"]["how"] == "signal"


def test_a_free_range_exits_0_and_one_port_stays_one_object() -> None:
    first = quiet_ports(3)
    data = check_json(f"{first}-{first + 2}", code=0)
    assert [d["port"] for d in data] == [first, first + 1, first + 2]
    assert all(d["verdict"] == "free" for d in data)
    assert isinstance(check_json(f"{first},{first}", code=0), dict)


def test_text_gives_a_free_port_one_line_and_a_taken_one_the_explanation() -> None:
    low, high = neighbouring_listeners()
    with low, high:
        a, b = low.getsockname()[1], high.getsockname()[1]
        high.close()  # a: taken, b: free (no TIME_WAIT: it never had a connection)
        result = portscope("check", f"{a}-{b}", "--host", "127.0.0.1")
    assert result.returncode == 1, result.stderr
    blocks = result.stdout.rstrip("\n").split("\n\n")
    assert blocks[0].startswith(f"Port {a}/tcp is in use")
    assert "What to do:" in result.stdout
    assert blocks[-1] == f"Port {b}/tcp is free on 127.0.0.1: a server can bind it now."


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ("1-5000", "at most 1,024 ports at once, got 5,000"),
        ("9000-8000", "a port range goes up: '9000-8000' (write 8000-9000)"),
        ("80,", "empty item in the port list '80,'"),
    ],
)
def test_bad_port_lists_are_one_line_and_exit_2(ports: str, message: str) -> None:
    result = portscope("check", ports)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"portscope: {message}"), result.stderr
