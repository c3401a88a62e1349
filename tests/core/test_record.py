"""core/record.py stands in for frozen, slotted dataclasses: the same behaviour, no import of
`dataclasses` (a one-shot command pays for every import)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from portscope.core.model import Holder, PortStats, Socket
from portscope.core.record import FrozenInstanceError, field, mutable_record, record, replace


@record
class Pair:
    left: int
    right: str = "r"
    seen: list[int] = field(default_factory=list)


@mutable_record
class Counter:
    hits: int = 0


def test_fields_defaults_and_a_fresh_factory_value_per_instance() -> None:
    a, b = Pair(1), Pair(2, "x")
    assert (a.left, a.right, b.right) == (1, "r", "x")
    a.seen.append(5)
    assert b.seen == [] and Pair(3).seen == []
    assert Pair(1, seen=[9]).seen == [9]
    with pytest.raises(TypeError):
        Pair()  # type: ignore[call-arg]


def test_frozen_equal_by_fields_in_order_and_hashable() -> None:
    holder = Holder(pid=7, name="srv", user="u", cmdline=("srv", "-p"), started=1.5)
    same = Holder(7, "srv", "u", ("srv", "-p"), 1.5)
    assert holder == same and hash(holder) == hash(same)
    assert holder != replace(holder, pid=8)
    assert holder != (7, "srv", "u", ("srv", "-p"), 1.5, None, None)
    with pytest.raises(FrozenInstanceError):
        holder.pid = 9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        holder.extra = 1  # type: ignore[attr-defined]  # slots: no __dict__
    assert not hasattr(holder, "__dict__")


def test_replace_changes_only_what_it_names_and_refuses_unknown_fields() -> None:
    sock = Socket("tcp", "ipv4", "127.0.0.1", 8080)
    moved = replace(sock, port=8081)
    assert (moved.port, moved.address, sock.port) == (8081, "127.0.0.1", 8080)
    with pytest.raises(TypeError, match="no field 'colour'"):
        replace(sock, colour="red")


def test_repr_names_every_field() -> None:
    assert repr(Pair(1)) == "Pair(left=1, right='r', seen=[])"
    assert repr(PortStats(80)).startswith("PortStats(port=80, time_wait=0,")


def test_copy_and_pickle_keep_the_fields() -> None:
    stats = PortStats(80, time_wait=3, states={"ESTABLISHED": 2})
    for twin in (copy.copy(stats), copy.deepcopy(stats), pickle.loads(pickle.dumps(stats))):
        assert twin == stats and twin is not stats


def test_mutable_record_assigns_and_is_unhashable() -> None:
    counter = Counter()
    counter.hits += 1
    assert counter == Counter(1)
    with pytest.raises(TypeError):
        hash(counter)


def test_the_one_shot_path_imports_neither_dataclasses_nor_inspect() -> None:
    code = (
        "import sys; import portscope.cli.list_cmd, portscope.core.collect.proc_collector; "
        "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
