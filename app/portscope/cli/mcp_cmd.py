"""`portscope mcp`: a Model Context Protocol server on stdin/stdout, so a coding agent that
meets EADDRINUSE can ask who holds the port, why a bind fails, which port is free, wait for
one, and (only if a person allowed it) stop what holds it.

Tools: list, check, free, wait, kill (agent_tools.py). `kill` returns its plan and a plan id
first, and acts only on a second call that repeats the id, and only when the server was
started with `--allow-kill`: the agent cannot give itself that permission. What it does is
what `portscope kill` does: the same refusals, PID-reuse guard, audit log and proof.

Built on the official MCP SDK (`pip install 'portscope[mcp]'`), imported here only, so no
other command pays for it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .common import fail

INSTRUCTIONS = (
    "portscope answers questions about local TCP/UDP ports: who holds a port and why a "
    "server's bind() fails (check), listening sockets (list), ports a server can bind now "
    "(free), waiting until a port is free or accepts connections (wait), and stopping what "
    "holds a port (kill: call it once for the plan and its plan_id, then again with that "
    "plan_id to carry it out, if the person allowed kills)."
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "mcp", help="serve list, check, free, wait and kill to coding agents (MCP on stdio)",
    )
    p.add_argument(
        "--allow-kill", action="store_true",
        help="let the kill tool act (on a second call that repeats the plan's id); without "
        "it, kill only shows plans",
    )
    p.add_argument(
        "--allow-system", action="store_true",
        help="let kill include what it refuses by default (as kill --allow-system does)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        return fail("portscope mcp needs the MCP SDK: pip install 'portscope[mcp]'")
    if sys.stdin.isatty():
        print("portscope mcp: speaks MCP on stdin/stdout; start it from an agent's MCP "
              "settings (Ctrl+D ends it)", file=sys.stderr)
    server: Any = MCPServer("portscope", instructions=INSTRUCTIONS, log_level="WARNING")
    for name, tool in tools(args.allow_kill, args.allow_system, ToolError).items():
        server.add_tool(tool, name=name, description=(tool.__doc__ or "").strip())
    server.run()  # stdio until the client closes it
    return 0


def tools(
    allow_kill: bool, allow_system: bool, error: type[Exception]
) -> dict[str, Callable[..., dict[str, Any]]]:
    """The tools, each turning bad input (ValueError) into the SDK's tool error: a message
    the agent reads, never a traceback."""
    from . import agent_tools as at

    def guarded(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return call()
        except ValueError as exc:
            raise error(str(exc)) from None

    def list_(port: str | None = None, proto: str | None = None,
              every: bool = False) -> dict[str, Any]:
        """Listening TCP and bound UDP sockets with the processes holding them, and TIME_WAIT
        per port (portscope list --json). port: 8080, 8000-8010 or 3000,8080; proto: tcp or
        udp; every (with port): every socket on those ports, connections too."""
        return guarded(lambda: at.list_sockets(port, proto, every))

    def check(ports: str, host: str | None = None, udp: bool = False,
              reuseaddr: bool = False) -> dict[str, Any]:
        """Would a server's bind() on these ports succeed now; if not, why (in use by which
        process, TIME_WAIT, privileged...) and the stop plan (portscope check --json).
        ports: 3000, 8000-8010 or 3000,8080; host: the address the server binds (default
        0.0.0.0; localhost for 127.0.0.1 and ::1)."""
        return guarded(lambda: at.check_ports(ports, host, udp, reuseaddr))

    def free(count: int = 1, port_range: str | None = None, host: str | None = None,
             udp: bool = False, reuseaddr: bool = False) -> dict[str, Any]:
        """Ports a server can bind now, skipping TIME_WAIT and the ephemeral range (portscope
        free --json). port_range: A-B. A port found free can still be taken before the
        server binds it."""
        return guarded(lambda: at.free_ports(count, port_range, host, udp, reuseaddr))

    def wait(ports: str, timeout: float = 30.0, listening: bool = False,
             host: str | None = None, udp: bool = False,
             reuseaddr: bool = False) -> dict[str, Any]:
        """Block until a server can bind every port (or, with listening, until each accepts
        a TCP connect: host may then be another machine), at most timeout seconds (300)."""
        return guarded(lambda: at.wait_ports(ports, timeout, listening, host, udp, reuseaddr))

    def kill(port: int | None = None, pid: int | None = None, plan_id: str | None = None,
             signal: str = "TERM", timeout: float | None = None, force: bool = False,
             udp: bool = False, host: str | None = None) -> dict[str, Any]:
        """Stop what holds a port (or the process pid), safely. Call it without plan_id: it
        returns the plan (targets, refusals, the signals it would send) and a plan_id, and
        sends nothing. Call it again with the same arguments and that plan_id to carry the
        plan out; it acts only if the person started this server with --allow-kill and the
        plan is unchanged, and returns the proof (every target exited, the port released).
        """
        return guarded(lambda: at.kill(
            port=port, pid=pid, plan_id=plan_id, signal=signal, timeout=timeout, force=force,
            udp=udp, host=host, allow_kill=allow_kill, allow_system=allow_system,
        ))

    return {"list": list_, "check": check, "free": free, "wait": wait, "kill": kill}
