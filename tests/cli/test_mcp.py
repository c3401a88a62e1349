"""`portscope mcp` through the MCP SDK's own client over stdio, against listeners the test
starts: list, check, free and wait answer; kill shows its plan and acts only on a second
call that repeats the plan's id, and only when the server was started with --allow-kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from cli.quiet_ports import quiet_ports
from real_servers import missing
from support import ROOT_LISTENER, exited, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sockets")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
TOOLS = {"list", "check", "free", "wait", "kill"}


def sdk() -> Any:
    try:
        from mcp import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client
    except ImportError:
        missing("the mcp SDK is not installed (pip install -e '.[test]')")
    return ClientSession, StdioServerParameters, stdio_client


async def session_calls(flags: list[str], calls: list[tuple[str, dict[str, Any]]]) -> tuple[
    set[str], list[tuple[bool, Any]]
]:
    """Start `portscope mcp FLAGS` as the SDK's stdio client does, make `calls` in order;
    (the tool names listed, [(is_error, parsed JSON or the error text)] per call)."""
    client_session, params, stdio_client = sdk()
    server = params(
        command=sys.executable, args=["-m", "portscope", "mcp", *flags],
        # The SDK passes a small default environment: the suite's state directory (the
        # audit log of the kill) must reach the server.
        env={"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]},
    )
    answers: list[tuple[bool, Any]] = []
    with open(os.devnull, "w") as quiet:
        async with stdio_client(server, errlog=quiet) as (read, write), client_session(
            read, write
        ) as session:
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                text = result.content[0].text if result.content else ""
                is_error = bool(result.is_error)
                answers.append((is_error, text if is_error else json.loads(text)))
    return names, answers


async def test_list_check_free_and_wait_answer() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        free_at = quiet_ports()
        names, answers = await session_calls([], [
            ("list", {"port": str(port)}),
            ("check", {"ports": f"{port},{free_at}"}),
            ("free", {"count": 2, "port_range": f"{free_at}-{free_at + 50}"}),
            ("wait", {"ports": str(port), "listening": True, "timeout": 5}),
            ("wait", {"ports": str(port), "timeout": 0.3}),
            ("check", {"ports": "0"}),
        ])
    assert names >= TOOLS
    (_, listed), (_, checked), (_, free), (_, accepts), (_, busy), (bad, error) = answers
    assert [(s["port"], s["processes"][0]["pid"]) for s in listed["sockets"]] == [
        (port, os.getpid())
    ]
    assert checked["can_bind_all"] is False
    assert [(v["port"], v["verdict"]) for v in checked["results"]] == [
        (port, "listening"), (free_at, "free"),
    ]
    assert len(free["ports"]) == 2 and all(free_at <= p <= free_at + 50 for p in free["ports"])
    assert accepts["ok"] is True and accepts["ports"] == [port]
    assert busy["ok"] is False and busy["port"] == port
    assert busy["now"]["verdict"] == "listening"
    assert bad is True and "port must be 1-65535" in error


async def test_kill_without_allow_kill_shows_the_plan_and_refuses_to_act(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    _, answers = await session_calls([], [("kill", {"port": port})])
    (error, plan), = answers
    assert error is False
    assert plan["kill_enabled"] is False and "--allow-kill" in plan["next"]
    assert [t["pid"] for t in plan["plans"][0]["targets"]] == [proc.pid]
    _, answers = await session_calls([], [("kill", {"port": port, "plan_id": plan["plan_id"]})])
    (error, text), = answers
    assert error is True and "disabled" in text and "nothing was signalled" in text
    assert proc.poll() is None


async def test_kill_acts_only_on_the_plan_id_it_gave(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    _, answers = await session_calls(["--allow-kill"], [("kill", {"port": port})])
    (error, first), = answers
    assert error is False and first["kill_enabled"] is True and first["would_act"] is True
    plan_id = first["plan_id"]
    shown = first["plans"][0]
    assert shown["dry_run"] is True and shown["exited"] == []
    assert [(t["pid"], t["signal"]) for t in shown["targets"]] == [(proc.pid, "TERM")]
    assert proc.poll() is None  # the first call sent nothing

    _, answers = await session_calls(["--allow-kill"], [
        ("kill", {"port": port, "plan_id": "0" * 16}),
        ("kill", {"port": port, "plan_id": plan_id, "signal": "KILL"}),  # another plan
        ("kill", {"port": port, "plan_id": plan_id}),
    ])
    (wrong, wrong_text), (other, other_text), (ok_error, done) = answers
    assert wrong is True and "nothing was signalled" in wrong_text
    assert other is True and "nothing was signalled" in other_text
    assert ok_error is False, done
    assert done["ok"] is True and done["plan_id"] == plan_id
    result = done["results"][0]
    assert result["exited"] == [proc.pid] and result["port_free"] is True
    assert result["after"]["verdict"] == "free"
    assert exited(proc) and proc.returncode == -15  # SIGTERM, not the KILL asked for above
