"""`portscope check PORT`: would a server's bind() succeed here, and if not, why and what now.

Exit codes: 0 the port is free (with --reuseaddr: a server that sets SO_REUSEADDR can bind
it), 1 any other verdict, 2 bad input (one line on stderr). `--host localhost` probes
127.0.0.1 and ::1, since a server that binds "localhost" may end up on either or both, and
reports the worse of the two. With no --host the verdict is that of 0.0.0.0, and the other
addresses servers commonly bind (::, 127.0.0.1, ::1) are probed too and named when taken.

Several ports (`check 3000 8080`, `check 8000-8010`, `check 3000,8080`): each one checked,
exit 0 only if a server can bind every one; `--json` prints one object for one port and an
array of the same objects for several. A port that is free gets its one sentence, a taken
one the whole explanation.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable, Sequence

from ..core.collect import default_collector
from ..core.diagnose.advice import attempt_line, bind_sentence, endpoint, numbered_steps
from ..core.diagnose.bind_attempt import Bind
from ..core.diagnose.probe import diagnose
from ..core.diagnose.verdict import Verdict
from ..core.inputs import parse_ports
from ..core.model import Proto
from ..core.serialize import verdict_json
from ..core.untrusted import shown
from .argparser import strict
from .common import add_bind_arguments, add_json_arguments, fail, host_arg, print_json
from .terminal import columns

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

UNAVAILABLE = "address_not_available"
# Ports one `check` or `kill` takes: a range of thousands is a question for `list --port`
# (which are in use) or `free --range` (which are free), answered in one poll.
MAX_PORTS = 1024


def add_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="test-bind a port and explain why bind() would fail")
    add_target_arguments(p)
    add_json_arguments(p)
    p.set_defaults(func=run)


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """PORT..., --host, --udp and --reuseaddr: what `check` probes."""
    add_ports_argument(p)
    p.add_argument(
        "--host", type=host_arg, default=None, metavar="ADDR",
        help="address to bind (default 0.0.0.0; ::, [::1], any literal address, and "
        "localhost for both 127.0.0.1 and ::1)",
    )
    add_bind_arguments(p)


def add_ports_argument(p: argparse.ArgumentParser, nargs: str = "+") -> None:
    """PORT...: ports, ranges A-B and comma lists, as `check` and `kill` take them."""
    p.add_argument(
        "ports", type=strict(parse_ports), nargs=nargs, metavar="PORT",
        help="a port, a range A-B or a comma list (3000,8080); several may be given",
    )


def ports_of(groups: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """Every port given, in the order given, each once; ValueError past MAX_PORTS."""
    ports = tuple(dict.fromkeys(p for group in groups for p in group))
    if len(ports) > MAX_PORTS:
        raise ValueError(
            f"at most {MAX_PORTS:,} ports at once, got {len(ports):,}: 'portscope list "
            "--port A-B' shows which are in use, 'portscope free --range A-B' which are free"
        )
    return ports


def proto_of(args: argparse.Namespace) -> Proto:
    return "udp" if args.udp else "tcp"


def bind_of(args: argparse.Namespace) -> Bind:
    return "reuseaddr" if args.reuseaddr else "plain"


def hosts_of(args: argparse.Namespace) -> tuple[str, ...]:
    hosts: tuple[str, ...] = args.host or ("0.0.0.0",)
    return hosts


def run(args: argparse.Namespace) -> int:
    try:
        ports = ports_of(args.ports)
    except ValueError as exc:
        return fail(str(exc))
    bind = bind_of(args)
    survey = args.host is None  # no address asked: say what the usual others meet
    collector = default_collector()  # one for all ports and addresses: warm after the first
    checked = [
        [
            diagnose(port, address, proto_of(args), survey=survey, collector=collector)
            for address in hosts_of(args)
        ]
        for port in ports
    ]
    worsts = [worst(verdicts, bind) for verdicts in checked]
    if args.json:
        data = [verdict_json(v) for v in worsts]
        # The holders recur on every address surveyed: records worth encoding once each.
        print_json(data[0] if len(ports) == 1 else data, args.pretty or None, shared=True)
    else:
        width = columns(sys.stdout)
        several = len(ports) > 1
        blocks = [text(verdicts, bind, width, brief=several) for verdicts in checked]
        print(joined(blocks))
    return 0 if all(v.can_bind(bind) for v in worsts) else 1


def joined(blocks: Sequence[str]) -> str:
    """Blocks one after another: a blank line around each of several lines, none between
    one-line answers (a range of free ports reads as a list)."""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i and ("\n" in block or "\n" in blocks[i - 1]):
            out.append("")
        out.append(block)
    return "\n".join(out)


def text(verdicts: Sequence[Verdict], bind: Bind, width: int, *, brief: bool = False) -> str:
    """One port's answer for a person; `brief` (one of several ports): a port a server can
    bind is one sentence, a port it cannot gets the whole explanation."""
    verdict = worst(verdicts, bind)
    head = [addresses_line(verdicts, bind), ""] if len(verdicts) > 1 else []
    if bind == "reuseaddr":
        head += [*textwrap.wrap(shown(bind_sentence(verdict, bind)), _width(width)), ""]
    if brief and verdict.can_bind(bind):
        return "\n".join([*head, *textwrap.wrap(shown(verdict.sentence), _width(width))])
    return "\n".join([*head, render(verdict, width)])


def worst(verdicts: Sequence[Verdict], bind: Bind = "plain") -> Verdict:
    """The verdict a server binding all these addresses meets: the first one it cannot bind.

    An address this machine does not have (::1 with IPv6 turned off) counts only when none of
    the others exists: a server binding "localhost" then simply uses the other one.
    """
    present = [v for v in verdicts if v.kind != UNAVAILABLE] or list(verdicts)
    return next((v for v in present if not v.can_bind(bind)), present[0])


def addresses_line(verdicts: Sequence[Verdict], bind: Bind = "plain") -> str:
    """"localhost: in use on ::1, free on 127.0.0.1": which of the addresses is taken."""
    taken = [v.address for v in verdicts if not v.can_bind(bind) and v.kind != UNAVAILABLE]
    free = [v.address for v in verdicts if v.can_bind(bind)]
    missing = [v.address for v in verdicts if v.kind == UNAVAILABLE]
    parts = [
        f"{label} {' and '.join(addresses)}"
        for label, addresses in (
            ("in use on", taken), ("free on", free), ("no such address here:", missing)
        )
        if addresses
    ]
    return "localhost: " + ", ".join(parts)


def render(v: Verdict, columns: int = 100) -> str:
    """The verdict as a person reads it: sentence, both attempts, why, what to do.

    Every line that can quote a process (its name, user, command line) is escaped here too,
    so nothing a process chose reaches the terminal raw whoever wrote the sentence.
    """
    width = _width(columns)
    out = [*textwrap.wrap(shown(v.sentence), width), ""]
    steps = "bind() + listen()" if v.proto == "tcp" else "bind()"
    out.append(f"Test {steps} on {endpoint(v.address, v.port)}/{v.proto}:")
    for a in v.attempts:
        out.append(f"  {a.option:<14}{shown(attempt_line(a))}")
    if v.explanation:
        out += ["", "Why:"]
        for para in v.explanation:
            out += textwrap.wrap(
                shown(para), width, initial_indent="  - ", subsequent_indent="    "
            )
    if v.advice:
        out += ["", "What to do:"]
        for step, line in numbered_steps(v.advice):
            if step is None:  # code: printed as it is, never wrapped
                out.append(f"       {shown(line)}")
                continue
            out += textwrap.wrap(
                shown(line), width, initial_indent=f"  {step}. ", subsequent_indent="     "
            )
    return "\n".join(out)


def _width(columns: int) -> int:
    return max(40, min(columns, 100))
