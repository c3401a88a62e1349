"""The JSON Schemas shipped in portscope/schemas/ describe what the commands really print:
real output of list, check, kill, free and watch is validated against them, and every
object carries the "schema" version its file names."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from cli.quiet_ports import quiet_ports
from portscope.core.contracts import SCHEMAS
from support import ROOT_LISTENER, make_server_time_wait, tcp_listener, udp_socket

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sockets")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
SHIPPED = resources.files("portscope") / "schemas"


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SHIPPED / f"{name}.schema.json").read_text())
    return data


def validate(name: str, instance: object) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(instance)


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


def output(*args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = portscope(*args, "--json")
    assert result.returncode in codes, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_schema_is_valid_and_names_its_version(name: str) -> None:
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    version = SCHEMAS[name]
    texts = json.dumps(doc)
    assert f'"schema": {{"const": {version}' in texts
    assert (SHIPPED / "CHANGELOG.md").is_file()
    assert f"{name} {version}" in (SHIPPED / "CHANGELOG.md").read_text()


def test_list_output_matches_its_schema() -> None:
    with tcp_listener() as listener, udp_socket("127.0.0.1"):
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 1)
        whole = output("list")
        every = output("list", "--port", str(port), "--all")
    validate("list", whole)
    validate("list", every)
    assert every["ports"][0]["processes"] is not None
    with pytest.raises(jsonschema.ValidationError):  # the schema does check something
        validate("list", {**whole, "sockets": [{"port": port}]})


def test_check_output_matches_its_schema() -> None:
    with tcp_listener(reuseaddr=True) as listener:
        port = str(listener.getsockname()[1])
        busy = output("check", port, codes=(1,))
        make_server_time_wait(listener, 1)
    waiting = output("check", port, codes=(1,))
    free = output("check", str(quiet_ports()), "--host", "127.0.0.1")
    for data in (busy, waiting, free):
        validate("check", data)
    assert (busy["verdict"], waiting["verdict"], free["verdict"]) == (
        "listening", "time_wait", "free",
    )
    with pytest.raises(jsonschema.ValidationError):
        validate("check", {**free, "verdict": "fine"})


def test_kill_output_matches_its_schema(spawn: Spawn) -> None:
    _, port = spawn(ROOT_LISTENER)
    data = output("kill", port, "--yes")
    validate("kill", data)
    assert data["schema"] == SCHEMAS["kill"] and data["after"]["schema"] == SCHEMAS["check"]


def test_free_output_matches_its_schema() -> None:
    first = quiet_ports(2)
    with tcp_listener("127.0.0.1", first):
        data = output("free", "--range", f"{first}-{first + 1}")
    validate("free", data)
    short = output("free", "--range", f"{first}-{first}", "-n", "2", codes=(0, 1))
    validate("free", short)


def test_watch_output_matches_its_schema() -> None:
    listener = tcp_listener()
    port = str(listener.getsockname()[1])
    watch = subprocess.Popen(
        [sys.executable, "-m", "portscope", "watch", "--json", "--initial", "--port", port,
         "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        assert watch.stdout is not None
        listen = json.loads(watch.stdout.readline())
        listener.close()
        unlisten = json.loads(watch.stdout.readline())
    finally:
        listener.close()
        watch.kill()
        watch.communicate(timeout=20)
    assert (listen["event"], unlisten["event"]) == ("listen", "unlisten")
    for data in (listen, unlisten):
        validate("watch", data)
    with pytest.raises(jsonschema.ValidationError):  # an unlisten says how long it listened
        validate("watch", {k: v for k, v in unlisten.items() if k != "listened_for"})
