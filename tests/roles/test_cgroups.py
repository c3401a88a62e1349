"""The cgroup of many processes at once: one read of a cgroup's member list answers for
every holder it lists (a pre-fork server's 2,000 workers), and gives exactly what reading
each /proc/PID/cgroup gives; a list that may not match that file is never used."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.roles import cgroups
from portscope.core.roles.cgroups import cgroups_of, read_cgroup, unified_mount

SHOP = "/system.slice/shop.service"


@pytest.fixture
def children() -> Iterator[list[int]]:
    """Six processes of this test's own, gone when their stdin closes."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                         stdin=subprocess.PIPE)
        for _ in range(6)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(10)


def test_many_real_processes_get_what_their_own_files_say(children: list[int]) -> None:
    # From this machine's cgroup2 member lists if it has them, else one read each: the
    # same answer either way.
    assert cgroups_of(children, members_from=1) == {p: read_cgroup(p) for p in children}


def fake_machine(tmp_path: Path, paths: dict[int, str], members: dict[str, str],
                 kinds: dict[str, str]) -> tuple[str, str]:
    """A recorded /proc (each PID's cgroup file) and cgroup2 tree (member lists, types)."""
    proc, tree = tmp_path / "proc", tmp_path / "cgroup"
    for pid, path in paths.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(f"1:name=systemd:{path}\n0::{path}\n")
    for path, listed in members.items():
        where = tree / path.lstrip("/")
        where.mkdir(parents=True, exist_ok=True)
        (where / "cgroup.procs").write_text(listed)
        if path in kinds:
            (where / "cgroup.type").write_text(kinds[path] + "\n")
    return str(proc), str(tree)


class CountingReads:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pids: list[int] = []
        real = cgroups.read_cgroup

        def counted(pid: int, proc: str = "/proc") -> str | None:
            self.pids.append(pid)
            return real(pid, proc)

        monkeypatch.setattr(cgroups, "read_cgroup", counted)


def test_a_member_list_answers_for_every_pid_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = {pid: SHOP for pid in range(100, 300)}
    proc, tree = fake_machine(
        tmp_path, {**workers, 7: "/user.slice/other.scope"},
        {SHOP: "\n".join(map(str, range(100, 300))) + "\n", "/user.slice/other.scope": "7\n"},
        {SHOP: "domain", "/user.slice/other.scope": "domain"},
    )
    reads = CountingReads(monkeypatch)
    found = cgroups_of([*workers, 7], members_from=2, mount=tree, proc=proc)
    assert found == {**workers, 7: "/user.slice/other.scope"}
    assert reads.pids == [7]  # 200 workers from one list; the last PID alone is read alone


def test_a_pid_missing_from_the_list_is_read_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Moved between the two reads, or listed by another namespace: its own file decides.
    proc, tree = fake_machine(tmp_path, {10: SHOP, 11: SHOP, 12: SHOP}, {SHOP: "10\n11\n"},
                              {SHOP: "domain"})
    reads = CountingReads(monkeypatch)
    assert cgroups_of([10, 11, 12], members_from=5, mount=tree, proc=proc) == {
        10: SHOP, 11: SHOP, 12: SHOP}
    assert reads.pids == [10, 11, 12]  # below members_from: no list is read
    reads.pids.clear()
    assert cgroups_of([10, 11, 12], members_from=2, mount=tree, proc=proc)[12] == SHOP
    assert reads.pids == [12]


@pytest.mark.parametrize("kind", ["threaded", "domain threaded", "domain invalid"])
def test_a_list_that_may_not_match_the_file_is_not_used(tmp_path: Path, kind: str) -> None:
    # A threaded sub-tree's list names processes whose own file names another cgroup: 12's
    # file decides, though the list names it.
    proc, tree = fake_machine(tmp_path, {10: SHOP, 11: SHOP, 12: "/elsewhere"},
                              {SHOP: "10\n11\n12\n"}, {SHOP: kind})
    assert cgroups_of([10, 11, 12], members_from=2, mount=tree, proc=proc) == {
        10: SHOP, 11: SHOP, 12: "/elsewhere"}
    (Path(tree) / SHOP.lstrip("/") / "cgroup.type").write_text("domain\n")
    assert cgroups_of([10, 11, 12], members_from=2, mount=tree, proc=proc)[12] == SHOP


def test_a_path_outside_our_view_never_leaves_the_tree(tmp_path: Path) -> None:
    # Another cgroup namespace's process shows "/../..": never joined under the mount.
    outside = "/../escape"
    (tmp_path / "escape").mkdir()
    (tmp_path / "escape" / "cgroup.procs").write_text("1\n2\n")
    (tmp_path / "escape" / "cgroup.type").write_text("domain\n")
    assert cgroups._members(str(tmp_path / "tree"), outside) is None
    assert cgroups._members(str(tmp_path), "/escape") == {1, 2}


def test_an_oversized_or_garbled_list_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "cgroup.procs").write_text("1\nnot-a-pid\n")
    assert cgroups._members(str(tmp_path), "/") is None
    (tmp_path / "cgroup.procs").write_text("1\n" * (cgroups.MEMBERS_MAX_BYTES // 2 + 1))
    assert cgroups._members(str(tmp_path), "/") is None


def test_the_unified_mount_is_found_on_hybrid_and_escaped_mount_points() -> None:
    hybrid = (
        "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "41 30 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert unified_mount(hybrid) == "/sys/fs/cgroup/unified"
    # A cgroup2 mount of a sub-tree (a container's view of the host's) is not ours.
    sub = "50 1 0:40 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert unified_mount(sub) is None
    spaced = "51 1 0:41 / /mnt/my\\040cgroups rw shared:1 - cgroup2 none rw\n"
    assert unified_mount(spaced) == "/mnt/my cgroups"
    assert unified_mount("") is None


def test_a_cgroup_file_is_parsed_once_per_distinct_content() -> None:
    cgroups._parsed.cache_clear()
    data = f"0::{SHOP}\n".encode()
    assert cgroups._parsed(data) == (SHOP, True)
    assert cgroups._parsed(data) == (SHOP, True)
    assert cgroups._parsed.cache_info().hits == 1
    assert cgroups._parsed(b"1:name=systemd:/init.scope\n") == ("/init.scope", False)
    assert read_cgroup(10**9) is None  # no such process
