"""A pre-fork server's 2,000 workers share one command: its server name and the program a
bind diagnosis looks for are worked out once per distinct value, not once per process
(~50 ms of each `b` and `k` on such a port), and nothing a hostile process controls grows
without bound."""

from __future__ import annotations

from portscope.core.diagnose.reuse import known_program
from portscope.core.model import Holder
from portscope.core.roles import signatures
from portscope.core.roles.procs import ProcInfo
from portscope.core.roles.signatures import NAMED_ARGV, NAMED_MAX, server_name


def info(pid: int, argv: tuple[str, ...], name: str = "python3") -> ProcInfo:
    return ProcInfo(pid, 1, name, argv, None)


def test_a_name_is_the_same_asked_once_or_again_and_kept_once_per_command() -> None:
    signatures._NAMED.clear()
    workers = [info(100 + i, ("/srv/.venv/bin/python", "-m", "uvicorn", "app:app"))
               for i in range(300)]
    assert {server_name(w) for w in workers} == {"uvicorn"}
    assert len(signatures._NAMED) == 1
    assert server_name(info(1, ("python3", "-c", "x"), name="shell-ish")) == "shell-ish"
    assert server_name(info(2, (), name="kworker")) == "kworker"


def test_hostile_commands_do_not_grow_the_kept_names() -> None:
    signatures._NAMED.clear()
    huge = info(7, ("node", "x" * (NAMED_ARGV + 1)))
    assert server_name(huge) == "node"
    assert not signatures._NAMED  # a 2 MB argv is named, not kept
    for i in range(NAMED_MAX + 50):
        server_name(info(i, (f"srv{i}",)))
    assert len(signatures._NAMED) <= NAMED_MAX


def test_the_program_known_to_reuse_addresses_is_found_among_many_holders() -> None:
    workers = [Holder(100 + i, "python3", "dev", ("python3", "worker.py"), 1.0)
               for i in range(500)]
    holders = (*workers, Holder(900, "nginx", "www", ("nginx", "-g", "daemon off;"), 1.0))
    assert known_program(holders, ()) == "nginx"
    assert known_program(holders[:500], ()) is None
