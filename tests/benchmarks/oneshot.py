"""One-shot commands as whole processes, beside a psutil one-liner, `ss` and `lsof`.

Run:  .venv/bin/python tests/benchmarks/oneshot.py [--runs 5] [--quiet-only]

Prints one markdown table: for each load and command, the very first run (a fresh owner
store: each portscope command gets a runtime directory of its own, empty at first) and the
median of the next --runs runs, each as a ratio to the psutil one-liner
(`python -c "import psutil; psutil.net_connections('inet')"`) measured the same way, with
the goal of issue 10 and whether it was met. Output goes to /dev/null for every tool alike.

The load (loopback only, bounded, torn down): 20,000 server-side TIME_WAIT sockets, topped
up before every run since each lasts 60 s, and a pre-fork server of 300 processes sharing
200 TCP listeners (each process holds every listener, ~205 fds). Its processes are killed by
process group at the end; TIME_WAIT expires by itself. A tool that is absent is skipped and
the table says so. Not a test module (pytest collects test_*.py only); Linux.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect import machine
from loads import TimeWaitMaker, count_time_wait, prefork_servers

VENV_BIN = Path(sys.executable).parent
PORTSCOPE = str(VENV_BIN / "portscope")
PSUTIL_LINER = [sys.executable, "-c", "import psutil; psutil.net_connections('inet')"]
LOAD = 20_000
BASELINE = "psutil one-liner"


@dataclass
class Tool:
    label: str
    argv: list[str]
    goal: str = ""  # e.g. "<= 0.2x" (of the one-liner) or "< 50 ms"
    first_goal: str = ""
    portscope: bool = False  # gets a runtime directory of its own (its owner store)


@dataclass
class Result:
    first: float
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def portscope(*args: str, goal: str = "", first_goal: str = "") -> Tool:
    label = "`portscope " + " ".join(args) + "`"
    return Tool(label, [PORTSCOPE, *args], goal, first_goal, portscope=True)


def others() -> tuple[list[Tool], list[str]]:
    tools = [Tool(BASELINE, PSUTIL_LINER)]
    missing = []
    for label, argv in (
        ("`ss -tlnp`", ["ss", "-tlnp"]),
        ("`lsof -nP -iTCP -sTCP:LISTEN`", ["lsof", "-nP", "-iTCP", "-sTCP:LISTEN"]),
    ):
        if shutil.which(argv[0]):
            tools.append(Tool(label, argv))
        else:
            missing.append(f"{label} skipped: `{argv[0]}` is not installed here")
    return tools, missing


def run_once(tool: Tool, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        tool.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        stdin=subprocess.DEVNULL, check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    # check exits 1 for a port that is not free; anything else (2, a traceback) is a bug.
    if done.returncode not in (0, 1) or b"Traceback" in done.stderr:
        raise RuntimeError(f"{tool.label} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return elapsed


def measure(
    tools: list[Tool], runs: int, keeper: TimeWaitMaker | None, scratch: Path
) -> dict[str, Result]:
    """First run then `runs` more per tool, back to back (as a person re-runs a command).

    Each portscope command has its own XDG_RUNTIME_DIR, so its first run finds no owner
    store and the next ones find the one it left: what a person's second `check` meets.
    """
    results: dict[str, Result] = {}
    for tool in tools:
        env = dict(os.environ)
        if tool.portscope:
            home = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
            home.chmod(0o700)
            env["XDG_RUNTIME_DIR"] = str(home)
        times = []
        for _ in range(runs + 1):
            if keeper is not None:
                top_up(keeper)
            times.append(run_once(tool, env))
        results[tool.label] = Result(times[0], times[1:])
        print(f"  measured {tool.label}", file=sys.stderr, flush=True)
    return results


def top_up(maker: TimeWaitMaker) -> None:
    """Each TIME_WAIT lasts 60 s: refill what expired, outside the timed run."""
    now = count_time_wait()
    if now < LOAD:
        maker.make(LOAD - now)


def compile_bytecode() -> str:
    """Compile portscope's modules, as `pip install .` does (the README's install). An
    editable install leaves that to the first import, and under PYTHONDONTWRITEBYTECODE
    (set here) no run would ever write it: every command would compile every module it
    imports, which psutil, compiled by pip, never pays."""
    import portscope

    package = Path(portscope.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    return f"portscope's bytecode compiled before the runs (`python -m compileall {package}`)"


def free_port() -> int:
    """A loopback port nothing is bound to (the kernel picked it a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def fmt(ms: float) -> str:
    return f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def verdict(goal: str, ms: float, base: float) -> str:
    """'<= 0.2x' of the one-liner or '< 50 ms'; '' when the row has no goal."""
    if not goal:
        return ""
    limit = goal.split()[1]
    met = ms <= float(limit[:-1]) * base if limit.endswith("x") else ms < float(limit)
    return f"{goal}: {'met' if met else 'NOT met'}"


def table(sections: list[tuple[str, list[Tool], dict[str, Result]]]) -> list[str]:
    lines = [
        "| load | command | first run | median of the next runs | x one-liner | goal |",
        "|---|---|---|---|---|---|",
    ]
    for load, tools, results in sections:
        base = results[BASELINE].median
        base_first = results[BASELINE].first
        for tool in tools:
            r = results[tool.label]
            goals = [
                g for g in (
                    verdict(tool.first_goal, r.first, base_first).replace(":", " (first):", 1),
                    verdict(tool.goal, r.median, base),
                ) if g
            ]
            lines.append(
                f"| {load} | {tool.label} | {fmt(r.first)} | {fmt(r.median)} "
                f"| {r.median / base:.2f}x | {'; '.join(goals)} |"
            )
    return lines


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="portscope-oneshot-") as tmp:
        yield Path(tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs after the first, per tool")
    parser.add_argument("--quiet-only", action="store_true", help="skip the load")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("this benchmark reads Linux's socket tables", file=sys.stderr)
        return 2
    base_tools, notes = others()
    notes.append(compile_bytecode())
    load_before = os.getloadavg()[0]
    sections: list[tuple[str, list[Tool], dict[str, Result]]] = []
    with scratch_dir() as scratch:
        quiet = [
            portscope("--version", goal="< 50 ms"),
            portscope("--help", goal="< 50 ms"),
            portscope("list", goal="<= 1.2x"),
            portscope("list", "--json"),
            portscope("check", str(free_port()), "--json"),
        ]
        tools = [*base_tools[:1], *quiet, *base_tools[1:]]
        before = count_time_wait()
        sections.append(("quiet", tools, measure(tools, args.runs, None, scratch)))
        notes.append(  # "quiet" is only true if nothing else loads the socket tables
            f"quiet: {before:,} / {count_time_wait():,} TIME_WAIT on the machine at the "
            f"start / end, {len(psutil.pids())} processes"
        )
        if not args.quiet_only:
            maker = TimeWaitMaker()
            try:
                top_up(maker)
                with prefork_servers(300, fds=40, listeners=200) as ports:
                    held = ports[len(ports) // 2]
                    loaded = [
                        portscope("list", "--json", goal="<= 0.2x", first_goal="<= 1x"),
                        portscope("list"),
                        portscope("list", "--port", str(held), "--json"),
                        portscope("check", str(held), "--json", goal="<= 0.2x",
                                  first_goal="<= 1x"),
                        portscope("check", str(free_port()), "--json"),
                    ]
                    tools = [*base_tools[:1], *loaded, *base_tools[1:]]
                    before = count_time_wait()
                    results = measure(tools, args.runs, maker, scratch)
                    after = count_time_wait()
                    name = "20,000 TIME_WAIT + 300 processes"
                    sections.append((name, tools, results))
                    notes.append(
                        f"{name}: {before:,} / {after:,} TIME_WAIT on the machine at the "
                        f"start / end, topped up to {LOAD:,} before every run; 300 processes "
                        f"(a master and 299 forked workers) sharing 200 TCP listeners, "
                        f"{held} the one `check` and `list --port` ask about"
                    )
            finally:
                maker.close()
    print(
        f"\nMachine: {machine()}; 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end\n"
    )
    print("\n".join(table(sections)))
    print()
    notes.insert(
        0,
        f"whole processes, output to /dev/null; first run, then the median of {args.runs} "
        "runs back to back; each portscope command keeps an owner store of its own "
        "(a fresh XDG_RUNTIME_DIR), empty before its first run",
    )
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
